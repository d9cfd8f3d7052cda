"""A teacher's report card: nDCG@10 as a re-ranker of BM25's top-N, beside BM25 alone.

Distilling from a teacher that ranks worse than BM25 teaches the student BM25's mistakes at
best, so the card is printed with every prepared teacher and a teacher that does not beat
BM25 is announced loudly. What goes to disk: ``report.json`` beside the teacher's scores.
"""

from __future__ import annotations

import sys

from scaling.evaluation import format_table, score_run
from teachers.crossencoder import score_pairs

MEASURES = ["nDCG@10", "RR@10", "R@100"]


def rerank(model, tokenizer, data, run: dict[str, dict[str, float]], depth: int, max_len: int,
           batch_size: int) -> dict[str, dict[str, float]]:
    """Teacher scores for each query's top-``depth`` candidates of ``run``."""
    pairs = [(qid, d) for qid, docs in run.items()
             for d in sorted(docs, key=lambda x: -docs[x])[:depth]]
    scores = score_pairs(model, tokenizer, [(data.queries[q], data.corpus[d]) for q, d in pairs],
                         max_len, batch_size, desc="report card re-ranking")
    out: dict[str, dict[str, float]] = {q: {} for q in run}
    for (qid, docid), s in zip(pairs, scores):
        out[qid][docid] = s
    return out


def report_card(model, tokenizer, data, split: str, bm25_run, cfg) -> dict:
    """Compare BM25 and the teacher re-ranking BM25's top ``cfg.report_depth`` on ``split``."""
    qrels = data.qrels[split]
    qids = [q for q in qrels if q in bm25_run][:cfg.report_max_queries]
    first = {q: dict(sorted(bm25_run[q].items(), key=lambda kv: -kv[1])[:cfg.report_depth]) for q in qids}
    sub_qrels = {q: qrels[q] for q in qids}
    reranked = rerank(model, tokenizer, data, first, cfg.report_depth, cfg.max_len, cfg.batch_size)
    card = {"teacher": cfg.name, "split": split, "queries": len(qids), "depth": cfg.report_depth,
            "bm25": score_run(first, sub_qrels, MEASURES),
            "teacher_rerank": score_run(reranked, sub_qrels, MEASURES)}
    card["beats_bm25"] = card["teacher_rerank"]["nDCG@10"] > card["bm25"]["nDCG@10"]
    return card


def print_card(card: dict) -> None:
    key = f"{card['split']} ({card['queries']} queries, top {card['depth']})"
    print(f"[teacher] report card for {card['teacher']!r}", flush=True)
    print(format_table({"BM25": {key: card["bm25"]},
                        f"{card['teacher']} re-ranking BM25": {key: card["teacher_rerank"]}}), flush=True)
    if not card["beats_bm25"]:
        bar = "!" * 78
        print(f"{bar}\n!! TEACHER {card['teacher']!r} DOES NOT BEAT BM25 on {card['split']}: nDCG@10 "
              f"{card['teacher_rerank']['nDCG@10']:.4f} <= {card['bm25']['nDCG@10']:.4f}.\n!! Distilling "
              f"from it teaches the student a worse ranking than BM25's.\n{bar}", file=sys.stderr, flush=True)
