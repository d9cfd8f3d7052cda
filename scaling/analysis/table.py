"""Markdown tables for the report: the runs of one dataset/split, and the scaling-law fits.

``runs_table`` has one row per point (paradigm x loss x size, seeds averaged, sorted by
parameters), then one per reference system; ``fits_table`` one row per (series, x) fit, a refused
fit shown with its reason. Both return text; the caller prints or writes it.
"""

from __future__ import annotations

import math

from scaling.analysis.records import Point, variant_axes

MEASURES = ("nDCG@10", "RR@10", "R@100", "R@1000", "contrastive_entropy")


def _num(value, fmt: str = ".4f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, fmt)


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list]) -> str:
    lines = [_row(header), _row(["---"] * len(header))]
    lines += [_row(r) for r in rows]
    return "\n".join(lines)


def measures_present(points: list[Point], split: str, references: dict | None = None) -> list[str]:
    """The standard measures any point (or reference) holds on ``split``, in the usual order."""
    found = set()
    for p in points:
        found |= set(p.metrics.get(split, {}))
    for splits in (references or {}).values():
        found |= set(splits.get(split, {}))
    return [m for m in MEASURES if m in found]


def _seeds(p: Point) -> str:
    """"2" for two seeds; "1 (2 runs)" for one seed run twice (measures are the runs' mean)."""
    return str(p.seeds) if len(p.runs) == p.seeds else f"{p.seeds} ({len(p.runs)} runs)"


def _spread(p: Point, split: str, measure: str) -> str:
    """"sd 0.0040 [0.441, 0.462]": the measure's spread across seeds (the interval with three or more)."""
    s = p.spread.get(split, {}).get(measure)
    if s is None or s.sd is None:
        return "-"
    return f"sd {s.sd:.4f}" + (f" [{s.lo:.4f}, {s.hi:.4f}]" if s.lo is not None else "")


def runs_table(points: list[Point], split: str, references: dict | None = None, marks: dict | None = None,
               spread_of: str = "nDCG@10") -> str:
    """Rows: paradigm, loss, size (by non-embedding parameters); columns: params (M), steps,
    training FLOPs, the measures present (means over seeds), the spread of ``spread_of`` across
    seeds (sd, and a 95% t-interval of the mean with three or more seeds), the untrained backbone's
    nDCG@10 and the seeds averaged. A variant column appears when some point differs on an axis
    the other columns do not name (``records.variant``), a data-fraction column when some point trained on part
    of the data, a budget column when the points differ in budget. Reference systems follow, one
    row each. ``marks``: {id(point) or system name: {measure: mark}}, put after the value
    (significance against a baseline: ``scaling.analysis.significance``)."""
    marks = marks or {}
    points = sorted((p for p in points if split in p.metrics),
                    key=lambda p: (p.paradigm, p.loss, p.teacher or "", p.params, p.flops, -p.fraction, p.budget,
                                   p.variant))
    measures = measures_present(points, split, references)
    with_variant = any(p.variant for p in points)
    with_fraction = any(p.fraction != 1.0 for p in points)
    with_budget = len({p.budget for p in points}) > 1
    with_spread = any(p.seeds > 1 for p in points)
    header = ["paradigm", "loss", "size"] + (["variant"] if with_variant else []) + (["data"] if with_fraction else []) + \
             (["budget"] if with_budget else []) + \
             ["params (M)", "steps", "FLOPs"] + measures + ([f"{spread_of} across seeds"] if with_spread else []) + \
             ["untrained nDCG@10", "seeds"]

    def cells(m: dict, key) -> list[str]:
        return [_num(m.get(k)) + (marks.get(key, {}).get(k, "") if m.get(k) is not None else "") for k in measures]
    rows = []
    for p in points:
        m = p.metrics[split]
        rows.append([p.paradigm, p.loss + (f" @{p.teacher}" if p.teacher else ""), p.size]
                    + ([p.variant] if with_variant else []) + ([f"{p.fraction:g}"] if with_fraction else [])
                    + ([p.budget] if with_budget else [])
                    + [f"{p.params / 1e6:.2f}", _num(p.steps, ".0f"), _num(p.flops, ".3g")]
                    + cells(m, id(p)) + ([_spread(p, split, spread_of)] if with_spread else [])
                    + [_num(p.baseline.get(split, {}).get("nDCG@10")), _seeds(p)])
    for system, splits in (references or {}).items():
        if split not in splits:
            continue
        m = splits[split]
        rows.append([system, "(reference)", "-"] + (["-"] if with_variant else []) + (["-"] if with_fraction else [])
                    + (["-"] if with_budget else [])
                    + ["-", "-", "-"] + cells(m, system) + (["-"] if with_spread else []) + ["-", "-"])
    return _table(header, rows)


def _span(lo: float, hi: float) -> str:
    return f"{lo:.3g} to {hi:.3g} ({hi / lo:.1f}x)"


def fits_table(fits: list[dict]) -> str:
    """Rows from ``fits.json`` entries: series, x (params | flops), form, alpha with its 95% CI
    (and the floor E for ``power_floor``), R^2 in log space, points, x range, resamples skipped,
    warnings; a refused
    fit shows ``refused: <reason>`` in the alpha column. Resamples skipped (fewer distinct x than
    parameters) are counted in their own column."""
    floor = any(f.get("form") == "power_floor" for f in fits)
    header = ["series", "vs", "form", "alpha [95% CI]"] + (["E [95% CI]"] if floor else []) + \
             ["R^2", "points", "range", "resamples skipped", "warnings"]
    rows = []
    for f in fits:
        if f["status"] != "ok":
            rows.append([f["series"], f["vs"], f["form"], f"refused: {f['reason']}"] + (["-"] if floor else [])
                        + ["-", f.get("n_points", "-"), "-", "-", "-"])
            continue
        lo, hi = f["ci"]["alpha"]
        alpha = f"{f['params']['alpha']:.3f} [{_num(lo, '.3f')}, {_num(hi, '.3f')}]"
        e = []
        if floor:
            e = ["-"] if "E" not in f["params"] else \
                [f"{f['params']['E']:.3f} [{_num(f['ci']['E'][0], '.3f')}, {_num(f['ci']['E'][1], '.3f')}]"]
        rows.append([f["series"], f["vs"], f["form"], alpha] + e
                     + [_num(f["r2"], ".3f"), f["n_points"], _span(*f["x_range"]),
                        f"{f['skipped_resamples']} of {f['resamples']}", "; ".join(f["warnings"]) or "-"])
    return _table(header, rows)


def supervision_table(points: list[Point], split: str, measure: str = "nDCG@10") -> str:
    """Student against teacher: one row per distilled point with a teacher report card on
    ``split``: paradigm, loss, size, teacher, the teacher's and the student's ``measure``, and the
    student's share of its teacher's."""
    rows = []
    for p in sorted(points, key=lambda p: (p.paradigm, p.loss, p.size, p.teacher_metrics.get(split, {}).get(measure, 0))):
        t, s = p.teacher_metrics.get(split, {}).get(measure), p.metrics.get(split, {}).get(measure)
        if p.teacher and t is not None and s is not None:
            rows.append([p.paradigm, p.loss, p.size, p.teacher, _num(t), _num(s), f"{s / t:.2f}"])
    if not rows:
        return ""
    return _table(["paradigm", "loss", "size", "teacher", f"teacher {measure}", f"student {measure}",
                   "student / teacher"], rows)


def _paired_seeds(p: Point, anchor: Point, split: str, measure: str) -> str:
    """"3 of 3": in how many of the seeds both points ran the difference has the sign of the mean."""
    mine, theirs = p.by_seed(split, measure), anchor.by_seed(split, measure)
    common = [k for k in mine if k in theirs]
    if not common:
        return "-"
    diffs = [mine[k] - theirs[k] for k in common]
    sign = 1 if sum(diffs) >= 0 else -1
    return f"{sum(1 for d in diffs if d * sign > 0)} of {len(common)}"


def versus_table(rows: list, split: str, measure: str, key: str) -> str:
    """One row per (point, counterpart, Comparison) from ``marks.versus``: the point (with its data
    fraction when some point trained on part of its data), its and its counterpart's ``measure``
    (means over seeds), the difference, the Holm-adjusted p-values of both tests and their mark,
    and in how many shared seeds the difference has the mean's sign."""
    from scaling.analysis.marks import ALIASES, AXES, setting
    own = [] if ALIASES.get(key, key) in AXES else [key]  # a variant axis gets its own column
    data = any(p.fraction != 1.0 for p, _, _ in rows)  # two fractions of one point are two rows
    others = {p.variant: " ".join(f"{k}={v}" for k, v in variant_axes(p.variant).items() if k != key)
              for p, _, _ in rows}  # the point's other variant axes (its start, ...): rows that differ there
    variant = any(others.values())
    header = ["paradigm", "loss", "size", "budget"] + (["data"] if data else []) + (["variant"] if variant else []) \
        + own + [measure, f"at {key}=...", "difference",
                                                            "t-test p (Holm)", "randomization p (Holm)", "mark",
                                                            "same sign in seeds"]
    out = []
    for p, anchor, c in rows:
        out.append([p.paradigm, p.loss + (f" @{p.teacher}" if p.teacher else ""), p.size, p.budget]
                   + ([f"{p.fraction:g}"] if data else []) + ([others[p.variant]] if variant else [])
                   + [setting(p, k) for k in own]
                   + [_num(p.metrics[split].get(measure)), f"{_num(anchor.metrics[split].get(measure))} "
                      f"({setting(anchor, key)})", f"{c.diff:+.4f}", f"{c.t_p_holm:.2g}", f"{c.rand_p_holm:.2g}",
                      c.mark or "-", _paired_seeds(p, anchor, split, measure)])
    return _table(header, out)
