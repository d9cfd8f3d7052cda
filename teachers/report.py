"""A teacher's report card: the teacher re-ranking a pool no single reference made, beside the
references re-ranking the same pool, on every report split.

The pool of a query is the union of the ``teacher.report_pool`` systems' top
``teacher.report_depth`` over the whole corpus (by default BM25's and MiniLM's), so a teacher
cannot look good merely by re-ranking the weaker first stage: BM25 and MiniLM re-ranking that pool
rank exactly as they retrieve (their own top documents are in it). Distilling from a teacher that
ranks worse than a reference teaches the student that reference's mistakes at best, so the card
is printed with every prepared teacher and a teacher below any reference on any split is
announced loudly. The first split is the one a teacher is chosen on (dev); the others are read,
never tuned on. What goes to disk: ``report.json`` beside the teacher's scores.
"""

from __future__ import annotations

import sys

from scaling.data.pools import interleave, ranked, systems
from scaling.evaluation import format_table, score_run

MEASURES = ["nDCG@10", "RR@10"]
"""(Recall at the pool's depth is the pool's own, the same for every system: not shown.)"""
REFERENCES = {"bm25": "BM25", "minilm": "MiniLM (zero-shot)", "mpnet": "MPNet (zero-shot)"}
"""The references a card shows: each re-ranks the pool with its own scores."""


def pool(teacher, qids: list[str], pool_spec: str, depth: int) -> dict[str, list[str]]:
    """{qid: the union of each system's top ``depth`` over the whole corpus}."""
    runs = []
    for system in systems(pool_spec):
        run = teacher.bm25_run(qids) if system == "bm25" else teacher.bi_encoder(system).search(qids, depth)
        runs.append({q: r[:depth] for q, r in ranked({q: run.get(q, {}) for q in qids}).items()})
    return {q: interleave([r[q] for r in runs]) for q in qids}


def as_run(pairs, values) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for (q, d), s in zip(pairs, values):
        out.setdefault(q, {})[d] = s
    return out


def report_card(teacher, dataset, cfg) -> dict:
    """{split: {"queries", "pairs", "systems": {label: metrics}}} for ``cfg.report_splits`` (those the
    dataset has), plus which references the teacher does not beat."""
    card = {"teacher": cfg.name, "fusion": cfg.fusion.active(), "noise": cfg.noise, "pool": cfg.report_pool,
            "depth": cfg.report_depth, "splits": {}, "weaker_than": []}
    for split in [s for s in cfg.report_splits if s in dataset.qrels]:
        qrels = dataset.qrels[split]
        qids = list(qrels)[:cfg.report_max_queries]
        pools = pool(teacher, qids, cfg.report_pool, cfg.report_depth)
        pairs = [(q, d) for q in qids for d in pools[q]]
        sub = {q: qrels[q] for q in qids}
        rows = {}
        for name, label in ((n, REFERENCES[n]) for n in cfg.report_references):
            rows[f"{label} re-ranking the pool"] = score_run(as_run(pairs, teacher.component(name, pairs)), sub, MEASURES)
        rows[f"teacher {cfg.name!r}"] = score_run(teacher.score(pairs), sub, MEASURES)
        card["splits"][split] = {"queries": len(qids), "pairs": len(pairs), "systems": rows}
        mine = rows[f"teacher {cfg.name!r}"]["nDCG@10"]
        card["weaker_than"] += [f"{label} on {split} ({mine:.4f} <= {rows[f'{label} re-ranking the pool']['nDCG@10']:.4f})"
                                for label in (REFERENCES[n] for n in cfg.report_references)
                                if mine <= rows[f"{label} re-ranking the pool"]["nDCG@10"]]
    return card


def print_card(card: dict) -> None:
    print(f"[teacher] report card for {card['teacher']!r} (fusion {card['fusion']}, noise {card['noise']}): "
          f"re-ranking the union of {card['pool'].replace('+', ' and ')}'s top {card['depth']} per query", flush=True)
    table: dict[str, dict] = {}
    for split, part in card["splits"].items():
        key = f"{split} ({part['queries']} queries, {part['pairs'] / max(1, part['queries']):.0f} docs each)"
        for label, metrics in part["systems"].items():
            table.setdefault(label, {})[key] = metrics
    print(format_table(table), flush=True)
    if card["weaker_than"]:
        bar = "!" * 78
        print(f"{bar}\n!! TEACHER {card['teacher']!r} IS NOT ABOVE EVERY REFERENCE: nDCG@10 "
              + "; ".join(card["weaker_than"]) + ".\n!! Distilling from it teaches the student a worse ranking "
              f"than a reference's.\n{bar}", file=sys.stderr, flush=True)
