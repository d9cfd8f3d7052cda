"""Dense export: a FAISS index of document vectors with its docid map, searched into TREC runs.

Kinds: ``flat`` (exact inner product, the default: on random-looking vectors graph and
quantised indexes recall badly at these scales), ``hnsw`` (graph; ``hnsw_m``, ``ef_search``),
``ivfpq`` (``nlist`` lists, ``pq_m`` sub-quantisers of ``pq_bits`` bits; trained on the corpus).
A CUDA build of faiss moves flat and IVF-PQ indexes to the GPU when one is visible.

What goes to disk under the index folder (written atomically): ``index.faiss``, ``docids.json``
and ``meta.json`` (kind, parameters, dimension, count, build seconds).
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np

KINDS = ("flat", "hnsw", "ivfpq")


def _faiss():
    try:
        import faiss
    except ImportError as e:
        raise ImportError("dense export needs faiss: pip install faiss-cpu (make setup installs it), "
                          "or faiss-gpu on CUDA machines") from e
    return faiss


def build(vectors: np.ndarray, kind: str = "flat", **params):
    """An inner-product index over ``vectors`` (N, dim) float32 held in memory."""
    return build_blocks(lambda: iter([vectors]), len(vectors), kind, **params)


def build_blocks(blocks, count: int, kind: str = "flat", hnsw_m: int = 32, ef_search: int = 128,
                 nlist: int | None = None, pq_m: int = 16, pq_bits: int = 8, train_rows: int = 262144):
    """An inner-product index over ``count`` vectors that ``blocks()`` yields as (n_i, dim) arrays,
    read once and added block by block, so the corpus never sits in memory whole. IVF-PQ trains on
    the first ``train_rows`` vectors: the leading blocks that hold them wait in memory until then."""
    if kind not in KINDS:
        raise ValueError(f"unknown dense index kind {kind!r}; known: {', '.join(KINDS)}")
    faiss = _faiss()
    rest = (np.ascontiguousarray(b, dtype=np.float32) for b in blocks())
    lead, have = [], 0  # blocks read before the index exists: the first, or IVF-PQ's training sample
    for b in rest:
        lead.append(b)
        have += len(b)
        if kind != "ivfpq" or have >= train_rows:
            break
    if not lead:
        raise ValueError("no vectors to index")
    dim = lead[0].shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = ef_search
    else:
        nlist = nlist or max(1, int(4 * np.sqrt(count)))
        if dim % pq_m:
            raise ValueError(f"ivfpq: pq_m={pq_m} must divide the dimension {dim}")
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, pq_m, pq_bits, faiss.METRIC_INNER_PRODUCT)
        index.train(np.concatenate(lead)[:train_rows])
        index.nprobe = min(nlist, 16)
    if kind != "hnsw" and hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0:
        index = faiss.index_cpu_to_all_gpus(index)
    for b in itertools.chain(lead, rest):
        index.add(b)
    return index


def search(index, docids: list[str], queries: np.ndarray, qids: list[str], k: int):
    """Batch search -> {qid: {docid: score}}."""
    scores, rows = index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, index.ntotal))
    return {qid: {docids[j]: float(s) for s, j in zip(srow, jrow) if j >= 0}
            for qid, srow, jrow in zip(qids, scores, rows)}


def latencies(index, queries: np.ndarray, k: int, sample: int = 200) -> list[float]:
    """Seconds per query, one at a time (what a server answering one user sees), for the first
    ``sample`` queries: the run itself comes from one batch search."""
    out = []
    for row in np.ascontiguousarray(queries[:sample], dtype=np.float32):
        t = time.perf_counter()
        index.search(row[None], min(k, index.ntotal))
        out.append(time.perf_counter() - t)
    return out


def save(index, docids: list[str], out_dir: Path, meta: dict) -> Path:
    from scaling.io import atomic_dir
    faiss = _faiss()
    if "Gpu" in type(index).__name__:
        index = faiss.index_gpu_to_cpu(index)
    with atomic_dir(out_dir) as tmp:
        faiss.write_index(index, str(tmp / "index.faiss"))
        (tmp / "docids.json").write_text(json.dumps(docids))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    return Path(out_dir)


def load(out_dir: Path):
    """(index, docids, meta) from a folder written by ``save``."""
    faiss = _faiss()
    out_dir = Path(out_dir)
    return (faiss.read_index(str(out_dir / "index.faiss")), json.loads((out_dir / "docids.json").read_text()),
            json.loads((out_dir / "meta.json").read_text()))

