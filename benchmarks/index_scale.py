"""Benchmark: an MS MARCO-sized index by simulation. Synthetic corpora with the statistics of
trained retrievers are streamed through the real exporters at several sizes; each size reports
build time, index size, peak memory and search latency/QPS, so that the growth with corpus size
can be read off and the 8.8M-passage figures extrapolated (printed at the end).

- Sparse: documents drawing U[100, 300] terms over a 128,256-term vocabulary, Zipf distributed
  (s=1.1, a random term order; repeated draws merge, so the distinct non-zeros per document are
  fewer and printed), weights log-normal; queries drawing U[15, 40] terms.
  Streamed in CSR blocks through the Lucene impact exporter (quantised x100; Anserini indexes in
  a child JVM, whose peak is the children's peak RSS).
- Dense: unit vectors of ``--dim`` (default 2048) with the low effective rank of real embeddings
  (a 64-cluster mixture in a 128-d latent space, projected, plus noise); queries are perturbed
  documents; the exact top 1000 comes from brute force over the same stream. Exact flat inner product, and IVF-PQ (``--pq-m`` codes of 8 bits, 4 sqrt(N) lists)
  at several nprobe (16 is the exporter's default) with recall@1000 against the exact top 1000.

    python benchmarks/index_scale.py [--sizes 100000,1000000] [--dense-sizes 100000,300000] [--dim 2048]

Prints tables; nothing is asserted. Each size runs in a fresh process, whose peak RSS beyond
its start is the peak memory (flat dense indexes hold every vector: that memory grows with N
by design).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import children_peak_rss_mb, peak_rss_mb, print_table  # noqa: E402

VOCAB, BLOCK = 128256, 20000
MSMARCO = 8_841_823


def sparse_rows(rng, n, lo, hi, order):
    """(n, VOCAB) CSR: about U[lo, hi] distinct Zipf-drawn terms per row (duplicate draws merged),
    log-normal weights."""
    import scipy.sparse as sp
    counts = rng.integers(lo, hi + 1, n)
    rows = np.repeat(np.arange(n), counts)
    terms = order[(rng.zipf(1.1, len(rows)) - 1) % VOCAB]
    keys = np.unique(rows.astype(np.int64) * VOCAB + terms)  # one entry per (row, term)
    r, t = keys // VOCAB, keys % VOCAB
    weights = rng.lognormal(0.0, 0.6, len(keys)).astype(np.float32)
    return sp.csr_matrix((weights, (r, t)), shape=(n, VOCAB))


class Names:
    """What the exporter asks of a head: the vocabulary's term names."""

    def term_names(self):
        return [f"t{i}" for i in range(VOCAB)]


def sparse_size(n: int, queries: int, seed: int = 0) -> dict:
    from scaling.config import EvalConfig
    from scaling.index.export import build_exporter
    rng = np.random.default_rng(seed)
    order = rng.permutation(VOCAB)  # which term is the most frequent
    exporter = build_exporter("sparse", EvalConfig(), Names())
    docids = [f"d{i}" for i in range(n)]

    def blocks():
        for lo in range(0, n, BLOCK):
            yield sparse_rows(np.random.default_rng((seed, lo)), min(BLOCK, n - lo), 100, 300, order)
    before = peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        built = exporter.build(blocks, docids, Path(tmp) / "index")
        q = sparse_rows(np.random.default_rng((seed, 10**12)), queries, 15, 40, order)
        _, stats = exporter.search(q, [f"q{i}" for i in range(queries)], 1000)
    return {"docs": n, "build_s": built["build_s"], "index_MB": built["index_MB"],
            "d_nonzero": built["d_nonzero"], "peak_MB": peak_rss_mb() - before,
            "jvm_peak_MB": children_peak_rss_mb(), **{k: stats[k] for k in ("p50_ms", "p95_ms", "QPS")}}


def dense_vectors(rng, n, dim, basis, centres):
    latent = centres[rng.integers(0, len(centres), n)] + rng.standard_normal((n, basis.shape[0]), np.float32)
    x = latent @ basis + 0.3 * rng.standard_normal((n, dim), np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_top(blocks, q, k):
    """The exact top-k document rows of each query by inner product, streamed block by block."""
    best_s = np.full((len(q), 0), -np.inf, np.float32)
    best_i = np.zeros((len(q), 0), np.int64)
    start = 0
    for b in blocks():
        s = q @ b.T  # (Q, n_b)
        best_s = np.concatenate([best_s, s], axis=1)
        best_i = np.concatenate([best_i, np.broadcast_to(np.arange(start, start + len(b)), s.shape)], axis=1)
        keep = np.argpartition(-best_s, min(k, best_s.shape[1] - 1), axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
        start += len(b)
    return best_i


def dense_size(n: int, dim: int, queries: int, pq_m: int, kind: str, seed: int = 0) -> list[dict]:
    """Build one kind of index over n synthetic vectors; recall@1000 against the exact top 1000
    (brute force over the same stream, outside the measured build)."""
    from scaling.index import dense
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((128, dim), np.float32) / np.sqrt(128)
    centres = 3 * rng.standard_normal((64, 128), np.float32)

    def blocks():
        for lo in range(0, n, BLOCK):
            yield dense_vectors(np.random.default_rng((seed, lo)), min(BLOCK, n - lo), dim, basis, centres)
    first = next(blocks())
    q = first[:queries] + 0.05 * rng.standard_normal((queries, dim), np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    docids = [f"d{i}" for i in range(n)]
    params = {"pq_m": pq_m, "train_rows": min(n, 65536)} if kind == "ivfpq" else {}
    before = peak_rss_mb()
    t = time.perf_counter()
    index = dense.build_blocks(blocks, n, kind, **params)
    build = time.perf_counter() - t
    peak = peak_rss_mb() - before
    with tempfile.TemporaryDirectory() as tmp:
        dense.save(index, docids, Path(tmp), {"kind": kind})
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 1e6
    exact = exact_top(blocks, q, 1000)
    rows = []
    for nprobe in ([None] if kind == "flat" else [16, 64, 256]):
        label = kind
        if nprobe is not None:
            index.nprobe, label = min(nprobe, index.nlist), f"{kind}/{nprobe}"
        t = time.perf_counter()
        _, ids = index.search(q, 1000)
        batch_s = time.perf_counter() - t
        lat = dense.latencies(index, q, 1000)
        recall = float(np.mean([len(set(a) & set(b)) / 1000 for a, b in zip(ids, exact)]))
        rows.append({"docs": n, "kind": label, "build_s": build, "index_MB": size, "peak_MB": peak,
                     "p50_ms": 1000 * float(np.median(lat)), "QPS_batch": queries / batch_s,
                     "recall@1000": recall})
    return rows


def per_doc(row: dict) -> float:
    """Index bytes per document."""
    return row["index_MB"] * 1e6 / row["docs"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000", help="sparse corpus sizes")
    ap.add_argument("--dense-sizes", default="100000,300000", help="dense corpus sizes")
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--pq-m", type=int, default=256, help="IVF-PQ sub-quantisers (bytes per vector)")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--one", help=argparse.SUPPRESS)  # a child's own run: sparse:N, dense-flat:N, dense-ivfpq:N
    a = ap.parse_args()
    if a.one:
        kind, n = a.one.split(":")
        out = (sparse_size(int(n), a.queries) if kind == "sparse"
               else dense_size(int(n), a.dim, a.queries, a.pq_m, kind.removeprefix("dense-")))
        print(json.dumps(out))
        return

    def child(kind, n):
        out = subprocess.run([sys.executable, __file__, f"--one={kind}:{n}", f"--dim={a.dim}", f"--pq-m={a.pq_m}",
                              f"--queries={a.queries}"], capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"{kind} {n}: {out.stderr[-2000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])
    sparse = [child("sparse", int(n)) for n in a.sizes.split(",") if n]
    if sparse:
        print(f"sparse (Lucene impact), {VOCAB:,}-term vocabulary, {a.queries} queries, top 1000")
        print_table(sparse, [("docs", "docs", ","), ("nnz/doc", "d_nonzero", ".0f"), ("build s", "build_s", ".1f"),
                             ("index MB", "index_MB", ",.0f"), ("B/doc", per_doc, ".0f"),
                             ("py peak MB", "peak_MB", ",.0f"), ("JVM peak MB", "jvm_peak_MB", ",.0f"),
                             ("p50 ms", "p50_ms", ".1f"), ("p95 ms", "p95_ms", ".1f"), ("QPS", "QPS", ".1f")])
        big = sparse[-1]
        print(f"extrapolated to {MSMARCO:,} passages (linear in docs): index {big['index_MB'] / big['docs'] * MSMARCO / 1e3:,.1f} GB, "
              f"build {big['build_s'] / big['docs'] * MSMARCO / 3600:.1f} h on these cores; "
              f"{big['docs'] / sparse[0]['docs']:.0f}x the docs took {big['build_s'] / sparse[0]['build_s']:.1f}x "
              f"the build and {big['peak_MB'] / max(sparse[0]['peak_MB'], 1):.2f}x the Python peak")
    dense_rows = [r for n in a.dense_sizes.split(",") if n for kind in ("flat", "ivfpq")
                  for r in child(f"dense-{kind}", int(n))]
    if dense_rows:
        print(f"\ndense (FAISS), dim {a.dim}, {a.queries} queries, top 1000; IVF-PQ {a.pq_m} x 8-bit codes")
        print_table(dense_rows, [("docs", "docs", ","), ("index/nprobe", "kind", ""), ("build s", "build_s", ".1f"),
                                 ("index MB", "index_MB", ",.0f"), ("B/doc", per_doc, ".0f"),
                                 ("peak MB", "peak_MB", ",.0f"), ("p50 ms", "p50_ms", ".1f"),
                                 ("QPS batch", "QPS_batch", ".1f"), ("R@1000 vs exact", "recall@1000", ".3f")])
        flat = 4 * a.dim * MSMARCO / 1e9
        print(f"at {MSMARCO:,} passages: flat float32 {flat:,.0f} GB (x{4096 / a.dim:g} at 4096-d: "
              f"{flat * 4096 / a.dim:,.0f} GB); IVF-PQ {a.pq_m} B codes + 8 B ids: "
              f"{(a.pq_m + 8) * MSMARCO / 1e9:.1f} GB")


if __name__ == "__main__":
    main()
