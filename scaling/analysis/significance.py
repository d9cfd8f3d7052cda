"""Paired significance tests of per-query retrieval measures against one baseline.

Two runs of a grid often differ by 0.01-0.03 nDCG@10 on a test set of a few hundred queries; a
difference that small can come from which queries happen to favour which run, so a results table
marks only differences that a test on the per-query values supports. Per-query values are dicts
``{qid: value}`` (as ir_measures' ``iter_calc`` yields them); queries are paired by qid, in
sorted qid order, never by dict order, and every system must have exactly the baseline's qids.
The differences tested are ``d_q = system[q] - baseline[q]``.

- ``paired_t``: the two-sided paired t-test (``scipy.stats.ttest_rel``), t = mean(d) /
  (sd(d, ddof=1) / sqrt(n)) on n - 1 degrees of freedom. When all differences are equal (within
  ``TOL``) the variance is zero and scipy returns nan; we return 1.0 if that common difference is
  0 (nothing to detect) and 0.0 otherwise (every query moved by the same non-zero amount).
- ``paired_randomization``: the two-sided paired randomization (sign-flip) test of the mean
  difference. Under the null each d_q is as likely to have the opposite sign, so the p-value is
  the share of sign vectors s with |mean(s * d)| >= |mean(d)| - ``TOL``. Exact when 2^n <=
  ``resamples``: all 2^n vectors are enumerated (the identity among them) and p = count / 2^n.
  Otherwise Monte Carlo: ``resamples`` vectors drawn from ``numpy.random.default_rng(seed)``
  (``CHUNK`` rows at a time with ``rng.integers(0, 2)``, so a seed always gives the same p) and
  p = (1 + count) / (resamples + 1), the add-one estimate, which counts the observed assignment
  and never gives 0. Written in numpy (not ``scipy.stats.permutation_test``, whose two-sided p is
  2 x the smaller one-sided p); both agree up to Monte Carlo error since the null is symmetric.
- ``holm``: Holm-Bonferroni step-down adjustment (statsmodels ``multipletests(method="holm")``).
  ``compare`` applies it per table, over the comparisons of that table (one per system against
  the baseline), separately for the t-test family and the randomization family. A mark means the
  adjusted p-value is below alpha.

``TOL`` = 1e-12 is absolute: the measures lie in [0, 1]. Nothing here writes to disk.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

TOL = 1e-12
"""Absolute tolerance: differences this close count as equal (zero variance, ties of |mean|)."""
CHUNK = 1000
"""Sign vectors handled per numpy batch in ``paired_randomization``."""


def _differences(baseline: dict[str, float], system: dict[str, float]) -> np.ndarray:
    """system - baseline per query, in sorted qid order; shape (n,). The qid sets must match."""
    if set(baseline) != set(system):
        raise ValueError("baseline and system must have the same qids")
    if not baseline:
        raise ValueError("no queries to compare")
    qids = sorted(baseline)
    d = np.array([system[q] for q in qids], dtype=float) - np.array([baseline[q] for q in qids], dtype=float)
    if not np.all(np.isfinite(d)):
        raise ValueError("per-query values must be finite")
    return d


def paired_t(baseline: dict[str, float], system: dict[str, float]) -> float:
    """Two-sided paired t-test p-value of system vs baseline (``scipy.stats.ttest_rel``).

    All differences equal (zero variance, scipy gives nan): 1.0 if they are 0, else 0.0."""
    d = _differences(baseline, system)
    if np.ptp(d) <= TOL:
        return 1.0 if abs(float(d.mean())) <= TOL else 0.0
    qids = sorted(baseline)
    result = stats.ttest_rel([system[q] for q in qids], [baseline[q] for q in qids])
    return float(result.pvalue)


def paired_randomization(baseline: dict[str, float], system: dict[str, float],
                         resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided paired sign-flip randomization test p-value of the mean difference.

    Exact over all 2^n sign vectors when 2^n <= resamples (p = count / 2^n); otherwise
    ``resamples`` random sign vectors from ``default_rng(seed)``, p = (1 + count) / (resamples + 1).
    count = number of sign vectors s with |mean(s * d)| >= |mean(d)| - TOL."""
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    d = _differences(baseline, system)
    n = d.size
    observed = abs(float(d.sum())) / n - TOL
    count = 0
    if n < 63 and 2 ** n <= resamples:
        bits = np.arange(n)
        for start in range(0, 2 ** n, CHUNK):
            idx = np.arange(start, min(start + CHUNK, 2 ** n))
            signs = 1.0 - 2.0 * ((idx[:, None] >> bits) & 1)  # (k, n): bit j of idx flips query j
            count += int(np.count_nonzero(np.abs(signs @ d) / n >= observed))  # (k,)
        return count / 2 ** n
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, CHUNK):
        k = min(CHUNK, resamples - start)
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(k, n))  # (k, n)
        count += int(np.count_nonzero(np.abs(signs @ d) / n >= observed))  # (k,)
    return (1 + count) / (resamples + 1)


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (statsmodels ``multipletests(method="holm")``), same order."""
    if len(pvalues) == 0:
        return []
    return [float(p) for p in multipletests(list(pvalues), method="holm")[1]]


@dataclass
class Comparison:
    """One system against the table's baseline on one measure; ``*_holm`` are Holm-adjusted."""

    system: str
    baseline: str
    measure: str
    n: int
    baseline_mean: float
    system_mean: float
    diff: float
    """Mean of the per-query differences (= system_mean - baseline_mean up to rounding)."""
    t_p: float
    rand_p: float
    t_p_holm: float
    rand_p_holm: float
    significant_t: bool
    significant_rand: bool
    alpha: float

    @property
    def mark(self) -> str:
        """"*" (t-test), "†" (randomization test), "*†" (both) or "" after Holm at alpha."""
        return ("*" if self.significant_t else "") + ("†" if self.significant_rand else "")

    @property
    def direction(self) -> str:
        """"+" if the system is higher than the baseline, "-" if lower, "=" if equal (within TOL)."""
        if self.diff > TOL:
            return "+"
        if self.diff < -TOL:
            return "-"
        return "="

    def as_dict(self) -> dict:
        """Plain JSON values (str, int, float, bool), with ``mark`` and ``direction``."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, (bool, np.bool_)):
                out[key] = bool(value)
            elif isinstance(value, (int, np.integer)):
                out[key] = int(value)
            elif isinstance(value, (float, np.floating)):
                out[key] = float(value)
        out["mark"] = self.mark
        out["direction"] = self.direction
        return out


def _check_qids(baseline: dict[str, float], systems: dict[str, dict[str, float]]) -> None:
    """Raise ValueError naming the first system whose qids differ from the baseline's."""
    base = set(baseline)
    for label, values in systems.items():
        missing, extra = sorted(base - set(values)), sorted(set(values) - base)
        if missing or extra:
            raise ValueError(
                f"system {label!r}: {len(missing) + len(extra)} qids differ from the baseline's "
                f"({len(missing)} missing, e.g. {missing[:5]}; {len(extra)} extra, e.g. {extra[:5]})")


def compare(baseline_label: str, baseline: dict[str, float], systems: dict[str, dict[str, float]],
            measure: str = "nDCG@10", alpha: float = 0.05, resamples: int = 10_000,
            seed: int = 0) -> list[Comparison]:
    """Compare each system of one table with the baseline; Holm over the table, per test family.

    Returns one ``Comparison`` per system, in the order of ``systems``."""
    if not baseline:
        raise ValueError("the baseline has no queries")
    return compare_pairs({label: (baseline_label, baseline, values) for label, values in systems.items()},
                         measure, alpha, resamples, seed)


def compare_pairs(pairs: dict[str, tuple[str, dict[str, float], dict[str, float]]], measure: str = "nDCG@10",
                  alpha: float = 0.05, resamples: int = 10_000, seed: int = 0) -> list[Comparison]:
    """Like ``compare``, but each system against its own baseline: ``pairs`` = {system label:
    (baseline label, baseline values, system values)}; Holm over all the pairs, per test family."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    for label, (_, base, values) in pairs.items():
        _check_qids(base, {label: values})
    labels = list(pairs)
    t_ps = [paired_t(pairs[s][1], pairs[s][2]) for s in labels]
    rand_ps = [paired_randomization(pairs[s][1], pairs[s][2], resamples=resamples, seed=seed) for s in labels]
    t_holm, rand_holm = holm(t_ps), holm(rand_ps)
    out = []
    for i, label in enumerate(labels):
        base_label, base, values = pairs[label]
        qids = sorted(base)
        out.append(Comparison(
            system=label, baseline=base_label, measure=measure, n=len(qids),
            baseline_mean=math.fsum(base[q] for q in qids) / len(qids),
            system_mean=math.fsum(values[q] for q in qids) / len(qids),
            diff=float(_differences(base, values).mean()),
            t_p=t_ps[i], rand_p=rand_ps[i], t_p_holm=t_holm[i], rand_p_holm=rand_holm[i],
            significant_t=t_holm[i] < alpha, significant_rand=rand_holm[i] < alpha, alpha=alpha))
    return out


def legend(baseline_label: str, alpha: float = 0.05, resamples: int = 10_000, seed: int = 0) -> str:
    """One line explaining the marks of a table made with ``compare``."""
    return (f"* / †: differs from {baseline_label} by a paired two-sided t-test / paired "
            f"randomization test ({resamples:,} sign flips, seed {seed}; all 2^n when 2^n <= "
            f"{resamples:,}), Holm-corrected over the table's comparisons, alpha {alpha:g}")
