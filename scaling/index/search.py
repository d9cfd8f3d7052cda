"""Exact inner-product search -> a TREC-style run {qid: {docid: score}}."""

from __future__ import annotations

import torch


def exact_search(q: torch.Tensor, d: torch.Tensor, qids: list[str], docids: list[str],
                 k: int = 1000, chunk: int = 256) -> dict[str, dict[str, float]]:
    """Top-k documents by q . d for every query (brute force, chunked over queries)."""
    k = min(k, d.shape[0])
    run: dict[str, dict[str, float]] = {}
    for s in range(0, q.shape[0], chunk):
        scores = q[s:s + chunk] @ d.T  # (c, N)
        top = scores.topk(k, dim=1)
        for row, qid in enumerate(qids[s:s + chunk]):
            run[qid] = {docids[j]: float(v) for v, j in zip(top.values[row].tolist(),
                                                           top.indices[row].tolist())}
    return run


def write_trec_run(run: dict[str, dict[str, float]], path, tag: str = "scaling") -> None:
    """Write ``qid Q0 docid rank score tag`` lines, best first (atomically)."""
    from scaling.io import write_atomic

    def write(f):
        for qid, docs in run.items():
            ranked = sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))
            for rank, (docid, score) in enumerate(ranked, 1):
                f.write(f"{qid} Q0 {docid} {rank} {score:.6f} {tag}\n")
    write_atomic(path, write)
