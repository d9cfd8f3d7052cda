"""The report's sections on how far its laws hold (``recipes/report.py``): backtests of every fit,
Fang's form on the contrastive entropy, and the IsoFLOP compute-optimal size.

Each takes the report's points (seeds averaged, each keeping its runs) and goes through every
seed's value. Returns markdown, a JSON-ready record (for fits.json) and the figure written, if any
(``isoflop.png``, atomically).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from scaling.analysis import laws, records
from scaling.analysis.fit import fit_power_law

CE = "contrastive_entropy"
PAPER_BUDGETS = {"1b": 3.34e19, "3b": 4.17e19, "8b": 3.42e19}
"""Training FLOPs of Zeng et al.'s contrastive runs as this toolkit plans them (dry runs of
``size=1b|3b|8b paradigm=dense budget=steps``: 33,250 steps of 112 queries for 1B, 12,600 and
4,200 of 128 for 3B and 8B, 1 + 16 documents, query 64 / document 128 tokens); the sizes'
non-embedding parameters are 0.97B, 2.82B and 6.98B."""
PAPER_PARAMS = {"1b": 0.973e9, "3b": 2.819e9, "8b": 6.980e9}


def _xy(points: list[records.Point], split: str, measure: str, vs: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = records.per_seed_xy(points, split, measure, vs)
    return np.array(x, dtype=float), np.array(y, dtype=float)


def backtests(points: list[records.Point], split: str, measure: str, resamples: int, seed: int) -> tuple[str, list]:
    """Every params and flops series of ``measure`` refitted without its largest x."""
    out = []
    for vs, series in (("params", records.params_series(points, split, measure)),
                       ("flops", records.flops_series(points, split, measure))):
        for name, pts in sorted(series.items()):
            if vs == "flops" and len({p.budget for p in pts}) < 2:
                continue
            x, y = _xy(pts, split, measure, vs)
            b = laws.backtest(x, 1 - y, series=f"{name} vs {vs}", resamples=resamples, seed=seed)
            out.append(b)
    if not out:
        return "", []
    text = ("Each series refitted without its largest x (every seed there) predicts the mean there: a 95% "
            "interval from the bootstrap's curves and the fit's residual noise for that many runs, against "
            f"the measured mean ({measure}; a measured value outside is **missed**):\n\n"
            + laws.backtest_table(out, as_metric=True))
    return text, [b.as_dict() for b in out]


def entropy_fits(points: list[records.Point], split: str, resamples: int, seed: int) -> tuple[str, list]:
    """Fang's L(N) = (A/N)^alpha + delta through each params series' contrastive entropy, and its backtest."""
    rows, record = [], []
    for name, pts in sorted(records.params_series(points, split, CE).items()):
        x, y = _xy(pts, split, CE, "params")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = fit_power_law(x, y, form="power_floor", series=name, resamples=resamples, seed=seed)
        except ValueError as e:
            rows.append(f"| {name} | refused: {e} | - | - | - | - | - |")
            record.append({"series": name, "status": "refused", "reason": str(e)})
            continue
        f = laws.fang(fit)
        lo, hi = fit.ci["alpha"]
        b = laws.backtest(x, y, form="power_floor", series=name, resamples=resamples, seed=seed)
        check = f"refused: {b.refused}" if b.refused else \
            f"{b.measured:.3f} vs {b.predicted:.3f} [{b.lo:.3f}, {b.hi:.3f}]: " + ("inside" if b.inside else "**missed**")
        rows.append(f"| {name} | {f['A']:.3g} | {f['alpha']:.3f} [{lo:.3f}, {hi:.3f}] | {f['delta']:.3f} | "
                    f"{fit.n_points} | {check} | {'; '.join(fit.warnings) or '-'} |")
        record.append({"series": name, "status": "ok", "fang": f, "fit": fit.as_dict(), "backtest": b.as_dict()})
    if not rows:
        return "", []
    text = ("Contrastive entropy L (lower is better) against non-embedding parameters N, fitted as Fang et al.'s "
            "L(N) = (A/N)^alpha + delta (through every seed's value; 95% bootstrap interval of alpha); the "
            "backtest predicts the largest N from the others (measured vs predicted [interval]):\n\n"
            "| series | A | alpha [95% CI] | delta | points | backtest at the largest N | warnings |\n"
            "| --- | --- | --- | --- | --- | --- | --- |\n"
            + "\n".join(rows))
    return text, record


def isoflop(points: list[records.Point], split: str, measure: str, resamples: int, seed: int,
            out: Path) -> tuple[str, list, Path | None]:
    """Per paradigm/loss series with FLOP budgets: the IsoFLOP fit of 1 - ``measure`` and its figure."""
    from scaling.analysis import plots
    by_series: dict[str, list] = {}
    held = [p for p in points if p.fraction == 1.0 and p.budget_flops is not None and p.seed_values(split, measure)]
    series = records.series_namer(held)
    for p in held:
        by_series.setdefault(series(p), []).append(p)
    fits, data, parts, record = {}, {}, [], []
    for name, pts in sorted(by_series.items()):
        c = [p.budget_flops for p in pts for _ in p.seed_values(split, measure)]
        n, metric = records.per_seed_xy(pts, split, measure, "params")
        y = [1 - v for v in metric]
        fit = laws.isoflop(c, n, y, resamples=resamples, seed=seed)
        if not fit.budgets:
            continue
        fits[name], data[name] = fit, (c, n, y)
        check = laws.isoflop_backtest(c, n, y, resamples=resamples, seed=seed)
        parts.append(f"**{name}** (1 - {measure}):\n\n" + fit.table(PAPER_BUDGETS if fit.a is not None else None)
                     + "\n\n" + check.line())
        rec = {"series": name, **fit.as_dict(), "backtest": check.as_dict()}
        if fit.a is not None:
            rec["predictions"] = {k: {"flops": cx, "n_star": float(fit.predict(cx)),
                                      "interval": [float(v[0]) for v in fit.predict_interval(cx)],
                                      "paper_params": PAPER_PARAMS[k]} for k, cx in PAPER_BUDGETS.items()}
        record.append(rec)
    if not fits:
        return "", [], None
    path = plots.isoflop_plot(fits, data, out / "isoflop.png", f"1 - {measure}",
                              PAPER_BUDGETS if any(f.a is not None for f in fits.values()) else None)
    text = ("Per FLOP budget, a parabola of 1 - " + measure + " in ln N (every seed a point) and its vertex "
            "N*(C); across the budgets whose vertex is a minimum inside the sizes run, N* = k C^a (Hoffmann et "
            "al.'s approach 2), its interval from resampling runs within each budget. The predictions at "
            "Zeng et al.'s budgets (1b/3b/8b) extrapolate far beyond the budgets fitted.\n\n" + "\n\n".join(parts))
    return text, record, path
