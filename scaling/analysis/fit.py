"""Power-law fits of a retrieval error against scale, with bootstrap intervals.

A metric such as nDCG@10 rises towards 1 with scale; its error ``y = 1 - metric`` falls like a
loss, so the error is what is fitted. Two forms:

- ``power``:       y = A * x^(-alpha)              (2 parameters)
- ``power_floor``: y = A * x^(-alpha) + E, E >= 0   (3 parameters; E is the error no scale removes)

The fit is made in log space, residuals ``log y - log model(x)``, with a Huber loss
(``F_SCALE`` = 0.1 log units, about a 10% relative error: residuals beyond it count linearly, so
one bad run cannot drag the exponent) and from a grid of starts, keeping the lowest cost (as in
Epoch AI's replication of the Chinchilla fits and Fang et al. 2024 for dense retrieval). Positivity
holds by construction: the parameters are log A, alpha and log E. For conditioning x is divided by
its geometric mean during the fit; the reported A is in the original units (y = A x^-alpha with x
as given), so with x ~ 1e8 and alpha ~ 0.3 A is large: ``predict`` is the way to read it.

The fit is scipy's ``least_squares`` (loss="huber") from a grid of starts: for ``power_floor``
3 alphas x 3 floors (shares of the smallest error); for ``power``, whose log-space objective is
convex (linear in log A and alpha), the ordinary least-squares line and 3 alphas, which agree.

Intervals: a percentile bootstrap (default 1000 resamples, seeded numpy Generator). Points are
resampled with replacement and each resample is refitted, minimising the same cost with
``refit_batch``, a Levenberg-Marquardt iteration that advances all resamples at once (1000
least_squares calls would take seconds for the floor form); a resample with fewer distinct x than
the form has parameters cannot pin them down and is skipped (and counted), as is one whose refit
does not converge. Two x closer than 1%
count as one distinct value: the realised FLOPs of runs under one FLOP budget differ by a few
tenths of a percent, and a slope through them would be noise.

With only a small range of x the exponent and the floor trade off against each other (a 7x range
gave alpha 0.02 for a true 0.30 in a synthetic check), so a range under 10x is warned about.
Nothing here writes to disk.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.optimize import least_squares

FORMS: dict[str, tuple[str, ...]] = {"power": ("A", "alpha"), "power_floor": ("A", "alpha", "E")}
F_SCALE = 0.1
"""Huber transition, in log units of the error (~10% relative): beyond it a residual counts linearly."""
MIN_RANGE = 10.0
"""A max(x)/min(x) under this is warned about: exponent and floor are not identifiable."""
DISTINCT_RTOL = 0.01
"""x values closer than this (relative) count as one distinct point."""
SKIPPED_WARN = 0.1
"""More than this share of resamples skipped is warned about (the count is always in the result)."""
_ALPHA_STARTS = (0.1, 0.3, 0.7)
_FLOOR_STARTS = (0.01, 0.3, 0.7)
"""Floor starts as shares of the smallest observed error."""


class FitWarning(UserWarning):
    """A fit that ran but whose numbers deserve suspicion (short range, as many points as parameters)."""


@dataclass
class PowerLawFit:
    """One fitted series. ``params``: A (original units of x), alpha, and E for ``power_floor``;
    ``ci``: (lo, hi) percentile 95% intervals per parameter (NaN when every resample was skipped,
    or when the curve interpolates as many distinct points as it has parameters: then no resampling,
    ``resamples`` 0);
    ``r2``: in log space; ``x_range``: (min x, max x)."""

    series: str
    form: str
    params: dict[str, float]
    ci: dict[str, tuple[float, float]]
    r2: float
    n_points: int
    x_range: tuple[float, float]
    warnings: list[str] = field(default_factory=list)
    skipped_resamples: int = 0
    resamples: int = 0
    objective: str = "huber"
    """The loss minimised: huber, or linear (plain least squares)."""
    f_scale: float = F_SCALE
    draws: np.ndarray = field(default_factory=lambda: np.empty((0, 0)), repr=False, compare=False)
    """The bootstrap's parameter rows (A, alpha[, E]), kept for prediction intervals; not in as_dict."""

    def predict(self, x) -> np.ndarray:
        """The fitted error A * x^-alpha (+ E) at ``x`` (original units)."""
        x = np.asarray(x, dtype=float)
        y = self.params["A"] * x ** (-self.params["alpha"])
        return y + self.params.get("E", 0.0)

    def predict_interval(self, x, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval of the predicted error at ``x`` over the bootstrap draws (NaN
        without draws)."""
        x = np.atleast_1d(np.asarray(x, dtype=float))
        if self.draws.size == 0:
            nan = np.full(x.shape, np.nan)
            return nan, nan
        d = self.draws
        y = d[:, :1] * x[None, :] ** (-d[:, 1:2]) + (d[:, 2:3] if d.shape[1] > 2 else 0.0)
        tail = 100 * (1 - level) / 2
        return np.percentile(y, tail, axis=0), np.percentile(y, 100 - tail, axis=0)

    def predict_metric(self, x) -> np.ndarray:
        """The metric the fit implies: 1 - predicted error."""
        return 1.0 - self.predict(x)

    def as_dict(self) -> dict:
        """Plain JSON-ready values: tuples become lists, NaN (no interval, no R^2) becomes null, so
        that strict JSON readers (jq, browsers) read fits.json."""
        out = asdict(self)
        out.pop("draws", None)
        out["ci"] = {k: [_finite(lo), _finite(hi)] for k, (lo, hi) in self.ci.items()}
        out["r2"] = _finite(self.r2)
        out["x_range"] = [float(v) for v in self.x_range]
        return out


def _finite(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def distinct(x) -> int:
    """How many distinct values ``x`` holds, values within ``DISTINCT_RTOL`` of each other counting once."""
    lx = np.sort(np.log(np.asarray(x, dtype=float)))
    if lx.size == 0:
        return 0
    return 1 + int(np.sum(np.diff(lx) > math.log1p(DISTINCT_RTOL)))


def _model_log(theta: np.ndarray, u: np.ndarray, floor: bool) -> tuple[np.ndarray, np.ndarray]:
    """log model(u) with u = log(x / scale), and the Jacobian of the residual log y - log model
    with respect to theta = (log a, alpha[, log E]). Batched: theta (..., p) with u (..., n) gives
    (..., n) and (..., n, p)."""
    power = np.exp(theta[..., 0, None] - theta[..., 1, None] * u)
    if not floor:
        jac = np.stack(np.broadcast_arrays(-1.0, u), axis=-1)
        return np.log(power), jac
    e = np.exp(theta[..., 2, None])
    m = power + e
    jac = np.stack([-power / m, u * power / m, -np.broadcast_to(e, m.shape) / m], axis=-1)
    return np.log(m), jac


def _cost(r: np.ndarray, loss: str, f_scale: float) -> np.ndarray:
    """least_squares' cost over the last axis: 0.5 sum r^2 (linear), or its Huber version."""
    if loss == "linear":
        return 0.5 * np.sum(r ** 2, axis=-1)
    z = (r / f_scale) ** 2
    return 0.5 * f_scale ** 2 * np.sum(np.where(z <= 1, z, 2 * np.sqrt(z) - 1), axis=-1)


def _solve(u: np.ndarray, ly: np.ndarray, floor: bool, starts: list[np.ndarray], loss: str,
           f_scale: float, bounds) -> tuple[np.ndarray, float]:
    """The lowest-cost least_squares solution over ``starts``: (theta, cost)."""
    def resid(theta):
        return ly - _model_log(theta, u, floor)[0]

    def jac(theta):
        return _model_log(theta, u, floor)[1]

    best, best_cost = None, math.inf
    for start in starts:
        start = np.clip(start, bounds[0] + 1e-9, bounds[1] - 1e-9)
        try:
            sol = least_squares(resid, start, jac=jac, loss=loss, f_scale=f_scale, bounds=bounds,
                                x_scale=1.0, max_nfev=500)
        except (ValueError, FloatingPointError):
            continue
        if np.all(np.isfinite(sol.x)) and sol.cost < best_cost:
            best, best_cost = sol.x, sol.cost
    if best is None:
        raise ValueError("no start converged")
    return best, best_cost


def _lm_step(grad: np.ndarray, hess: np.ndarray, lam: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Levenberg-Marquardt steps (B, p) for the free parameters; fixed ones get 0."""
    eye = np.eye(grad.shape[1])
    hess = hess * free[:, :, None] * free[:, None, :]
    diag = np.maximum(np.diagonal(hess, axis1=1, axis2=2), 1e-12)
    system = hess + (lam[:, None] * diag + ~free)[:, :, None] * eye + 1e-15 * eye
    return -np.linalg.solve(system, (grad * free)[..., None])[..., 0]


def refit_batch(u: np.ndarray, ly: np.ndarray, theta0: np.ndarray, floor: bool, loss: str, f_scale: float,
                lo: np.ndarray, hi: np.ndarray, max_iter: int = 500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimise the same cost as ``_solve`` for many data sets at once: u, ly (B, n), bounds lo, hi
    (B, p), every row started from ``theta0``. Levenberg-Marquardt on iteratively reweighted
    (Huber) residuals, steps projected into the bounds, all rows advanced together in numpy: 1000
    bootstrap refits take milliseconds instead of the seconds 1000 least_squares calls take.
    Returns (theta (B, p), cost (B,), converged (B,))."""
    b, p = u.shape[0], theta0.size
    theta = np.clip(np.broadcast_to(theta0, (b, p)), lo, hi)
    lam = np.full(b, 1e-3)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        logm, jac = _model_log(theta, u, floor)
        r = ly - logm
        cost = _cost(r, loss, f_scale)
        done = ~np.isfinite(cost)
        for _ in range(max_iter):
            w = np.ones_like(r) if loss == "linear" else np.minimum(1.0, f_scale / np.maximum(np.abs(r), 1e-300))
            jw = jac * w[..., None]
            grad = np.einsum("bnp,bn->bp", jw, r)
            hess = np.einsum("bnp,bnq->bpq", jw, jac)
            # a parameter on a bound that the gradient, or the step, would cross stays there (an
            # active set) and the step is solved for the others: projecting its step instead would
            # leave the others creeping along the bound for thousands of steps
            at_lo, at_hi = theta <= lo, theta >= hi
            free = ~((at_lo & (grad > 0)) | (at_hi & (grad < 0)))
            step = _lm_step(grad, hess, lam, free)
            free &= ~((at_lo & (step < 0)) | (at_hi & (step > 0)))
            step = _lm_step(grad, hess, lam, free)
            new = np.clip(theta + step, lo, hi)
            logm_new, jac_new = _model_log(new, u, floor)
            r_new = ly - logm_new
            cost_new = _cost(r_new, loss, f_scale)
            better = (cost_new <= cost) & np.isfinite(cost_new) & ~done
            # converged as least_squares' default ftol: the cost moved by under 1e-8 of itself (a
            # Huber cost can be flat along a direction, where smaller changes go on for thousands of steps)
            small = (np.abs(cost - cost_new) <= 1e-15 + 1e-8 * cost) | \
                    (np.max(np.abs(new - theta), axis=1) <= 1e-10 * (1 + np.max(np.abs(theta), axis=1)))
            theta[better], r[better], jac[better], cost[better] = new[better], r_new[better], \
                jac_new[better], cost_new[better]
            lam = np.where(better, np.maximum(lam * 0.3, 1e-12), lam * 10)
            done |= small | (lam > 1e12)  # no step of any length lowers the cost: a minimum
            if done.all():
                break
    return theta, cost, done & np.isfinite(cost)


def _starts(u: np.ndarray, ly: np.ndarray, floor: bool) -> list[np.ndarray]:
    if not floor:  # convex: every start reaches the one minimum; the least-squares line is nearest
        slope, intercept = np.polyfit(u, ly, 1)
        return [np.array([intercept, -slope])] + [np.array([float(np.mean(ly)), a]) for a in _ALPHA_STARTS]
    y = np.exp(ly)
    centre = float(np.exp(np.mean(ly)))  # the error near u = 0 (the geometric-mean x)
    out = []
    for alpha in _ALPHA_STARTS:
        for share in _FLOOR_STARTS:
            e = share * float(y.min())
            out.append(np.array([math.log(max(centre - e, 1e-3 * centre)), alpha, math.log(e)]))
    return out


def _bounds(ly: np.ndarray, floor: bool) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on theta for log errors ``ly`` (n,) or a batch (B, n): alpha in [-5, 10] and the
    floor E between 0.1% of the smallest error (indistinguishable from none) and the largest."""
    shape = ly.shape[:-1]
    if not floor:
        return np.full(shape + (2,), -np.inf), np.full(shape + (2,), np.inf)
    lo = np.stack(np.broadcast_arrays(-np.inf, -5.0, ly.min(axis=-1) + math.log(1e-3)), axis=-1)
    hi = np.stack(np.broadcast_arrays(np.inf, 10.0, ly.max(axis=-1)), axis=-1)
    return lo, hi


def _to_params(theta: np.ndarray, scale: float, floor: bool) -> dict[str, float]:
    """(log a, alpha[, log E]) on x / scale -> A in original units, alpha, E."""
    out = {"A": float(math.exp(theta[0] + theta[1] * math.log(scale))), "alpha": float(theta[1])}
    if floor:
        out["E"] = float(math.exp(theta[2]))
    return out


def fit_power_law(x, error, form: str = "power", series: str = "series", resamples: int = 1000,
                  seed: int = 0, loss: str = "huber", f_scale: float = F_SCALE) -> PowerLawFit:
    """Fit ``error = A x^-alpha (+ E)`` in log space with bootstrap 95% intervals.

    Raises ValueError (naming ``series``) for an unknown form, non-positive or non-finite x or
    error, or fewer distinct x than parameters. Warns (``FitWarning``, also listed in the result's
    ``warnings``) when max(x)/min(x) < 10, when there are no more points than parameters, and when
    more than 10% of the resamples were skipped (the count is always in ``skipped_resamples``).
    ``loss``: "huber", or "linear" for plain least squares.
    """
    if form not in FORMS:
        raise ValueError(f"{series}: unknown form {form!r} (known: {', '.join(FORMS)})")
    if loss not in ("huber", "linear"):
        raise ValueError(f"{series}: unknown loss {loss!r} (known: huber, linear)")
    names = FORMS[form]
    floor = form == "power_floor"
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(error, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"{series}: {x.size} x values but {y.size} errors")
    if not (np.all(np.isfinite(x)) and np.all(x > 0)):
        raise ValueError(f"{series}: x must be finite and > 0 (got {x.tolist()})")
    if not (np.all(np.isfinite(y)) and np.all(y > 0)):
        raise ValueError(f"{series}: the error 1 - metric must be finite and > 0 (got {y.tolist()})")
    n_distinct = distinct(x)
    if n_distinct < len(names):
        raise ValueError(f"{series}: {n_distinct} distinct x value(s) (of {x.size} points) cannot fit "
                         f"form {form!r}, which has {len(names)} parameters ({', '.join(names)})")

    notes: list[str] = []
    ratio = float(x.max() / x.min())
    if ratio < MIN_RANGE:
        notes.append(f"x spans {ratio:.1f}x: exponent and floor not identifiable over a range under "
                     f"{MIN_RANGE:.0f}x")
    if n_distinct == len(names):
        notes.append(f"{n_distinct} distinct points for {len(names)} parameters: the curve interpolates, "
                     "R^2 is 1 by construction and there is no interval")

    scale = float(np.exp(np.mean(np.log(x))))
    u, ly = np.log(x / scale), np.log(y)
    bounds = _bounds(ly, floor)
    theta, _ = _solve(u, ly, floor, _starts(u, ly, floor), loss, f_scale, bounds)
    fitted = _model_log(theta, u, floor)[0]
    ss_tot = float(np.sum((ly - ly.mean()) ** 2))
    r2 = 1.0 - float(np.sum((ly - fitted) ** 2)) / ss_tot if ss_tot > 0 else float("nan")
    if floor and theta[2] <= bounds[0][2] + 1e-6:
        notes.append("the floor E sits at its lower bound (~0): these points show no floor")
    if floor and not bounds[0][1] + 1e-3 < theta[1] < bounds[1][1] - 1e-3:  # only the floor form bounds alpha
        notes.append(f"alpha sits at its bound ({theta[1]:.0f}): these points do not follow the form, "
                     "the fit is not a law")

    if n_distinct == len(names):  # every resample that fits reproduces the same curve: no spread to read
        draws, skipped = np.empty((0, len(names))), 0
    else:
        draws, skipped = _bootstrap(u, ly, floor, theta, len(names), resamples, seed, loss, f_scale, scale)
    if resamples and skipped > SKIPPED_WARN * resamples:
        notes.append(f"{skipped} of {resamples} resamples skipped (fewer distinct x than parameters, "
                     "or no convergence)")
    ci = {}
    for j, name in enumerate(names):
        if len(draws):
            lo, hi = np.percentile(draws[:, j], [2.5, 97.5])
            ci[name] = (float(lo), float(hi))
        else:
            ci[name] = (float("nan"), float("nan"))
    for note in notes:
        warnings.warn(f"{series}: {note}", FitWarning, stacklevel=2)
    return PowerLawFit(series=series, form=form, params=_to_params(theta, scale, floor), ci=ci, r2=r2,
                       n_points=int(x.size), x_range=(float(x.min()), float(x.max())), warnings=notes,
                       skipped_resamples=skipped, resamples=len(draws) + skipped, objective=loss, f_scale=f_scale,
                       draws=draws)


def _bootstrap(u, ly, floor, theta, n_params, resamples, seed, loss, f_scale, scale):
    """Refit ``resamples`` resamples of the points with ``refit_batch``, started from the full fit
    (which lies near every resample's optimum) and, for the floor form, from the middle of the
    start grid too, keeping the lower cost. Returns (draws as rows of A, alpha[, E], skipped): a
    resample is skipped when it has fewer distinct x than parameters or its refit did not converge."""
    if resamples <= 0:
        return np.empty((0, n_params)), 0
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, u.size, size=(resamples, u.size))
    ub, lyb = u[idx], ly[idx]
    gaps = np.diff(np.sort(ub, axis=1), axis=1) > math.log1p(DISTINCT_RTOL)
    usable = 1 + gaps.sum(axis=1) >= n_params
    ub, lyb = ub[usable], lyb[usable]
    lo, hi = _bounds(lyb, floor)
    thetas, cost, ok = refit_batch(ub, lyb, theta, floor, loss, f_scale, lo, hi)
    if floor:
        mid = _starts(u, ly, floor)[len(_ALPHA_STARTS) * len(_FLOOR_STARTS) // 2]
        other, other_cost, other_ok = refit_batch(ub, lyb, mid, floor, loss, f_scale, lo, hi)
        take = other_ok & (~ok | (other_cost < cost))
        thetas[take], ok = other[take], ok | other_ok
    thetas = thetas[ok]
    draws = [np.exp(thetas[:, 0] + thetas[:, 1] * math.log(scale)), thetas[:, 1]]
    if floor:
        draws.append(np.exp(thetas[:, 2]))
    return np.column_stack(draws), resamples - int(ok.sum())


def fit_metric(x, metric, form: str = "power", series: str = "series", **kwargs) -> PowerLawFit:
    """``fit_power_law`` on the error ``1 - metric`` (a metric of 1 or more is refused)."""
    return fit_power_law(x, 1.0 - np.asarray(metric, dtype=float), form=form, series=series, **kwargs)
