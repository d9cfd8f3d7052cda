"""Figures for the report, PNG through matplotlib's Agg backend (no display needed).

- ``scaling_plot``: the metric against non-embedding parameters or training FLOPs (log x), one
  marker set per paradigm x loss, its fitted curve (metric = 1 - fitted error) over the fitted
  range, and the reference systems as horizontal dashed lines; against parameters one panel per
  budget, against FLOPs the frontier points over every run;
- ``curves_plot``: the metric against training steps from each run's learning curve;
- ``fraction_plot``: the metric against the share of training data, for points that differ only
  in it.

Each returns the path written, or None when it has nothing to draw (the caller says so). Files
are written atomically (a temporary sibling, then a rename).
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from scaling.analysis.fit import PowerLawFit  # noqa: E402
from scaling.analysis.records import Point, Run  # noqa: E402
from scaling.io import write_atomic  # noqa: E402

X_LABELS = {"params": "non-embedding parameters", "flops": "training FLOPs"}
_MARKERS = "osD^vP*X"


def _style(index: int) -> dict:
    return {"color": f"C{index % 10}", "marker": _MARKERS[index % len(_MARKERS)]}


def _save(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    write_atomic(path, lambda f: f.write(buf.getvalue()), binary=True)
    return Path(path)


def _references(ax, references: dict, split: str, measure: str) -> None:
    for i, (system, splits) in enumerate(references.items()):
        value = splits.get(split, {}).get(measure)
        if value is not None:
            ax.axhline(value, linestyle="--", linewidth=1, color=f"C{(i + 7) % 10}", alpha=0.8,
                       label=f"{system} (reference)")


def _scaling_axes(ax, series: dict[str, list[Point]], fits: dict, vs: str, split: str, measure: str,
                  references: dict, background: list[Point] | None, title: str, legend_columns: int = 3) -> None:
    names = sorted({name.split(" @ ")[0] for name in series})  # one colour per paradigm/loss
    for name, points in sorted(series.items()):
        style = _style(names.index(name.split(" @ ")[0]))
        if background is not None:  # every run of the series, the frontier drawn over them
            rest = [p for p in background if p.series == name and p.fraction == 1.0 and p not in points
                    and measure in p.metrics.get(split, {})]
            if rest:
                ax.plot([p.flops for p in rest], [p.metrics[split][measure] for p in rest], linestyle="none",
                        markersize=4, alpha=0.3, color=style["color"], marker=style["marker"])
        x = np.array([_x(p, vs) for p in points])
        y = np.array([p.metrics[split][measure] for p in points])
        ax.plot(x, y, linestyle="none", markersize=6, label=name.split(" @ ")[0], **style)
        fit = fits.get(name)
        if fit is not None:
            grid = np.geomspace(fit.x_range[0], fit.x_range[1], 100)
            ax.plot(grid, fit.predict_metric(grid), color=style["color"], linewidth=1.5,
                    label=f"{name.split(' @ ')[0]} fit: alpha {fit.params['alpha']:.3f}")
    _references(ax, references, split, measure)
    ax.set_xscale("log")
    xs = sorted({_x(p, vs) for pts in series.values() for p in pts})
    if 1 < len(xs) <= 8:  # a few rungs or budgets: tick each one (log minor labels would overlap)
        ax.set_xticks(xs, [_compact(x, vs) for x in xs], fontsize=7)
        ax.minorticks_off()
    ax.set_xlabel(X_LABELS.get(vs, vs))
    ax.set_ylabel(f"{measure} ({split})")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    # below the axes, so that it hides no point
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=legend_columns, frameon=False)


def _x(p: Point, vs: str) -> float:
    return p.params if vs == "params" else p.flops


def _compact(x: float, vs: str) -> str:
    """3540672 -> '3.54M' (parameters); 2.6e13 -> '2.6e13' (FLOPs)."""
    if vs == "params":
        return f"{x / 1e6:.3g}M" if x >= 1e6 else f"{x / 1e3:.3g}k"
    mantissa, _, exponent = f"{x:.2g}".partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else mantissa


def _budget_value(budget: str) -> tuple:
    """Panels in budget order: '2.6e+13 FLOPs' -> (FLOPs, 2.6e13); '' (one budget) first."""
    number, _, unit = budget.partition(" ")
    try:
        return (unit, float(number))
    except ValueError:
        return (unit, 0.0)


def scaling_plot(series: dict[str, list[Point]], fits: dict[str, PowerLawFit | None], vs: str,
                 split: str, measure: str, references: dict, path: Path,
                 background: list[Point] | None = None) -> Path | None:
    """``measure`` on ``split`` against ``vs`` ("params" | "flops"), per series, fits drawn where
    given. Series named ``<paradigm/loss> @ <budget>`` get one panel per budget; ``background``
    (every point) is drawn faintly behind the series' own points (the FLOPs frontier over its runs)."""
    if not any(series.values()):
        return None
    panels: dict[str, dict[str, list[Point]]] = {}
    for name, points in series.items():
        panels.setdefault(name.split(" @ ", 1)[1] if " @ " in name else "", {})[name] = points
    order = sorted(panels, key=_budget_value)
    fig = Figure(figsize=(max(7, 5 * len(order)), 4.5))
    axes = fig.subplots(1, len(order), squeeze=False, sharey=True)[0]
    for ax, budget in zip(axes, order):
        title = f"{measure} vs {X_LABELS.get(vs, vs)}, {split}" + (f"\nat {budget}" if budget else "")
        _scaling_axes(ax, panels[budget], fits, vs, split, measure, references, background, title,
                      legend_columns=3 if len(order) == 1 else 2)  # side-by-side legends must not overlap
    return _save(fig, path)


def curve_split(run: Run, split: str) -> str | None:
    """The split a run's learning curve holds for ``split``'s dataset: ``<dataset>/dev`` when
    present, else the first of that dataset's splits, else None."""
    dataset = split.split("/", 1)[0]
    keys = [k for c in run.curve for k in c["metrics"]]
    if f"{dataset}/dev" in keys:
        return f"{dataset}/dev"
    return next((k for k in keys if k.split("/", 1)[0] == dataset), None)


def curves_plot(runs: list[Run], split: str, measure: str, path: Path) -> Path | None:
    """``measure`` against training step from each run's ``curve`` (one line per run)."""
    lines = []
    for run in runs:
        cs = curve_split(run, split)
        pts = sorted((c["step"], c["metrics"][cs][measure]) for c in run.curve
                     if cs and measure in c["metrics"].get(cs, {}))
        if pts:
            label = f"{run.paradigm}/{run.loss}/{run.size}"
            label += "" if run.fraction == 1.0 else f" data {run.fraction:g}"
            label += "" if run.seed in (None, 0) else f" seed {run.seed}"
            order = (run.paradigm, run.loss, run.params, -run.fraction, run.seed or 0)
            lines.append((order, label, cs, pts))
    if not lines:
        return None
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    lines.sort(key=lambda line: line[0])
    for i, (_, label, _, pts) in enumerate(lines):
        steps, values = zip(*pts)
        ax.plot(steps, values, linewidth=1.2, markersize=3, label=label, **_style(i))
    splits = sorted({cs for _, _, cs, _ in lines})
    ax.set_xlabel("training step")
    ax.set_ylabel(f"{measure} ({', '.join(splits)})")
    ax.set_title(f"Learning curves: {measure} on {', '.join(splits)}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=6, loc="best", ncol=2 if len(lines) > 8 else 1)
    return _save(fig, path)


def fraction_plot(points: list[Point], split: str, measure: str, path: Path) -> Path | None:
    """``measure`` against ``data.fraction`` for each (paradigm, loss, size, budget) trained at
    two or more fractions."""
    groups: dict[tuple, list[Point]] = {}
    for p in points:
        if measure in p.metrics.get(split, {}):
            groups.setdefault((p.paradigm, p.loss, p.size, p.budget), []).append(p)
    groups = {k: sorted(v, key=lambda p: p.fraction) for k, v in groups.items()
              if len({p.fraction for p in v}) >= 2}
    if not groups:
        return None
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    budgets = len({k[3] for k in groups}) > 1
    for i, (key, pts) in enumerate(sorted(groups.items())):
        label = "/".join(key[:3]) + (f" @ {key[3]}" if budgets else "")
        ax.plot([p.fraction for p in pts], [p.metrics[split][measure] for p in pts], linewidth=1.2,
                label=label, **_style(i))
    ax.set_xscale("log")
    fractions = sorted({p.fraction for pts in groups.values() for p in pts})
    ax.set_xticks(fractions, [f"{f:g}" for f in fractions])
    ax.minorticks_off()
    ax.set_xlabel("share of training queries (data.fraction)")
    ax.set_ylabel(f"{measure} ({split})")
    ax.set_title(f"Data efficiency: {measure} vs training data, {split}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)
