"""Metrics with ir_measures and the side-by-side results table (one column per system)."""

from __future__ import annotations

import ir_measures

DEFAULT_MEASURES = ["nDCG@10", "RR@10", "R@100", "R@1000"]


def score_run(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]],
              measures: list[str] = DEFAULT_MEASURES) -> dict[str, float]:
    """Mean of each measure over the qrels' queries (a query with no results counts as 0)."""
    parsed = [ir_measures.parse_measure(m) for m in measures]
    full_run = {qid: run.get(qid, {}) for qid in qrels}
    agg = ir_measures.calc_aggregate(parsed, qrels, full_run)
    return {m: float(agg[p]) for m, p in zip(measures, parsed)}


def format_table(columns: dict[str, dict[str, dict[str, float]]]) -> str:
    """{column label: {dataset/split: {measure: value}}} -> an aligned text table."""
    labels = list(columns)
    keys = list(dict.fromkeys(k for col in columns.values() for k in col))
    measures = list(dict.fromkeys(m for col in columns.values() for v in col.values() for m in v))
    head = ["dataset/split", "measure"] + labels
    rows = [[key, m] + [f"{columns[c][key][m]:.4f}" if key in columns[c] and m in columns[c][key]
                        else "-" for c in labels] for key in keys for m in measures]
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    line = "-" * (sum(widths) + 2 * (len(widths) - 1))
    return "\n".join([fmt.format(*head), line] + [fmt.format(*r) for r in rows])
