"""Metrics with ir_measures and the side-by-side results table (one column per system).

A split's metrics are a flat mapping of measure -> number (nDCG@10, R@1000, the index's size and
latency, ``contrastive_entropy``), plus ``per_query``: measure -> {qid: value} for every judged
query, kept so that two systems can be compared query by query (``scaling.analysis.significance``).
Tables and loggers read the numbers only (``numbers``).
"""

from __future__ import annotations

import ir_measures

DEFAULT_MEASURES = ["nDCG@10", "RR@10", "R@100", "R@1000"]
PER_QUERY = "per_query"
"""Key of a split's per-query measures: {measure: {qid: value}}."""


def score_queries(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]],
                  measures: list[str] = DEFAULT_MEASURES) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """(mean of each measure over the qrels' queries, {measure: {qid: value}}); a query with no
    results counts as 0 in both."""
    parsed = [ir_measures.parse_measure(m) for m in measures]
    names = {p: m for m, p in zip(measures, parsed)}
    per_query: dict[str, dict[str, float]] = {m: dict.fromkeys(qrels, 0.0) for m in measures}
    full_run = {qid: run.get(qid, {}) for qid in qrels}
    for metric in ir_measures.iter_calc(parsed, qrels, full_run):
        if metric.query_id in qrels:
            per_query[names[metric.measure]][metric.query_id] = float(metric.value)
    n = max(len(qrels), 1)
    return {m: sum(v.values()) / n for m, v in per_query.items()}, per_query


def score_run(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]],
              measures: list[str] = DEFAULT_MEASURES) -> dict[str, float]:
    """Mean of each measure over the qrels' queries (a query with no results counts as 0)."""
    return score_queries(run, qrels, measures)[0]


def scored(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]],
           measures: list[str] = DEFAULT_MEASURES) -> dict:
    """A split's metrics as results keep them: the means and, under ``per_query``, each query's."""
    means, per_query = score_queries(run, qrels, measures)
    return {**means, PER_QUERY: per_query}


def drop_identical(run: dict[str, dict[str, float]], k: int) -> dict[str, dict[str, float]]:
    """BEIR's ``ignore_identical_ids`` (``data.ignore_identical_ids``): each query's ranking without
    the document of its own id, cut to its best ``k`` (the caller searched ``k + 1`` deep)."""
    out = {}
    for qid, docs in run.items():
        kept = sorted(((d, s) for d, s in docs.items() if d != qid), key=lambda ds: (-ds[1], ds[0]))
        out[qid] = dict(kept[:k])
    return out


def search_ranked(search, k: int, ignore_identical: bool):
    """``search(depth) -> (run, extra)`` at depth ``k``; with ``ignore_identical`` one deeper, for the
    query's own document, which ``drop_identical`` then removes, cutting back to ``k``. The run
    returned is what gets scored and written."""
    run, extra = search(k + int(ignore_identical))
    return (drop_identical(run, k) if ignore_identical else run), extra


def plain_mean(rows: dict[str, dict], keys: list[str], measures: list[str]) -> dict[str, float] | None:
    """The unweighted mean over the rows ``keys`` (``<dataset>/<split>``) of each of ``measures``:
    every dataset counts once, whatever its number of queries (BEIR's average over datasets).
    None when a row or one of its measures is missing (a mean over fewer rows would mislead)."""
    got = [rows.get(k) or {} for k in keys]
    if not keys or any(m not in r for r in got for m in measures):
        return None
    return {m: sum(float(r[m]) for r in got) / len(got) for m in measures}


def numbers(measures: dict) -> dict[str, float]:
    """A split's metrics without what is not a number (the per-query values)."""
    return {k: v for k, v in measures.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def format_table(columns: dict[str, dict[str, dict[str, float]]], marks: dict | None = None) -> str:
    """{column label: {dataset/split: {measure: value}}} -> an aligned text table. ``marks``:
    {column label: {dataset/split: {measure: mark}}}, text put after a value (significance)."""
    marks = marks or {}
    columns = {c: {k: numbers(v) for k, v in col.items()} for c, col in columns.items()}
    labels = list(columns)
    keys = list(dict.fromkeys(k for col in columns.values() for k in col))
    measures = list(dict.fromkeys(m for col in columns.values() for v in col.values() for m in v))

    def cell(c, key, m):
        if key not in columns[c] or m not in columns[c][key]:
            return "-"
        return f"{columns[c][key][m]:.4f}" + marks.get(c, {}).get(key, {}).get(m, "")
    head = ["dataset/split", "measure"] + labels
    rows = [[key, m] + [cell(c, key, m) for c in labels] for key in keys for m in measures]
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    line = "-" * (sum(widths) + 2 * (len(widths) - 1))
    return "\n".join([fmt.format(*head), line] + [fmt.format(*r) for r in rows])
