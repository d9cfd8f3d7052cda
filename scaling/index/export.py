"""Index exporters keyed by head kind: dense vectors -> FAISS, sparse vectors -> Lucene impact index.

Evaluation encodes the corpus, hands the document representations to the exporter of the head's
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

import torch

from scaling.registry import registrar

EXPORTERS: dict[str, type] = {}
register = registrar(EXPORTERS)


def latency_stats(lat: list[float], seconds: float, n: int) -> dict[str, float]:
    s = sorted(lat)
    p95 = s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))] if s else 0.0
    return {"p50_ms": 1000 * (statistics.median(s) if s else 0.0), "p95_ms": 1000 * p95,
            "QPS": n / seconds if seconds > 0 else 0.0}


@register("dense")
class FaissExport:
    def __init__(self, eval_cfg, tokenizer=None, head=None):
        self.cfg = eval_cfg

    def build(self, docs: torch.Tensor, docids: list[str], out_dir: Path) -> dict:
        from scaling.index import dense
        t = time.perf_counter()
        self.index = dense.build(docs.numpy(), self.cfg.index)
        seconds = time.perf_counter() - t
        dense.save(self.index, docids, out_dir, {"kind": self.cfg.index, "dim": docs.shape[1],
                                                 "count": len(docids), "build_s": seconds})
        self.docids = docids
        from scaling.data.formats import size_on_disk
        return {"index_MB": size_on_disk(out_dir) / 1e6, "build_s": seconds}

    def search(self, queries: torch.Tensor, qids: list[str], k: int):
        from scaling.index import dense
        run = dense.search(self.index, self.docids, queries.numpy(), qids, k)
        lat = dense.latencies(self.index, queries.numpy(), k)
        return run, latency_stats(lat, sum(lat), len(lat))


@register("sparse")
class ImpactExport:
    def __init__(self, eval_cfg, tokenizer, head):
        from scaling.index import impact
        self.cfg = eval_cfg
        self.names = impact.safe_token_names(tokenizer, head.vocab_size)

    def build(self, docs: torch.Tensor, docids: list[str], out_dir: Path) -> dict:
        from scaling.index import impact
        self.dvecs = impact.quantise(docs, self.names, self.cfg.quantization)
        stats = impact.build_index(docids, self.dvecs, out_dir)
        self.out_dir, self.n_docs = Path(out_dir), len(docids)
        return {"index_MB": stats["bytes"] / 1e6, "build_s": stats["seconds"],
                "d_nonzero": sum(len(v) for v in self.dvecs) / max(1, len(self.dvecs))}

    def search(self, queries: torch.Tensor, qids: list[str], k: int):
        from collections import Counter

        from scaling.index import impact
        qvecs = dict(zip(qids, impact.quantise(queries, self.names, self.cfg.quantization)))
        run, lat = impact.search(self.out_dir, qvecs, k)
        stats = latency_stats(lat, sum(lat), len(qids))
        q_df = Counter(w for v in qvecs.values() for w in v)
        d_df = Counter(w for v in self.dvecs for w in v)
        flops = sum(c / max(1, len(qvecs)) * d_df[w] / max(1, self.n_docs) for w, c in q_df.items())
        stats.update(q_nonzero=sum(len(v) for v in qvecs.values()) / max(1, len(qvecs)), FLOPS=flops)
        return run, stats


def build_exporter(kind: str, eval_cfg, tokenizer, head):
    if kind not in EXPORTERS:
        raise KeyError(f"no index exporter for head kind {kind!r}; known: {', '.join(EXPORTERS)}")
    return EXPORTERS[kind](eval_cfg, tokenizer, head)
