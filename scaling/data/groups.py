"""Which training queries a run trains on, and each one's candidate pool: torch-free, so the
checks before any work (scaling/checks.py) and the training data (scaling/data/datamodule.py)
build the same list from the training split's qrels alone, without the corpus.

An item is ``(qid, positives)``, or ``(qid, positives, negatives)`` with a pool (teacher-scored
candidates, or BM25's): the pool's order is kept (BM25 rank, or the score file's order).
"""

from __future__ import annotations

import math
import random

from scaling.data.formats import FormatError


def subset(items: list, fraction: float) -> list:
    """The first ceil(fraction x n) items of one fixed (seed-independent) shuffle, in their
    original order: each fraction's queries include every smaller fraction's."""
    order = list(range(len(items)))
    random.Random("data.fraction").shuffle(order)
    keep = sorted(order[:max(1, math.ceil(fraction * len(items)))])
    return [items[i] for i in keep]


def training_items(qrels: dict[str, dict[str, int]], n_negatives: int, max_queries: int | None = None,
                   fraction: float = 1.0, teacher: dict | None = None, pools: dict | None = None,
                   missing: str = "error", source: str | None = None) -> tuple[list[tuple], int]:
    """(items, dropped): the split's queries with a positive, cut to ``max_queries`` and
    ``fraction``; with ``teacher`` ({qid: {docid: score}}) or ``pools`` ({qid: [docid]}) each
    keeps its pool minus its positives. A group whose positive is unscored (teacher) or whose pool
    holds fewer than ``n_negatives`` negatives fails with the count and examples (a FormatError
    naming ``source``), or is dropped, counted and said (``[data] dropped ...``) with
    ``missing="drop"``."""
    items = [(qid, sorted(d for d, rel in docs.items() if rel > 0)) for qid, docs in qrels.items()]
    items = [(q, pos) for q, pos in items if pos]
    if max_queries is not None:
        items = items[:max_queries]
    if fraction < 1:
        items = subset(items, fraction)
    if teacher is not None:  # the scored candidates are the pool; positives must be scored too
        pools = {q: list(docs) for q, docs in teacher.items()}
    if pools is None:
        return _usable(items), 0
    what, kind = ("teacher scores", "scored") if teacher is not None else ("hard negatives", "pool")
    kept, bad = [], []
    for qid, positives in items:
        pool, banned = pools.get(qid, []), set(positives)
        pos = sorted(banned.intersection(pool)) if teacher is not None else positives  # (positives are sorted)
        negs = [d for d in pool if d not in banned]
        if not pos or len(negs) < n_negatives:
            bad.append(f"{qid} ({'no scored positive' if not pos else f'{len(negs)} {kind} negatives < {n_negatives}'})")
            continue
        kept.append((qid, pos, negs))
    if bad and missing == "error":
        raise FormatError(source or what, None, f"{len(bad)} of {len(items)} training groups lack {what}, "
                          f"e.g. {'; '.join(bad[:3])}; set data.missing_teacher=drop to skip them")
    if bad:
        print(f"[data] dropped {len(bad)} of {len(items)} groups without {what}", flush=True)
    return _usable(kept), len(bad)


def _usable(items: list) -> list:
    if not items:
        from scaling.schema import ConfigError
        raise ConfigError("data.train_split", "no usable training group: no query of the split has a judged "
                          "positive (and, with a pool, enough candidates)")
    return items


def in_corpus(items: list, corpus, n_negatives: int, source: str) -> list:
    """``items`` without the document ids the corpus lacks (a teacher or negatives file from
    elsewhere may name passages of another collection): the count is said, and a group left
    without a positive or ``n_negatives`` negatives is dropped and counted."""
    kept, unknown, emptied = [], set(), 0
    for item in items:
        known = [[d for d in ids if d in corpus] for ids in item[1:]]
        unknown.update(d for ids in item[1:] for d in ids if d not in corpus)
        if not known[0] or (len(known) > 1 and len(known[1]) < n_negatives):
            emptied += 1
            continue
        kept.append((item[0], *known))
    if unknown:
        print(f"[data] {source}: {len(unknown)} document ids are not in the corpus (e.g. "
              f"{', '.join(sorted(unknown)[:3])}); left out" + (f", and with them {emptied} groups" if emptied else ""),
              flush=True)
    return _usable(kept)
