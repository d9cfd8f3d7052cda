"""How far the report's scaling laws can be trusted: backtests, the compute-optimal size, Fang's form.

A law exists to predict runs nobody can afford, so each is checked against a run it did not see:

- ``backtest``: refit a series without its largest x (every seed there), predict that x and
  compare with the measured mean. The interval is a prediction interval for that mean, not only
  for the curve: each bootstrap draw's prediction (``PowerLawFit.draws``) times the run-to-run
  noise of a mean of the held-out runs: the fit's residual sd in log units (n - p degrees of
  freedom) over sqrt(runs), times Student's t. On synthetic correct laws
  (5 sizes x 3 seeds, 3% noise) it held 91% of the held-out means, the curve's interval alone 82%
  (tests/test_backtest.py). A measured value outside is a miss, flagged in
  ``backtest_table``.
- ``isoflop`` (Hoffmann et al.'s approach 2): per FLOP budget C, a parabola of the error in log N
  (every run a point, seeds included) whose vertex is N*(C); across budgets whose vertex is a
  minimum inside their range of N, the line log N* = log k + a log C. Its interval: a bootstrap
  that resamples runs within each budget and refits everything (``resamples``, seeded); a resample
  in which some budget loses its inner minimum or its three sizes is skipped and counted.
- ``fang``: Fang et al. (2024) fit contrastive entropy as L(N) = (A/N)^alpha + delta, which is
  ``power_floor``'s A' N^-alpha + E with A = A'^(1/alpha), delta = E.

Nothing here writes to disk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from scaling.analysis.fit import DISTINCT_RTOL, FORMS, PowerLawFit, distinct, fit_power_law


@dataclass
class Backtest:
    """A fit without its largest x, against the runs there. Values are errors (1 - metric) or losses."""

    series: str
    held_x: float
    measured: float
    """Mean over the held-out runs."""
    held_runs: int
    predicted: float
    lo: float
    hi: float
    n_fit: int
    refused: str | None = None
    curve_lo: float = float("nan")
    curve_hi: float = float("nan")
    """The fitted curve's own 95% interval (parameter uncertainty only)."""
    noise_sd: float = float("nan")
    """Residual sd of one run in log units (NaN: too few points to estimate it; the interval is then
    the curve's)."""

    @property
    def inside(self) -> bool:
        """The measured value within [lo, hi], give or take rounding (1e-12 of the value): a law
        that fits its points exactly has an interval of one value, which the measurement may
        miss by a last digit."""
        slack = 1e-12 * max(abs(self.lo), abs(self.hi), abs(self.measured))
        return self.refused is None and bool(self.lo - slack <= self.measured <= self.hi + slack)

    def as_dict(self) -> dict:
        return {**_json_ready(self.__dict__), "inside": self.inside}


def _json_ready(fields: dict) -> dict:
    """NaN (no interval, refused) as None: fits.json stays strict JSON."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in fields.items()}


def backtest(x, y, form: str = "power", series: str = "series", resamples: int = 1000, seed: int = 0) -> Backtest:
    """Hold out every point within 1% of the largest x, fit the rest, predict the held x. With too
    few distinct x left for ``form``, a Backtest with ``refused`` set (and NaN numbers)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.size == 0:
        raise ValueError(f"{series}: {x.size} x values but {y.size} values to fit")
    held = x >= x.max() / (1 + DISTINCT_RTOL)
    measured, nan = float(y[held].mean()), float("nan")
    left = distinct(x[~held])
    if left < len(FORMS[form]) + 1:  # at least one point more than parameters, or the fit interpolates
        return Backtest(series, float(x.max()), measured, int(held.sum()), nan, nan, nan, int((~held).sum()),
                        refused=f"{left} distinct x below the largest: {form} needs {len(FORMS[form]) + 1}")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_power_law(x[~held], y[~held], form=form, series=series, resamples=resamples, seed=seed)
    curve_lo, curve_hi = (float(v[0]) for v in fit.predict_interval(x.max()))
    dof = int((~held).sum()) - len(FORMS[form])
    resid = np.log(y[~held]) - np.log(fit.predict(x[~held]))
    sd = float(np.sqrt(np.sum(resid ** 2) / dof)) if dof > 0 else nan
    lo, hi = ((curve_lo, curve_hi) if math.isnan(sd)  # no noise estimate: the curve's interval
              else _predictive(fit, float(x.max()), sd / math.sqrt(int(held.sum())), dof, seed))
    return Backtest(series, float(x.max()), measured, int(held.sum()), float(fit.predict(x.max())),
                    lo, hi, int((~held).sum()), curve_lo=curve_lo, curve_hi=curve_hi, noise_sd=sd)


def _predictive(fit: PowerLawFit, x: float, sd: float, dof: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentiles of draw-prediction x exp(sd t_dof): Student's t, as sd is estimated from dof
    residuals (NaN without draws)."""
    d = fit.draws
    if d.size == 0:
        return float("nan"), float("nan")
    curve = d[:, 0] * x ** (-d[:, 1]) + (d[:, 2] if d.shape[1] > 2 else 0.0)  # (draws,)
    rng = np.random.default_rng(seed)
    y = curve[:, None] * np.exp(sd * rng.standard_t(dof, (curve.size, 20)))  # (draws, 20 noise draws)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(y, [tail, 100 - tail])
    return float(lo), float(hi)


def backtest_table(backtests: list[Backtest], as_metric: bool = True, vs: str = "x") -> str:
    """Markdown: series | held-out x | runs | measured | predicted [95% interval] | verdict; errors
    shown as the metric (1 - error) when ``as_metric``."""
    def show(v: float) -> float:
        return 1 - v if as_metric else v
    rows = ["| series | held-out " + vs + " | runs held out | measured | predicted [95% interval] | verdict |",
            "| --- | --- | --- | --- | --- | --- |"]
    for b in backtests:
        if b.refused:
            rows.append(f"| {b.series} | {b.held_x:.3g} | {b.held_runs} | {show(b.measured):.4f} | - | refused: {b.refused} |")
            continue
        if math.isnan(b.lo):
            rows.append(f"| {b.series} | {b.held_x:.3g} | {b.held_runs} | {show(b.measured):.4f} | "
                        f"{show(b.predicted):.4f} [no interval] | no interval to judge by |")
            continue
        lo, hi = sorted((show(b.lo), show(b.hi)))
        rows.append(f"| {b.series} | {b.held_x:.3g} | {b.held_runs} | {show(b.measured):.4f} | "
                    f"{show(b.predicted):.4f} [{lo:.4f}, {hi:.4f}] | "
                    + ("inside" if b.inside else "**missed**") + " |")
    return "\n".join(rows)


@dataclass
class Budget:
    """One FLOP budget's parabola: error = c2 u^2 + c1 u + c0 with u = ln N."""

    flops: float
    sizes: list[float]
    mean_error: list[float]
    coeffs: list[float]
    n_star: float | None
    """The vertex exp(-c1 / 2 c2); None without a minimum (c2 <= 0)."""
    inside: bool
    """The vertex is a minimum within [min N, max N]."""
    best_measured: float
    """The size with the lowest mean error."""

    @property
    def note(self) -> str:
        if self.n_star is None:
            return "no minimum (the parabola opens downwards)"
        if not self.inside:
            return "vertex outside the sizes run (best size at the end of the ladder)"
        return "inside"


@dataclass
class IsoFLOPFit:
    """Per-budget vertices and the line N* = k C^a through the usable ones, with bootstrap intervals."""

    budgets: list[Budget]
    k: float | None = None
    a: float | None = None
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    refused: str | None = None
    resamples: int = 0
    skipped: int = 0
    draws: np.ndarray = field(default_factory=lambda: np.empty((0, 2)), repr=False)
    """(log k, a) per kept resample."""

    def predict(self, c) -> np.ndarray:
        return self.k * np.asarray(c, dtype=float) ** self.a

    def predict_interval(self, c, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        c = np.atleast_1d(np.asarray(c, dtype=float))
        if len(self.draws) == 0:
            return np.full(c.shape, np.nan), np.full(c.shape, np.nan)
        n = np.exp(self.draws[:, :1] + self.draws[:, 1:2] * np.log(c)[None, :])
        tail = 100 * (1 - level) / 2
        return np.percentile(n, tail, axis=0), np.percentile(n, 100 - tail, axis=0)

    def as_dict(self) -> dict:
        return {"budgets": [{**b.__dict__, "note": b.note} for b in self.budgets], "k": self.k, "a": self.a,
                "ci": {k: list(v) for k, v in self.ci.items()}, "refused": self.refused,
                "resamples": self.resamples, "skipped_resamples": self.skipped}

    def table(self, predictions: dict[str, float] | None = None) -> str:
        rows = ["| budget (FLOPs) | sizes (M) | N* (M) | best measured (M) | vertex |", "| --- | --- | --- | --- | --- |"]
        for b in self.budgets:
            star = "-" if b.n_star is None else f"{b.n_star / 1e6:.2f}"
            rows.append(f"| {b.flops:.3g} | {', '.join(f'{n / 1e6:.1f}' for n in b.sizes)} | {star} | "
                        f"{b.best_measured / 1e6:.2f} | {b.note} |")
        out = "\n".join(rows)
        if self.refused:
            return out + f"\n\nN* = k C^a: refused: {self.refused}"
        lo, hi = self.ci.get("a", (math.nan, math.nan))
        out += (f"\n\nN* = k C^a with a = {self.a:.3f} [{lo:.3f}, {hi:.3f}] (95% bootstrap interval, "
                f"{self.resamples - self.skipped} of {self.resamples} resamples kept), k = {self.k:.3g}, through "
                f"{sum(b.inside for b in self.budgets)} budgets.")
        for name, c in (predictions or {}).items():
            plo, phi = self.predict_interval(c)
            out += f"\n- {name}: C = {c:.3g} FLOPs -> N* = {float(self.predict(c)):.3g} [{plo[0]:.3g}, {phi[0]:.3g}]"
        return out


def _parabola(u: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float | None, bool]:
    coeffs = np.polyfit(u, y, 2)
    if coeffs[0] <= 0:
        return coeffs, None, False
    v = -coeffs[1] / (2 * coeffs[0])
    return coeffs, v, bool(u.min() <= v <= u.max())


def _resampled_vertex(u: np.ndarray, y: np.ndarray, rng) -> float | None:
    """ln N* of one budget's parabola through a resample of its runs (with replacement); None when
    the resample has fewer than three sizes or its vertex is not a minimum inside them."""
    idx = rng.integers(0, u.size, u.size)
    if len(set(u[idx].round(9).tolist())) < 3:
        return None
    _, v, inside = _parabola(u[idx], y[idx])
    return v if inside else None


def _line(c: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    """(log k, a) of ln N* = ln k + a ln C by least squares."""
    a, logk = np.polyfit(np.log(c), v, 1)
    return float(logk), float(a)


def isoflop(budgets, params, errors, resamples: int = 1000, seed: int = 0) -> IsoFLOPFit:
    """Fit per-budget parabolas of ``errors`` in ln(``params``) and N* = k C^a across the budgets
    (parallel arrays, one entry per run). Budgets with fewer than three distinct sizes are left out."""
    c, n, y = (np.asarray(v, dtype=float) for v in (budgets, params, errors))
    if not (c.shape == n.shape == y.shape):
        raise ValueError(f"isoflop: {c.size} budgets, {n.size} sizes and {y.size} errors")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(n))) or np.any(c <= 0) or np.any(n <= 0) \
            or not np.all(np.isfinite(y)):
        raise ValueError("isoflop: budgets and sizes must be > 0 and errors finite")
    groups = []
    for flops in sorted(set(c.tolist())):
        m = c == flops
        if len(set(n[m].tolist())) >= 3:
            groups.append((flops, np.log(n[m]), y[m], n[m]))
    out = []
    for flops, u, yy, nn in groups:
        coeffs, v, inside = _parabola(u, yy)
        sizes = sorted(set(nn.tolist()))
        means = [float(yy[nn == size].mean()) for size in sizes]
        out.append(Budget(flops, sizes, means, coeffs.tolist(), None if v is None else float(math.exp(v)), inside,
                          sizes[int(np.argmin(means))]))
    fit = IsoFLOPFit(out)
    usable = [(g, b) for g, b in zip(groups, out) if b.inside]
    if len(usable) < 2:
        fit.refused = f"{len(usable)} budget(s) with a minimum inside its sizes; the line needs 2"
        return fit
    logk, a = _line(np.array([b.flops for _, b in usable]), np.log([b.n_star for _, b in usable]))
    fit.k, fit.a = math.exp(logk), a
    rng = np.random.default_rng(seed)
    draws, skipped = [], 0
    for _ in range(resamples):
        vs = []
        for (flops, u, yy, _n), _b in usable:
            v = _resampled_vertex(u, yy, rng)
            if v is None:
                break
            vs.append(v)
        if len(vs) < len(usable):
            skipped += 1
            continue
        draws.append(_line(np.array([b.flops for _, b in usable]), np.array(vs)))
    fit.resamples, fit.skipped = resamples, skipped
    if draws:
        fit.draws = np.array(draws)
        fit.ci = {"a": tuple(np.percentile(fit.draws[:, 1], [2.5, 97.5]).tolist()),
                  "k": tuple(np.percentile(np.exp(fit.draws[:, 0]), [2.5, 97.5]).tolist())}
    return fit


@dataclass
class IsoFLOPBacktest:
    """The line N* = k C^a refitted without the largest usable budget, against that budget's vertex."""

    held_flops: float
    measured: float
    """The held-out budget's parabola vertex N*."""
    predicted: float | None = None
    lo: float = math.nan
    hi: float = math.nan
    """95% interval of predicted / measured, from independent bootstraps of the line (the other
    budgets' runs) and of the held-out vertex (its own runs): the measured vertex is inside when
    the interval holds 1."""
    refused: str | None = None

    @property
    def inside(self) -> bool:
        return self.refused is None and bool(self.lo - 1e-12 <= 1.0 <= self.hi + 1e-12)

    def as_dict(self) -> dict:
        return {**_json_ready(self.__dict__), "inside": self.inside}

    def line(self) -> str:
        if self.refused:
            return f"Backtest: refused: {self.refused}"
        return (f"Backtest: refitted without the largest budget ({self.held_flops:.3g} FLOPs), the line predicts "
                f"N* = {self.predicted:.3g} there; its parabola's vertex is {self.measured:.3g} (predicted / measured "
                f"{self.predicted / self.measured:.2f}, 95% interval [{self.lo:.2f}, {self.hi:.2f}]): "
                + ("inside" if self.inside else "**missed**") + ".")


def isoflop_backtest(budgets, params, errors, resamples: int = 1000, seed: int = 0) -> IsoFLOPBacktest:
    """Refit ``isoflop`` without the runs of the largest budget whose vertex is inside its sizes and
    predict that vertex: needs three such budgets (the line through the other two or more)."""
    c, n, y = (np.asarray(v, dtype=float) for v in (budgets, params, errors))
    full = isoflop(c, n, y, resamples=0)
    usable = [b for b in full.budgets if b.inside]
    if len(usable) < 3:
        return IsoFLOPBacktest(math.nan, math.nan,
                               refused=f"{len(usable)} budget(s) with a vertex inside; the backtest needs 3")
    held = max(usable, key=lambda b: b.flops)
    keep = c != held.flops
    fit = isoflop(c[keep], n[keep], y[keep], resamples=resamples, seed=seed)
    out = IsoFLOPBacktest(held.flops, held.n_star, predicted=float(fit.predict(held.flops)))
    m = c == held.flops
    rng = np.random.default_rng(seed + 1)
    vertex = np.array([v for v in (_resampled_vertex(np.log(n[m]), y[m], rng) for _ in range(resamples))
                       if v is not None])
    if len(fit.draws) and len(vertex):
        pred = fit.draws[:, 0] + fit.draws[:, 1] * math.log(held.flops)  # ln N* per line draw
        k = min(len(pred), len(vertex))
        ratio = np.exp(pred[:k] - vertex[:k])  # paired at random: the two bootstraps are independent
        out.lo, out.hi = (float(v) for v in np.percentile(ratio, [2.5, 97.5]))
    else:
        out.refused = "no bootstrap draw kept a vertex inside its sizes"
    return out


def fang(fit: PowerLawFit) -> dict:
    """A ``power_floor`` fit of a loss as Fang et al. write it: L(N) = (A/N)^alpha + delta."""
    alpha, a_prime = fit.params["alpha"], fit.params["A"]
    out = {"A": a_prime ** (1 / alpha), "alpha": alpha, "delta": fit.params.get("E", 0.0)}
    if fit.draws.size:
        a = fit.draws[:, 0] ** (1 / fit.draws[:, 1])
        out["A_ci"] = tuple(np.percentile(a, [2.5, 97.5]).tolist())
    return out
