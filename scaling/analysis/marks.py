"""Significance marks for results tables: which system differs from the table's baseline.

Every measure with per-query values (nDCG@10, RR@10, R@100, R@1000, contrastive_entropy) is tested
on its own: the systems of one table against the baseline, on the same queries, by a paired
t-test and a paired randomization test, each Holm-corrected over that measure's comparisons in the
table (``scaling.analysis.significance``). A mark follows a value: ``*`` (t-test), ``†``
(randomization test). A point averaged over seeds is tested on its per-query means over seeds.

- ``column_marks``: a run's printed table (``scaling.evaluation.format_table`` columns), against
  one of its columns (``eval.compare_to``);
- ``point_marks``: the report's table of one split, points and references against a reference;
- ``versus``: the report's paired comparisons of each point with the point that differs from it
  in one setting only (``loss=cl``: each cl+kd point against cl at the same paradigm, size, budget).

Nothing here writes to disk.
"""

from __future__ import annotations

from scaling.analysis import significance
from scaling.analysis.records import Point, variant_axes
from scaling.evaluation.metrics import PER_QUERY


def _compare(baseline_label: str, baseline: dict[str, dict[str, float]], systems: dict,
             alpha: float) -> dict[object, dict[str, significance.Comparison]]:
    """{system key: {measure: Comparison}} for ``systems`` = {key: {measure: {qid: value}}}
    against ``baseline`` = {measure: {qid: value}}; one Holm family per measure."""
    out: dict = {}
    for measure, base in baseline.items():
        held = {key: pq[measure] for key, pq in systems.items() if measure in pq and set(pq[measure]) == set(base)}
        if not held:
            continue
        for key, c in zip(held, significance.compare(baseline_label, base, {str(k): v for k, v in held.items()},
                                                     measure, alpha)):
            out.setdefault(key, {})[measure] = c
    return out


def _marks(baseline_label: str, baseline: dict, systems: dict, alpha: float) -> dict:
    return {key: {m: c.mark for m, c in by.items()}
            for key, by in _compare(baseline_label, baseline, systems, alpha).items()}


def column_comparisons(columns: dict, baseline: str, alpha: float = 0.05) -> tuple[dict, list[dict]]:
    """(marks {column label: {dataset/split: {measure: mark}}}, every comparison as a dict with its
    split) for a run's table ``columns`` ({label: {split: metrics with per_query}}) against the
    column labelled ``baseline``; nothing when no column has that label."""
    marks: dict = {}
    rows: list[dict] = []
    if baseline not in columns:
        return marks, rows
    for split, metrics in columns[baseline].items():
        base = (metrics or {}).get(PER_QUERY) or {}
        systems = {label: col[split][PER_QUERY] for label, col in columns.items()
                   if label != baseline and PER_QUERY in (col.get(split) or {})}
        for label, by_measure in _compare(baseline, base, systems, alpha).items():
            marks.setdefault(label, {})[split] = {m: c.mark for m, c in by_measure.items()}
            rows += [{"split": split, **c.as_dict()} for c in by_measure.values()]
    return marks, rows


def point_marks(points: list[Point], split: str, reference_pq: dict, baseline: str, alpha: float = 0.05) -> dict:
    """{id(point) or system name: {measure: mark}} for the report's table of ``split``: every point
    and reference system with per-query values against the reference ``baseline``."""
    base = reference_pq.get(baseline, {}).get(split)
    if not base:
        return {}
    systems = {id(p): p.per_query[split] for p in points if split in p.per_query}
    systems.update({name: pq[split] for name, pq in reference_pq.items() if name != baseline and split in pq})
    return _marks(baseline, base, systems, alpha)


AXES = ("paradigm", "loss", "size", "budget", "teacher", "fraction")
"""A point's own fields a ``versus`` comparison may vary; any other grid axis (``instruction``,
``tasks``, ...) is read from the point's ``variant``."""

ALIASES = {"backbone": "size", "data.fraction": "fraction"}
"""Grid axes that a point holds under another field: a ``backbone`` option names the point's size
(``smollm2-eos``, see ``records``), so ``backbone=X`` compares as ``size=X``; ``data.fraction`` is
the point's ``fraction``."""


UNNAMED = {"start": "packaged"}
"""Variant axes a point leaves out at their usual value: a run from the packaged weights names no
``start`` (``records.start_label``), so ``--versus start=packaged`` finds it."""


def setting(p: Point, key: str) -> str | None:
    """The point's value of ``key``: one of ``AXES`` (or an alias of one), or a grid axis named in
    its variant (None: unset)."""
    key = ALIASES.get(key, key)
    return canonical(key, getattr(p, key)) if key in AXES else variant_axes(p.variant).get(key, UNNAMED.get(key))


def canonical(key: str, value) -> str:
    """``value`` of ``key`` as ``setting`` spells it, so a typed value matches: a fraction is a
    number (1, 1.0 and 1.00 are one value)."""
    return f"{float(value):g}" if ALIASES.get(key, key) == "fraction" else str(value)


def versus(points: list[Point], split: str, key: str, value: str, measure: str = "nDCG@10",
           alpha: float = 0.05) -> list[tuple[Point, Point, significance.Comparison]]:
    """Each point whose ``key`` is not ``value`` against the point equal to it but for ``key`` =
    ``value``, on ``measure``'s per-query values; Holm over all of them. Points without a
    counterpart or per-query values are left out."""
    key, value = ALIASES.get(key, key), canonical(key, value)
    ignored = {key, "teacher"} if key == "loss" else {key}  # a loss that distils brings a teacher, cl none

    def rest(p: Point) -> tuple:
        others = tuple(sorted((k, v) for k, v in variant_axes(p.variant).items() if k != key))
        return tuple(getattr(p, a) for a in AXES if a not in ignored) + (others,)
    held = [p for p in points if measure in p.per_query.get(split, {}) and setting(p, key) is not None]
    anchors = {rest(p): p for p in held if setting(p, key) == value}
    pairs = [(p, anchors[rest(p)]) for p in held if setting(p, key) != value and rest(p) in anchors]
    pairs = [(p, a) for p, a in pairs if set(p.per_query[split][measure]) == set(a.per_query[split][measure])]
    if not pairs:
        return []
    found = significance.compare_pairs(
        {str(i): (f"{key}={value}", a.per_query[split][measure], p.per_query[split][measure])
         for i, (p, a) in enumerate(pairs)}, measure, alpha)  # one Holm family: every pair of the table
    return [(p, a, c) for (p, a), c in zip(pairs, found)]
