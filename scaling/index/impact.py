"""Sparse export: quantised vocabulary weights in a Lucene impact index, searched with int weights.

Documents become JsonVectorCollection lines ``{"id", "contents": "", "vector": {token: int}}``
(weights x ``factor``, 100 by default, truncated to int as Lucene's impact field stores them;
zeros dropped); token names are the tokenizer's vocabulary made whitespace-safe and unique
(``safe_token_names``). Anserini indexes them with ``-impact -pretokenized``; a query is its own
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


def safe_token_names(tokenizer, vocab_size: int) -> list[str]:
    """One whitespace-free, unique name per vocabulary id (whitespace -> '␣'; clashes get '#id')."""
    names, seen = [], set()
    for i in range(vocab_size):
        tok = tokenizer.convert_ids_to_tokens(i) if i < len(tokenizer) else None
        name = "".join("␣" if c.isspace() else c for c in (tok or "")) or f"[{i}]"
        if name in seen:
            name = f"{name}#{i}"
        seen.add(name)
        names.append(name)
    return names


def quantise_csr(weights, factor: float = 100.0) -> sp.csr_matrix:
    """(N, V) non-negative weights (scipy CSR, or a dense tensor) -> int32 CSR of int(w x factor),
    zeros dropped (truncation, as Lucene's impact field stores them)."""
    m = weights.tocsr() if sp.issparse(weights) else sp.csr_matrix(torch.as_tensor(weights).float().numpy())
    q = sp.csr_matrix(((m.data.astype(np.float32) * np.float32(factor)).astype(np.int32), m.indices, m.indptr),
                      shape=m.shape)
    q.eliminate_zeros()
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
