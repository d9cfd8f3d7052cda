"""Index exporters keyed by head kind: dense vectors -> FAISS, sparse vectors -> Lucene impact index.

Evaluation encodes the corpus in the exporter's row format (``rows``: float32 arrays for dense,
scipy CSR for sparse; see ``encode``), hands the document rows to the exporter of the head's
``kind``, which builds a real index (what a researcher would serve), then searches every split's
queries through it one query at a time (for latency) and in batch (for the run). Each exporter
reports its index's size on disk, build time, query latency p50/p95 and queries per second; the
sparse one also the mean non-zeros per query and document and the FLOPS measure (Paria et al.:
sum over terms of P(term in query) x P(term in document)).

What goes to disk: ``<index_dir>/`` (FAISS files or a Lucene index; see ``dense`` and ``impact``).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from scaling.index.encode import ROWS
from scaling.registry import registrar

EXPORTERS: dict[str, type] = {}
"""Head kind -> exporter class (every kind in scaling.heads.base.KINDS has one)."""
register = registrar(EXPORTERS)


def latency_stats(lat: list[float], seconds: float, n: int) -> dict[str, float]:
    s = sorted(lat)
    p95 = s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))] if s else 0.0
    return {"p50_ms": 1000 * (statistics.median(s) if s else 0.0), "p95_ms": 1000 * p95,
            "QPS": n / seconds if seconds > 0 else 0.0}


@register("dense")
class FaissExport:
    rows = ROWS["dense"]

    def __init__(self, eval_cfg, head=None):
        self.cfg = eval_cfg

    def build(self, blocks, docids: list[str], out_dir: Path) -> dict:
        """``blocks()``: an iterator over the corpus's (n_i, dim) arrays, in docid order."""
        from scaling.io import size_on_disk
        from scaling.index import dense
        t = time.perf_counter()
        self.index = dense.build_blocks(blocks, len(docids), self.cfg.index)
        seconds = time.perf_counter() - t
        dense.save(self.index, docids, out_dir, {"kind": self.cfg.index, "dim": self.index.d,
                                                 "count": len(docids), "build_s": seconds})
        self.docids = docids
        return {"index_MB": size_on_disk(out_dir) / 1e6, "build_s": seconds}

    def search(self, queries: np.ndarray, qids: list[str], k: int):
        from scaling.index import dense
        run = dense.search(self.index, self.docids, queries, qids, k)
        lat = dense.latencies(self.index, queries, k)
        return run, latency_stats(lat, sum(lat), len(lat))


@register("sparse")
class ImpactExport:
    rows = ROWS["sparse"]

    def __init__(self, eval_cfg, head):
        self.cfg = eval_cfg
        self.names = head.term_names()

    def build(self, blocks, docids: list[str], out_dir: Path) -> dict:
        """``blocks()``: an iterator over the corpus's (n_i, V) CSR blocks, in docid order; each is
        quantised and streamed into the indexer's staging file, so no corpus-wide copy is held."""
        from scaling.heads.sparse import spread_from_sums
        from scaling.index import impact
        V, n = len(self.names), len(docids)
        self.d_df, mass, unit_sum, unit_sq = np.zeros(V, np.int64), np.zeros(V), np.zeros(V), 0.0

        def vectors():
            nonlocal unit_sq
            for block in blocks():
                q = impact.quantise_csr(block, self.cfg.quantization, self.cfg.rounding)
                self.d_df += np.bincount(q.indices, minlength=V)
                mass[:] += np.bincount(q.indices, weights=q.data, minlength=V)
                unit = unit_rows(q)
                unit_sum[:] += np.asarray(unit.sum(axis=0)).ravel()
                unit_sq += unit.multiply(unit).sum()
                yield from impact.to_vectors(q, self.names)
        stats = impact.build_index(docids, vectors(), out_dir)
        self.out_dir, self.n_docs = Path(out_dir), n
        spread = spread_from_sums(unit_sum, unit_sq, self.d_df, mass, n)
        return {"index_MB": stats["bytes"] / 1e6, "build_s": stats["seconds"],
                "d_nonzero": int(self.d_df.sum()) / max(1, n), **{k: float(v) for k, v in spread.items()}}

    def search(self, queries: sp.csr_matrix, qids: list[str], k: int):
        from scaling.index import impact
        q = impact.quantise_csr(queries, self.cfg.quantization, self.cfg.rounding)
        run, lat = impact.search(self.out_dir, dict(zip(qids, impact.to_vectors(q, self.names))), k)
        stats = latency_stats(lat, sum(lat), len(qids))
        q_df = np.bincount(q.indices, minlength=len(self.names))
        flops = float((q_df / max(1, len(qids))) @ (self.d_df / max(1, self.n_docs)))
        stats.update(q_nonzero=q.nnz / max(1, len(qids)), FLOPS=flops)
        return run, stats


def unit_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to unit L2 norm (empty rows stay empty)."""
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1), dtype=np.float64)).ravel()
    return sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ m.astype(np.float64)


def build_exporter(kind: str, eval_cfg, head):
    if kind not in EXPORTERS:
        raise KeyError(f"no index exporter for head kind {kind!r}; known: {', '.join(EXPORTERS)}")
    return EXPORTERS[kind](eval_cfg, head)
