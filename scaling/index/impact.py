"""Sparse export: quantised vocabulary weights in a Lucene impact index, searched with int weights.

Documents become JsonVectorCollection lines ``{"id", "contents": "", "vector": {token: int}}``
(weights x ``factor``, 100 by default, floored or rounded to the int Lucene's impact field
stores; zeros dropped); token names are the tokenizer's vocabulary made whitespace-safe and unique
(``scaling.heads.vocab``). Anserini indexes them with ``-impact -pretokenized``; a query is its own
int-weighted term vector, and a document's score is the plain sum of query weight x document
impact over shared terms, exactly the dot product of the quantised vectors.

What goes to disk: ``<index_dir>/`` (a Lucene index; its staging collection is temporary).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from scaling.index import lucene


ROUNDINGS = ("floor", "round")


def quantise_csr(weights, factor: float = 100.0, rounding: str = "floor") -> sp.csr_matrix:
    """(N, V) non-negative weights (scipy CSR, or a dense tensor) -> int32 CSR of w x factor
    floored (``floor``, as ``int()`` truncates) or rounded to the nearest integer (``round``:
    weights below 0.5 / factor still vanish, but the rest lose no systematic half-unit); zeros
    dropped."""
    if rounding not in ROUNDINGS:
        raise ValueError(f"unknown rounding {rounding!r} (known: {', '.join(ROUNDINGS)})")
    m = weights.tocsr() if sp.issparse(weights) else sp.csr_matrix(torch.as_tensor(weights).float().numpy())
    scaled = m.data.astype(np.float32) * np.float32(factor)
    scaled = np.floor(scaled) if rounding == "floor" else np.rint(scaled)
    q = sp.csr_matrix((scaled.astype(np.int32), m.indices.copy(), m.indptr.copy()), shape=m.shape)
    q.eliminate_zeros()  # in place: hence the copies, the caller's matrix stays as it was
    return q


def to_vectors(q: sp.csr_matrix, names: list[str]):
    """Quantised CSR rows -> {token name: int} maps, one at a time (a generator)."""
    for r in range(q.shape[0]):
        lo, hi = q.indptr[r], q.indptr[r + 1]
        yield {names[i]: int(v) for i, v in zip(q.indices[lo:hi].tolist(), q.data[lo:hi].tolist())}


def build_index(docids: list[str], vectors, index_dir: Path, threads: int = 2) -> dict:
    """Index quantised document vectors (any iterable of {token: int}, consumed once, in docid
    order); returns {"seconds", "bytes"}."""
    from scaling.io import size_on_disk
    t = time.perf_counter()
    lucene.index_records(({"id": d, "contents": "", "vector": v} for d, v in zip(docids, vectors)), index_dir,
                         "JsonVectorCollection", ["-impact", "-pretokenized"], threads)
    return {"seconds": time.perf_counter() - t, "bytes": size_on_disk(index_dir)}


def search(index_dir: Path, queries: dict[str, dict[str, int]], k: int):
    """Impact search of int-weighted query vectors, one at a time (in a child process's JVM).

    Returns ({qid: {docid: score}}, [seconds per query]).
    """
    from scaling.index import searcher
    return searcher.search({"kind": "impact", "index": str(index_dir), "k": k, "queries": queries})


def brute_force(queries: dict[str, dict[str, int]], docids: list[str], vectors: list[dict[str, int]],
                k: int) -> dict[str, dict[str, float]]:
    """The same scores by hand: sum over shared tokens of query weight x document weight."""
    run = {}
    for qid, qv in queries.items():
        scores = {}
        for d, dv in zip(docids, vectors):
            s = sum(w * dv[t] for t, w in qv.items() if t in dv)
            if s > 0:
                scores[d] = float(s)
        run[qid] = dict(sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k])
    return run
