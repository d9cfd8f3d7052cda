"""Paired significance tests: each p-value against an independent computation (to 1e-9)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy import special, stats

from scaling.analysis import significance as sig


def _runs(n: int, effect: float, seed: int, noise: float = 0.2) -> tuple[dict, dict]:
    """Baseline and system per-query values in [0, 1]-ish, qids q000.. in shuffled dict order."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.8, n)
    system = base + effect + rng.normal(0.0, noise, n)
    qids = [f"q{i:03d}" for i in range(n)]
    order = rng.permutation(n)
    return ({qids[i]: float(base[i]) for i in order},
            {qids[i]: float(system[i]) for i in order[::-1]})


def _diffs(base: dict, system: dict) -> np.ndarray:
    return np.array([system[q] - base[q] for q in sorted(base)])


# --- t-test -------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 3, 7, 30, 200])
def test_paired_t_matches_hand_formula(n):
    for seed in range(3):
        base, system = _runs(n, effect=0.03, seed=100 * n + seed)
        d = _diffs(base, system)
        t = d.mean() / (d.std(ddof=1) / math.sqrt(n))
        expected = 2 * special.stdtr(n - 1, -abs(t))
        assert sig.paired_t(base, system) == pytest.approx(expected, abs=1e-9, rel=0)


def test_paired_t_zero_variance():
    base = {"a": 0.1, "b": 0.5, "c": 0.9}
    assert sig.paired_t(base, dict(base)) == 1.0
    shifted = {q: v + 0.25 for q, v in base.items()}  # same difference everywhere (up to rounding)
    assert sig.paired_t(base, shifted) == 0.0
    assert sig.paired_t({"a": 0.3}, {"a": 0.4}) == 0.0  # one query: zero variance too


# --- randomization test -------------------------------------------------------------------------

def _exact_by_enumeration(d: np.ndarray) -> float:
    observed = abs(d.mean())
    hits = sum(abs(np.dot(s, d)) / d.size >= observed - 1e-12
               for s in itertools.product([-1, 1], repeat=d.size))
    return hits / 2 ** d.size


@pytest.mark.parametrize("n", [1, 3, 6, 9, 12])
def test_exact_randomization_matches_enumeration(n):
    for seed, effect in [(1, 0.0), (2, 0.05), (3, 0.3)]:
        base, system = _runs(n, effect=effect, seed=10 * n + seed)
        expected = _exact_by_enumeration(_diffs(base, system))
        got = sig.paired_randomization(base, system, resamples=max(2 ** n, 10_000), seed=seed)
        assert got == pytest.approx(expected, abs=1e-9, rel=0)


def test_exact_only_when_all_assignments_fit():
    base, system = _runs(10, effect=0.05, seed=5)
    exact = _exact_by_enumeration(_diffs(base, system))
    assert sig.paired_randomization(base, system, resamples=1024) == pytest.approx(exact, abs=1e-9, rel=0)
    mc = sig.paired_randomization(base, system, resamples=1023)
    assert mc != pytest.approx(exact, abs=1e-9, rel=0)  # 1023 < 2^10: Monte Carlo, p = k / 1024
    assert (mc * 1024) == pytest.approx(round(mc * 1024), abs=1e-9, rel=0)


def test_exact_all_same_sign_gives_two_over_2n():
    base = {f"q{i}": 0.1 * i for i in range(8)}
    system = {q: v + 0.05 + 0.01 * i for i, (q, v) in enumerate(base.items())}
    assert sig.paired_randomization(base, system) == pytest.approx(2 / 2 ** 8, abs=1e-12, rel=0)


def test_monte_carlo_reproducible_and_in_range():
    base, system = _runs(300, effect=0.01, seed=7)
    p1 = sig.paired_randomization(base, system, resamples=3000, seed=11)
    p2 = sig.paired_randomization(base, system, resamples=3000, seed=11)
    assert p1 == p2
    assert 0 < p1 <= 1
    k = p1 * 3001 - 1  # add-one estimate: p = (1 + k) / (R + 1) with an integer k in [0, R]
    assert k == pytest.approx(round(k), abs=1e-9, rel=0) and 0 <= round(k) <= 3000


def test_monte_carlo_large_effect_gives_minimum():
    base, system = _runs(100, effect=0.5, seed=8, noise=0.05)
    assert sig.paired_randomization(base, system, resamples=2000, seed=0) == pytest.approx(1 / 2001, abs=1e-15, rel=0)


def test_monte_carlo_identical_systems_give_one():
    base, _ = _runs(200, effect=0.0, seed=9)
    assert sig.paired_randomization(base, dict(base), resamples=2000) == 1.0


def test_monte_carlo_agrees_with_scipy_permutation_test():
    base, system = _runs(120, effect=0.035, seed=12)
    d = _diffs(base, system)
    ours = sig.paired_randomization(base, system, resamples=50_000, seed=0)
    ref = stats.permutation_test((d,), lambda x, axis: np.mean(x, axis=axis), vectorized=True,
                                 permutation_type="samples", alternative="two-sided",
                                 n_resamples=50_000, rng=np.random.default_rng(123)).pvalue
    assert 0.005 < ref < 0.5  # a mid-range p, where the check means something
    assert ours == pytest.approx(ref, abs=0.01)


def test_randomization_rejects_bad_input():
    with pytest.raises(ValueError):
        sig.paired_randomization({"a": 0.1}, {"a": 0.2}, resamples=0)
    with pytest.raises(ValueError):
        sig.paired_randomization({"a": 0.1}, {"b": 0.2})
    with pytest.raises(ValueError):
        sig.paired_t({}, {})


# --- Holm ---------------------------------------------------------------------------------------

def _holm_by_hand(p: list[float]) -> list[float]:
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        out[i] = min(1.0, running)
    return out


@pytest.mark.parametrize("p", [
    [0.01, 0.04, 0.03, 0.005],
    [0.02, 0.02, 0.02, 0.5, 0.001, 0.001],  # ties
    [0.3, 0.3, 0.9, 0.01],  # clipped at 1
    [0.04],
    list(np.random.default_rng(0).uniform(0, 0.2, 15)),
])
def test_holm_matches_hand_step_down(p):
    assert sig.holm(p) == pytest.approx(_holm_by_hand(p), abs=1e-9, rel=0)


def test_holm_empty():
    assert sig.holm([]) == []


# --- compare ------------------------------------------------------------------------------------

def _table():
    """One baseline and three systems on the same 150 queries, each dict in its own order."""
    rng = np.random.default_rng(20)
    qids = [f"q{i:03d}" for i in range(150)]
    base = rng.uniform(0.2, 0.8, 150)
    systems = {}
    for label, effect in [("strong", 0.08), ("weak", 0.0), ("worse", -0.06)]:
        values = base + effect + rng.normal(0.0, 0.2, 150)
        systems[label] = {qids[i]: float(values[i]) for i in rng.permutation(150)}
    return {qids[i]: float(base[i]) for i in rng.permutation(150)}, systems


def test_compare_holm_per_family_and_marks():
    base, systems = _table()
    rows = sig.compare("BM25", base, systems, alpha=0.05, resamples=2000, seed=3)
    assert [r.system for r in rows] == ["strong", "weak", "worse"]
    t_raw = [sig.paired_t(base, s) for s in systems.values()]
    r_raw = [sig.paired_randomization(base, s, resamples=2000, seed=3) for s in systems.values()]
    assert [r.t_p for r in rows] == pytest.approx(t_raw, abs=1e-12, rel=0)
    assert [r.rand_p for r in rows] == pytest.approx(r_raw, abs=1e-12, rel=0)
    assert [r.t_p_holm for r in rows] == pytest.approx(_holm_by_hand(t_raw), abs=1e-9, rel=0)
    assert [r.rand_p_holm for r in rows] == pytest.approx(_holm_by_hand(r_raw), abs=1e-9, rel=0)
    for r in rows:
        assert r.baseline == "BM25" and r.measure == "nDCG@10" and r.n == 150
        assert r.significant_t == (r.t_p_holm < 0.05)
        assert r.significant_rand == (r.rand_p_holm < 0.05)
        assert r.mark == ("*" if r.significant_t else "") + ("†" if r.significant_rand else "")
        assert r.diff == pytest.approx(r.system_mean - r.baseline_mean, abs=1e-12, rel=0)
        assert r.baseline_mean == pytest.approx(np.mean(list(base.values())), abs=1e-12, rel=0)
    strong, weak, worse = rows
    assert strong.mark == "*†" and strong.direction == "+"
    assert worse.mark == "*†" and worse.direction == "-"
    assert weak.mark == ""
    d = strong.as_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["mark"] == "*†" and d["direction"] == "+" and type(d["significant_t"]) is bool


def test_compare_mark_only_one_test():
    base = {f"q{i}": 0.5 for i in range(5)}
    system = {f"q{i}": 0.5 + 0.01 * (i + 1) for i in range(5)}
    # 5 queries: exact randomization p = 2/32 = 0.0625 > 0.05, while the t-test gives 0.013.
    (row,) = sig.compare("base", base, {"s": system})
    assert row.rand_p == pytest.approx(2 / 32, abs=1e-12, rel=0) and row.t_p < 0.05
    assert row.mark == "*"
    (row,) = sig.compare("base", base, {"s": system}, alpha=0.07)
    assert row.mark == "*†"


def test_compare_marks_use_holm_adjusted_p():
    base, system = _runs(100, effect=0.04, seed=57)  # raw p about 0.02 for both tests
    (alone,) = sig.compare("b", base, {"s": system}, resamples=2000)
    assert 0.0167 < alone.t_p < 0.05 and 0.0167 < alone.rand_p < 0.05
    assert alone.mark == "*†"  # one comparison: Holm changes nothing
    rows = sig.compare("b", base, {"s1": system, "s2": dict(system), "s3": dict(system)}, resamples=2000)
    for r in rows:  # three tied comparisons: each adjusted p is 3 x raw > 0.05, so no mark
        assert r.t_p_holm == pytest.approx(3 * alone.t_p, abs=1e-9, rel=0)
        assert r.rand_p_holm == pytest.approx(3 * alone.rand_p, abs=1e-9, rel=0)
        assert r.mark == "" and not r.significant_t and not r.significant_rand


def test_compare_equal_direction():
    base, _ = _runs(20, effect=0.0, seed=30)
    (row,) = sig.compare("b", base, {"same": dict(base)})
    assert row.direction == "=" and row.mark == "" and row.t_p == 1.0 and row.rand_p == 1.0


def test_compare_pairs_by_qid_not_dict_order():
    base, systems = _table()
    reordered_base = dict(sorted(base.items(), reverse=True))
    reordered = {k: dict(sorted(v.items(), key=lambda kv: kv[1])) for k, v in systems.items()}
    a = [r.as_dict() for r in sig.compare("b", base, systems, resamples=500)]
    b = [r.as_dict() for r in sig.compare("b", reordered_base, reordered, resamples=500)]
    assert a == b
    # pairing by position instead of qid would give a different difference vector and p
    scrambled = dict(zip(sorted(base), [systems["weak"][q] for q in sorted(base, reverse=True)]))
    assert sig.paired_t(base, scrambled) != pytest.approx(a[1]["t_p"], abs=1e-9, rel=0)


def test_compare_mismatched_qids_name_the_system():
    base, systems = _table()
    systems["short"] = {q: v for q, v in list(systems["weak"].items()) if q not in ("q003", "q007")}
    with pytest.raises(ValueError, match=r"'short'.*2 qids differ.*q003.*q007"):
        sig.compare("b", base, systems)
    extra = dict(systems["weak"], zz1=0.5)
    with pytest.raises(ValueError, match=r"'extra'.*1 qids differ.*zz1"):
        sig.compare("b", base, {"extra": extra})


def test_legend_mentions_settings():
    text = sig.legend("BM25", alpha=0.01, resamples=20_000, seed=4)
    assert "\n" not in text
    for part in ("*", "†", "BM25", "t-test", "randomization", "20,000", "seed 4", "Holm", "0.01"):
        assert part in text
