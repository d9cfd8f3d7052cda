"""Figures for the report, PNG through matplotlib's Agg backend (no display needed).

- ``scaling_plot``: the metric against non-embedding parameters or training FLOPs (log x), one
  marker set per paradigm x loss, its fitted curve (metric = 1 - fitted error) over the fitted
  range, and the reference systems as horizontal dashed lines; against parameters one panel per
  budget, against FLOPs the frontier points over every run. Each point is labelled with its rung
  (small text by the marker; points of one rung at one x share a label). The x ticks are the
  values a reader looks for when they are few and far enough apart to read (the distinct rungs'
  parameters; the nominal FLOP budgets, ``config.budget.flops``, which realised FLOPs fall short
  of by up to a step), else decades (``choose_ticks``): ticks at every point's exact FLOPs put
  1.6e10 on top of 1.69e10;
- ``curves_plot``: the metric against training steps from each run's learning curve;
- ``fraction_plot``: the metric against the share of training data, for points that differ only
  in it;
- ``supervision_plot``: a distilled student's metric against its teacher's, for points that
  differ only in their teacher;
- ``isoflop_plot``: IsoFLOP curves (error against size per FLOP budget, each budget's parabola and
  vertex) beside the compute-optimal size N*(C) with its fitted line and bootstrap band, extended
  to the budgets it is asked to predict;
- ``loss_panels_plot``: training loss against step, one panel per comparison, one line per series
  (two frameworks trained on the same groups).

Each returns the path written, or None when it has nothing to draw (the caller says so). Files
are written atomically (a temporary sibling, then a rename).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from scaling.analysis.fit import PowerLawFit  # noqa: E402
from scaling.analysis.records import Point, Run, series_namer, variant_axes  # noqa: E402
from scaling.io import write_atomic  # noqa: E402

X_LABELS = {"params": "non-embedding parameters", "flops": "training FLOPs"}
_MARKERS = "osD^vP*X"
_LINESTYLES = ["-", "--", ":", "-."]
MAX_TICKS = 8
"""At most this many candidate ticks (rungs, budgets) are labelled; more get decades."""
TICK_FONTSIZE = 7
POINT_FONTSIZE = 6
_CHAR_IN = 0.62 / 72
"""Width of a character per point of font size, in inches (DejaVu Sans digits are 0.64 em): a
tick label's width is estimated from its length, generously, before anything is drawn."""
_TICK_GAP_IN = 0.08
"""Space kept between two tick labels, in inches."""


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
    shown: list[Point] = []  # every point drawn: the ticks and limits cover them
    held = [] if background is None else [p for p in background if p.fraction == 1.0
                                          and measure in p.metrics.get(split, {})]
    named = series_namer(held)
    for name, points in sorted(series.items()):
        style = _style(names.index(name.split(" @ ")[0]))
        if background is not None:  # every run of the series, the frontier drawn over them
            rest = [p for p in held if named(p) == name and p not in points]
            if rest:
                ax.plot([p.flops for p in rest], [p.metrics[split][measure] for p in rest], linestyle="none",
                        markersize=4, alpha=0.3, color=style["color"], marker=style["marker"])
                shown += rest
        x = np.array([_x(p, vs) for p in points])
        y = np.array([p.metrics[split][measure] for p in points])
        ax.plot(x, y, linestyle="none", markersize=6, label=name.split(" @ ")[0], **style)
        shown += points
        fit = fits.get(name)
        if fit is not None:
            grid = np.geomspace(fit.x_range[0], fit.x_range[1], 100)
            ax.plot(grid, fit.predict_metric(grid), color=style["color"], linewidth=1.5,
                    label=f"{name.split(' @ ')[0]} fit: alpha {fit.params['alpha']:.3f}")
    _references(ax, references, split, measure)
    ax.set_xscale("log")
    candidates = tick_candidates(shown, vs)
    lo, hi = _limits([_x(p, vs) for p in shown] + candidates)
    ax.set_xlim(lo, hi)
    _label_points(ax, [p for pts in series.values() for p in pts], vs, split, measure, lo, hi)
    width_in = ax.figure.get_figwidth() * ax.get_position().width
    ticks = choose_ticks(candidates, lo, hi, width_in, lambda v: _compact(v, vs))
    ax.set_xticks(ticks, [_compact(t, vs) for t in ticks], fontsize=TICK_FONTSIZE)
    if ticks == sorted(c for c in candidates if lo <= c <= hi):
        ax.minorticks_off()  # the rungs or budgets themselves: minor marks between them mean nothing
    ax.xaxis.set_minor_formatter(NullFormatter())  # log minor labels (3x10^12, 4x10^12) would overlap
    ax.set_xlabel(X_LABELS.get(vs, vs))
    ax.set_ylabel(f"{measure} ({split})")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    # below the axes, so that it hides no point
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=legend_columns, frameon=False)


def _label_points(ax, points: list[Point], vs: str, split: str, measure: str, lo: float, hi: float) -> None:
    """Each point's rung as small text above its marker, so that a reader knows which size a point
    is: to the right of it in the left half of the x range [lo, hi], to the left in the right
    half (the text stays over the axes). Points of one rung at the same x (the series of a size
    panel) share one label, by the highest of them."""
    top: dict[tuple[str, float], float] = {}
    for p in points:
        key = (p.size, _x(p, vs))
        top[key] = max(top.get(key, -math.inf), p.metrics[split][measure])
    middle = math.sqrt(lo * hi)
    for (size, x), y in sorted(top.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        right = x <= middle
        ax.annotate(size, (x, y), xytext=(3 if right else -3, 3), textcoords="offset points",
                    ha="left" if right else "right", fontsize=POINT_FONTSIZE, color="0.3")


def tick_candidates(points: list[Point], vs: str) -> list[float]:
    """The x values a reader looks for, sorted and distinct: against parameters the rungs'
    parameters; against FLOPs the nominal FLOP budgets the points ran under (their realised FLOPs
    are short of it by up to a step, and differ between paradigms), and for a point without one
    (a token or step budget) its own FLOPs."""
    if vs == "params":
        return sorted({float(p.params) for p in points})
    return sorted({float(p.budget_flops) if p.budget_flops else float(p.flops) for p in points})


def _limits(xs: list[float]) -> tuple[float, float]:
    """The x range to show: every value with a margin of 8% of the range in log space (a tenth of a
    decade around a single value)."""
    lo, hi = math.log10(min(xs)), math.log10(max(xs))
    pad = 0.08 * (hi - lo) if hi - lo > 1e-9 else 0.1
    return 10 ** (lo - pad), 10 ** (hi + pad)


def _readable(ticks: list[float], lo: float, hi: float, width_in: float, fmt) -> list[float]:
    """``ticks`` thinned from the left so that no two labels are closer than they can be read:
    two neighbours' centres keep half of each label's estimated width plus ``_TICK_GAP_IN``."""
    per_in = (math.log10(hi) - math.log10(lo)) / width_in  # decades per inch
    kept: list[float] = []
    for t in ticks:
        if kept:
            need = (len(fmt(kept[-1])) + len(fmt(t))) / 2 * TICK_FONTSIZE * _CHAR_IN + _TICK_GAP_IN
            if math.log10(t) - math.log10(kept[-1]) < need * per_in:
                continue
        kept.append(t)
    return kept


def choose_ticks(candidates: list[float], lo: float, hi: float, width_in: float, fmt) -> list[float]:
    """Ticks for a log x axis showing [lo, hi] over ``width_in`` inches, labelled ``fmt(value)``.
    The candidates in view when there are at most ``MAX_TICKS`` and every label can be read; else
    decades (1-2-5 steps when fewer than two decades are in view), thinned to readable ones; the
    candidates thinned when not even those give two ticks."""
    inside = sorted(c for c in candidates if lo <= c <= hi)
    if 0 < len(inside) <= MAX_TICKS and _readable(inside, lo, hi, width_in, fmt) == inside:
        return inside
    for steps in ((1,), (1, 2, 5)):
        ticks = [m * 10.0 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                 for m in steps if lo <= m * 10.0 ** k <= hi]
        if len(ticks) >= 2:
            return _readable(ticks, lo, hi, width_in, fmt)
    return _readable(inside, lo, hi, width_in, fmt)


def _x(p: Point, vs: str) -> float:
    return p.params if vs == "params" else p.flops


def _compact(x: float, vs: str) -> str:
    """3540672 -> '3.54M', 1e9 -> '1B' (parameters); 2.6e13 -> '2.6e13' (FLOPs)."""
    if vs == "params":
        for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if x >= scale:
                return f"{x / scale:.3g}{unit}"
        return f"{x:.3g}"
    mantissa, _, exponent = f"{x:.2g}".partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else mantissa


def _budget_value(budget: str) -> tuple:
    """Panels in budget order: '2.6e+13 FLOPs' -> (FLOPs, 2.6e13); '' (one budget) first."""
    number, _, unit = budget.partition(" ")
    try:
        return (unit, float(number))
    except ValueError:
        return (unit, 0.0)


def scaling_figure(series: dict[str, list[Point]], fits: dict[str, PowerLawFit | None], vs: str,
                   split: str, measure: str, references: dict,
                   background: list[Point] | None = None) -> Figure | None:
    """``measure`` on ``split`` against ``vs`` ("params" | "flops"), per series, fits drawn where
    given. Series named ``<paradigm/loss> @ <budget>`` get one panel per budget; ``background``
    (every point) is drawn faintly behind the series' own points (the FLOPs frontier over its runs).
    None when there is nothing to draw."""
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
    return fig


def scaling_plot(series: dict[str, list[Point]], fits: dict[str, PowerLawFit | None], vs: str,
                 split: str, measure: str, references: dict, path: Path,
                 background: list[Point] | None = None) -> Path | None:
    """``scaling_figure`` written to ``path``; None when there is nothing to draw."""
    fig = scaling_figure(series, fits, vs, split, measure, references, background)
    return None if fig is None else _save(fig, path)


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


def numeric_variant(point: Point) -> tuple[str, float] | None:
    """(axis, value) when the point's variant is one axis with a number (``eval.doc_len=1024``)."""
    axes = variant_axes(point.variant)
    if len(axes) != 1:
        return None
    ((axis, value),) = axes.items()
    try:
        return axis, float(value)
    except ValueError:
        return None


def variant_plot(points: list[Point], split: str, measure: str, path: Path) -> Path | None:
    """``measure`` against a numeric axis the points differ on (``eval.doc_len``: Luo et al.'s
    long documents), one line per (paradigm, loss, size, budget) with two or more values."""
    groups: dict[tuple, list[tuple[float, Point]]] = {}
    axes = set()
    for p in points:
        got = numeric_variant(p)
        if got is not None and measure in p.metrics.get(split, {}):
            axes.add(got[0])
            groups.setdefault((p.paradigm, p.loss, p.size, p.budget), []).append((got[1], p))
    groups = {k: sorted(v, key=lambda t: t[0]) for k, v in groups.items() if len({x for x, _ in v}) >= 2}
    if not groups or len(axes) != 1:
        return None
    (axis,) = axes
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for i, (key, pts) in enumerate(sorted(groups.items())):
        ax.plot([x for x, _ in pts], [p.metrics[split][measure] for _, p in pts], linewidth=1.2,
                label="/".join(key[:3]), **_style(i))
    values = sorted({x for pts in groups.values() for x, _ in pts})
    if min(values) > 0 and max(values) / min(values) >= 8:
        ax.set_xscale("log")
    ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.minorticks_off()
    ax.set_xlabel(axis)
    ax.set_ylabel(f"{measure} ({split})")
    ax.set_title(f"{measure} vs {axis}, {split}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def supervision_plot(points: list[Point], split: str, measure: str, path: Path, references: dict | None = None) -> Path | None:
    """Student ``measure`` against its teacher's (the teacher's report card on ``split``), one line
    per (paradigm, loss, size, budget) distilled from two or more teachers, with the diagonal
    student = teacher: how much of a teacher's quality each paradigm keeps."""
    groups: dict[tuple, list[Point]] = {}
    for p in points:
        t = p.teacher_metrics.get(split, {}).get(measure)
        if p.teacher and t is not None and measure in p.metrics.get(split, {}):
            groups.setdefault((p.paradigm, p.loss, p.size, p.budget), []).append(p)
    groups = {k: sorted(v, key=lambda p: p.teacher_metrics[split][measure]) for k, v in groups.items()
              if len({p.teacher for p in v}) >= 2}
    if not groups:
        return None
    fig = Figure(figsize=(7, 5))
    ax = fig.add_subplot()
    xs = [p.teacher_metrics[split][measure] for pts in groups.values() for p in pts]
    ys = [p.metrics[split][measure] for pts in groups.values() for p in pts]
    lo, hi = min(xs + ys), max(xs + ys)
    ax.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8, linestyle=":", label="student = teacher")
    for i, (key, pts) in enumerate(sorted(groups.items())):
        x = [p.teacher_metrics[split][measure] for p in pts]
        y = [p.metrics[split][measure] for p in pts]
        ax.plot(x, y, linewidth=1.2, label="/".join(key[:3]), **_style(i))
        for p, a, b in zip(pts, x, y):
            ax.annotate(p.teacher, (a, b), textcoords="offset points", xytext=(4, -8), fontsize=POINT_FONTSIZE)
    if references:
        _references(ax, references, split, measure)
    ax.set_xlabel(f"teacher {measure} ({split}, its report card)")
    ax.set_ylabel(f"student {measure} ({split})")
    ax.set_title(f"Supervision quality: student vs teacher, {split}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def isoflop_plot(fits: dict, runs: dict, path: Path, measure_label: str = "1 - nDCG@10",
                 extra: dict[str, float] | None = None) -> Path | None:
    """``fits``: {series: laws.IsoFLOPFit}; ``runs``: {series: (budgets, sizes, errors)} arrays.
    Left: each series' runs and parabolas per budget; right: N* against C, the line and its band
    over the budgets and ``extra`` ({label: C}), where the predictions are marked."""
    fits = {k: f for k, f in fits.items() if f.budgets}
    if not fits:
        return None
    fig = Figure(figsize=(11, 4.2))
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    # left: a budget's colour is the same in every series, a series' line style and marker its own
    all_budgets = sorted({b.flops for f in fits.values() for b in f.budgets})
    shade = {flops: colormaps["viridis"](0.85 * k / max(len(all_budgets) - 1, 1)) for k, flops in enumerate(all_budgets)}
    for i, (name, fit) in enumerate(sorted(fits.items())):
        c, n, y = (np.asarray(v, dtype=float) for v in runs[name])
        for b in fit.budgets:
            style = {"color": shade[b.flops]}
            m = c == b.flops
            left.scatter(n[m], y[m], s=12, alpha=0.5, marker=_MARKERS[i % len(_MARKERS)], **style)
            u = np.linspace(math.log(min(b.sizes)), math.log(max(b.sizes)), 60)
            left.plot(np.exp(u), np.polyval(b.coeffs, u), linewidth=1, linestyle=_LINESTYLES[i % len(_LINESTYLES)],
                      label=f"{name} @ {b.flops:.2g}", **style)
            if b.n_star is not None and b.inside:
                left.scatter([b.n_star], [np.polyval(b.coeffs, math.log(b.n_star))], marker="*", s=90,
                             edgecolor="black", **style)
        usable = [b for b in fit.budgets if b.inside]
        right.scatter([b.flops for b in usable], [b.n_star for b in usable], marker=_MARKERS[i % len(_MARKERS)],
                      color=f"C{i}", label=f"{name}: vertices")
        if fit.a is not None:
            lo_c = min(b.flops for b in fit.budgets)
            hi_c = max([b.flops for b in fit.budgets] + list((extra or {}).values()))
            cs = np.logspace(math.log10(lo_c), math.log10(hi_c), 80)
            right.plot(cs, fit.predict(cs), color=f"C{i}", linewidth=1,
                       label=f"{name}: N* = {fit.k:.2g} C^{fit.a:.2f}")
            blo, bhi = fit.predict_interval(cs)
            if np.all(np.isfinite(blo)):
                right.fill_between(cs, blo, bhi, color=f"C{i}", alpha=0.15)
            for j, (label, cx) in enumerate(sorted((extra or {}).items(), key=lambda lc: lc[1])):
                right.scatter([cx], [float(fit.predict(cx))], marker="x", color=f"C{i}")
                right.annotate(label, (cx, float(fit.predict(cx))), fontsize=POINT_FONTSIZE,  # stacked: the
                               xytext=(-12, 4 + 7 * j), textcoords="offset points")  # budgets are close
    left.set_xscale("log")
    left.set_xlabel(X_LABELS["params"])
    left.set_ylabel(measure_label)
    left.set_title("IsoFLOP curves (star: vertex inside the sizes run)")
    left.legend(fontsize=6)
    if any(b.inside for f in fits.values() for b in f.budgets):
        right.set_xscale("log")
        right.set_yscale("log")
        right.legend(fontsize=6)
    else:
        right.text(0.5, 0.5, "no budget has its minimum\ninside the sizes run", ha="center", va="center",
                   transform=right.transAxes)
    right.set_xlabel(X_LABELS["flops"])
    right.set_ylabel("compute-optimal N*")
    right.set_title("N*(C)")
    return _save(fig, path)


def loss_panels_plot(panels: dict[str, dict[str, list[float]]], path: Path,
                     title: str = "Training loss") -> Path | None:
    """One panel per key of ``panels`` (two to a row), each with one line
    per series ({label: loss per optimiser step, step 1 first}): two frameworks' loss curves on the
    same groups (benchmarks/vs_sentence_transformers.py). None when no panel has a point."""
    panels = {name: {k: v for k, v in series.items() if v} for name, series in panels.items()}
    panels = {name: series for name, series in panels.items() if series}
    if not panels:
        return None
    from matplotlib.ticker import MaxNLocator
    cols = min(2, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(5.2 * cols, 3.4 * rows))
    fig.suptitle(title)
    for i, (name, series) in enumerate(panels.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        for j, (label, values) in enumerate(series.items()):
            ax.plot(range(1, len(values) + 1), values, linewidth=1.0, color=f"C{j}", label=label,
                    alpha=0.85, linestyle="-" if j == 0 else "--")
        ax.set_title(name, fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("optimiser step", fontsize=8)
        ax.set_ylabel("loss", fontsize=8)
        ax.tick_params(labelsize=TICK_FONTSIZE)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)
