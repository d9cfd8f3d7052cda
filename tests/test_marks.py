"""Significance marks on results tables (scaling/analysis/marks.py): the glue between per-query
values in results and the paired tests (whose p-values tests/test_significance.py checks)."""

from pathlib import Path

import numpy as np
import pytest

from scaling.analysis import marks, records, significance, table
from scaling.evaluation.metrics import format_table

QIDS = [f"q{i:03d}" for i in range(60)]
SPLIT = "x/test"


def values(shift: float, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    return {q: float(np.clip(0.4 + shift + rng.normal(0, 0.2), 0, 1)) for q in QIDS}


def metrics(pq: dict[str, float]) -> dict:
    return {"nDCG@10": sum(pq.values()) / len(pq), "per_query": {"nDCG@10": pq}}


def run(loss: str, size: str, seed: int, pq: dict[str, float], teacher: str | None = None) -> records.Run:
    return records.Run(path=Path(f"/r/{loss}-{size}-{seed}"), paradigm="dense", loss=loss, size=size, fraction=1.0,
                       seed=seed, budget="1e+13 FLOPs", params=1_000_000 * int(size[1:]), flops=1e13, steps=10,
                       metrics={SPLIT: {"nDCG@10": sum(pq.values()) / len(pq)}}, teacher=teacher,
                       per_query={SPLIT: {"nDCG@10": pq}})


def test_a_runs_table_marks_what_differs_from_its_baseline_column():
    base = values(0, 1)
    columns = {"BM25": {SPLIT: metrics(base)}, "same": {SPLIT: metrics(dict(base))},
               "better": {SPLIT: metrics({q: min(1.0, v + 0.3) for q, v in base.items()})}}
    found, rows = marks.column_comparisons(columns, "BM25")
    assert found["better"][SPLIT]["nDCG@10"] == "*†" and found["same"][SPLIT]["nDCG@10"] == ""
    # the adjusted p-values are Holm over the table's two comparisons
    raw = [significance.paired_t(base, columns[k][SPLIT]["per_query"]["nDCG@10"]) for k in ("same", "better")]
    assert [r["t_p_holm"] for r in rows] == pytest.approx(significance.holm(raw), abs=1e-12)
    text = format_table(columns, found)
    assert "*†" in text.splitlines()[2] and "per_query" not in text
    assert marks.column_comparisons(columns, "no such column") == ({}, [])


def test_points_are_tested_on_their_per_query_means_over_seeds_and_matched_by_everything_else():
    base = values(0, 1)
    runs = [run("cl", "l1", s, values(0.0, 10 + s)) for s in range(3)]
    runs += [run("cl+kd", "l1", s, values(0.25, 20 + s), teacher="ens") for s in range(3)]
    runs += [run("cl+kd", "l2", 0, values(0.25, 30), teacher="ens")]  # no cl at l2: no counterpart
    points = records.average(runs)
    cl = next(p for p in points if p.loss == "cl")
    want = {q: np.mean([r.per_query[SPLIT]["nDCG@10"][q] for r in runs[:3]]) for q in QIDS}
    assert cl.per_query[SPLIT]["nDCG@10"] == pytest.approx(want)
    s = cl.spread[SPLIT]["nDCG@10"]
    assert s.n == 3 and s.lo < cl.metrics[SPLIT]["nDCG@10"] < s.hi  # three seeds: an interval
    ref_pq = {"bm25": {SPLIT: {"nDCG@10": base}}}
    found = marks.point_marks(points, SPLIT, ref_pq, "bm25")
    assert {id(p) for p in points} == set(found)
    pairs = marks.versus(points, SPLIT, "loss", "cl")
    assert [(p.loss, p.size, a.loss) for p, a, _ in pairs] == [("cl+kd", "l1", "cl")]  # teacher ignored for loss
    (_, _, c), = pairs
    assert c.diff > 0.15 and c.mark == "*†"
    rows = table.versus_table(pairs, SPLIT, "nDCG@10", "loss")
    assert "3 of 3" in rows and "(cl)" in rows
    assert marks.versus(points, SPLIT, "colour", "red") == []  # an axis no point has: nothing to pair


def test_versus_a_grid_axis_of_the_variant_pairs_points_equal_in_every_other_setting():
    def variant_run(variant: str, seed: int, shift: float) -> records.Run:
        r = run("cl", "l1", 0, values(shift, seed))
        r.variant = variant
        return r
    runs = [variant_run("instruction=none tasks=a", 1, 0.0), variant_run("instruction=seen tasks=a", 2, 0.3),
            variant_run("instruction=paraphrase tasks=a", 3, 0.0),
            variant_run("instruction=seen tasks=b", 4, 0.3)]  # tasks=b has no instruction=none: no pair
    pairs = marks.versus(records.average(runs), SPLIT, "instruction", "none")
    assert sorted(marks.setting(p, "instruction") for p, _, _ in pairs) == ["paraphrase", "seen"]
    assert all(marks.setting(a, "instruction") == "none" and marks.setting(a, "tasks") == "a" for _, a, _ in pairs)
    seen = next(c for p, _, c in pairs if marks.setting(p, "instruction") == "seen")
    assert seen.diff > 0.2 and seen.mark == "*†"
    text = table.versus_table(pairs, SPLIT, "nDCG@10", "instruction")
    assert "| instruction |" in text.splitlines()[0] and "(none)" in text and "| seen |" in text


def test_pairs_with_their_own_baselines_share_one_holm_family():
    a, b, c, d = values(0, 1), values(0.2, 2), values(0, 3), values(0.01, 4)
    got = significance.compare_pairs({"b": ("a", a, b), "d": ("c", c, d)})
    raw = [significance.paired_t(a, b), significance.paired_t(c, d)]
    assert [g.t_p for g in got] == pytest.approx(raw, abs=1e-12)
    assert [g.t_p_holm for g in got] == pytest.approx(significance.holm(raw), abs=1e-12)
    assert [g.baseline for g in got] == ["a", "c"] and got[0].mark == "*†" and got[1].mark == ""
    with pytest.raises(ValueError, match="'d'"):
        significance.compare_pairs({"d": ("c", c, {q: 0.0 for q in QIDS[:5]})})


def test_versus_a_backbone_compares_the_sizes_it_names():
    # a backbone option's point is named by its backbone (records.size_name), so backbone=X is size=X
    runs = [run("cl", "l1", 0, values(0.0, 1)), run("cl", "l2", 0, values(0.3, 2)), run("cl", "l3", 0, values(0.0, 3))]
    points = records.average(runs)
    by_backbone = marks.versus(points, SPLIT, "backbone", "l1")
    assert [(p.size, a.size) for p, a, _ in by_backbone] == [(p.size, a.size) for p, a, _ in
                                                             marks.versus(points, SPLIT, "size", "l1")]
    assert sorted(p.size for p, _, _ in by_backbone) == ["l2", "l3"]
    assert {p.size: c.mark for p, _, c in by_backbone} == {"l2": "*†", "l3": ""}
    assert marks.setting(points[1], "backbone") == points[1].size


def test_versus_a_data_fraction_pairs_each_part_with_the_whole_at_its_size():
    def part(size: str, fraction: float, shift: float, seed: int) -> records.Run:
        r = run("cl", size, 0, values(shift, seed))
        r.fraction = fraction
        return r
    points = records.average([part("l1", 1.0, 0.3, 1), part("l1", 0.1, 0.0, 2), part("l2", 1.0, 0.0, 3),
                              part("l2", 0.1, 0.0, 4), part("l4", 0.1, 0.0, 5)])  # l4: no whole to pair with
    pairs = marks.versus(points, SPLIT, "data.fraction", "1")
    assert [(p.size, marks.setting(p, "fraction"), a.size, marks.setting(a, "data.fraction"))
            for p, a, _ in pairs] == [("l1", "0.1", "l1", "1"), ("l2", "0.1", "l2", "1")]
    assert [c.mark for _, _, c in pairs] == ["*†", ""] and pairs[0][2].diff < -0.2
    assert [(p.size, a.size) for p, a, _ in marks.versus(points, SPLIT, "data.fraction", "1.0")] == \
        [("l1", "l1"), ("l2", "l2")]  # 1 and 1.0 are one value
    header = table.versus_table(pairs, SPLIT, "nDCG@10", "data.fraction").splitlines()[0]
    assert "| data |" in header and "data.fraction |" not in header  # one column for the fraction
