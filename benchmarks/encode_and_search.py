"""Benchmark, one run, ratios against a baseline measured in the same run, on the built-in corpus:

1. Encoding throughput: batches of similar length (what evaluation does) vs batches in corpus
   order (naive padding), with the default backbone and dense head.
2. Sparse search latency: the Lucene impact index (quantised x100, documents pruned to their top
   256 terms) vs brute force over the same quantised vectors (scipy CSR dot products), one query
   at a time, for the same queries, with whole queries and with queries pruned to their top
   ``--query-top-k`` terms (``paradigm.head.query_top_k``); plus the index's size and build time.

    python benchmarks/encode_and_search.py [--docs 1024] [--queries 200] [--batch 32]

Prints a table; nothing is asserted (timings are machine facts, not test outcomes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import compose  # noqa: E402


def encoder(cfg):
    from scaling.checkpoint import inference_model
    from scaling.data.collate import tokenizers_for
    module, tokenizer = inference_model(cfg)
    q_tok, d_tok = tokenizers_for(tokenizer, cfg.model, cfg.data.query_len, cfg.data.doc_len)
    return module.eval(), tokenizer, q_tok, d_tok


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=1024, help="documents to encode in part 1")
    ap.add_argument("--queries", type=int, default=200, help="queries timed in part 2")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--query-top-k", type=int, default=64, help="terms kept per query in the pruned rows")
    args = ap.parse_args()

    import numpy as np

    from scaling.data import corpora
    from scaling.index import impact
    from scaling.index.encode import ROWS, encode_texts
    cfg = compose([])
    data = corpora.load(cfg.data, Path(cfg.cache_dir).expanduser())
    rng = np.random.default_rng(0)
    docids = list(data.corpus)
    sample = [docids[i] for i in rng.choice(len(docids), min(args.docs, len(docids)), replace=False)]
    texts = [data.corpus[d] for d in sample]
    rows = []

    module, _, _, d_tok = encoder(cfg)
    fn = lambda t: module.head.postprocess(module.encode(t), "doc")  # noqa: E731
    encode_texts(fn, d_tok, texts[:args.batch], args.batch, progress=False)  # warm-up
    timing = {}
    for name, by_length in (("naive (corpus order)", False), ("length-bucketed", True)):
        t = time.perf_counter()
        out = encode_texts(fn, d_tok, texts, args.batch, progress=False, by_length=by_length)
        timing[name] = len(texts) / (time.perf_counter() - t)
    assert out.shape[0] == len(texts)
    base = timing["naive (corpus order)"]
    for name, v in timing.items():
        rows.append(("encode dense (texts/s)", name, f"{v:.1f}", f"{v / base:.2f}x"))

    # part 2: sparse vectors of the whole corpus from the default backbone with the sparse head
    scfg = compose(["paradigm=sparse"])
    module, tokenizer, q_tok, d_tok = encoder(scfg)
    names = module.head.term_names()
    t = time.perf_counter()
    dw = encode_texts(lambda x: module.head.postprocess(module.encode(x), "doc"), d_tok,
                      [data.corpus[d] for d in docids], 64, desc="encode corpus (sparse)", rows=ROWS["sparse"])
    enc_s = time.perf_counter() - t
    dq = impact.quantise_csr(dw)  # (N, V) int impacts, what the index stores
    dvecs = list(impact.to_vectors(dq, names))
    queries = data.split_queries("test")
    qids = list(queries)[:args.queries]

    def encode_queries(cfg_module):
        qw = encode_texts(lambda x: cfg_module.head.postprocess(cfg_module.encode(x), "query"), q_tok,
                          [queries[q] for q in qids], 64, desc="encode queries (sparse)", rows=ROWS["sparse"])
        return impact.quantise_csr(qw)  # (Q, V)
    q_all = encode_queries(module)
    pruned_module, *_ = encoder(compose(["paradigm=sparse", f"paradigm.head.query_top_k={args.query_top_k}"]))
    q_top = encode_queries(pruned_module)  # the head's own encode-time pruning
    qvecs = dict(zip(qids, impact.to_vectors(q_all, names)))
    pruned = dict(zip(qids, impact.to_vectors(q_top, names)))
    D = dq.T.tocsr().astype(np.float32)  # (V, N)

    def brute_force(Q):
        Q, lat = Q.astype(np.float32), []
        t = time.perf_counter()
        for i in range(len(qids)):
            s = time.perf_counter()
            scores = (Q[i] @ D).toarray().ravel()
            top = np.argpartition(-scores, min(1000, len(scores) - 1))[:1000]
            top[np.argsort(-scores[top])]
            lat.append(time.perf_counter() - s)
        return lat, len(qids) / (time.perf_counter() - t)

    results, runs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        stats = impact.build_index(docids, dvecs, Path(tmp) / "impact")
        impact.search(Path(tmp) / "impact", dict(list(qvecs.items())[:5]), 1000)  # JVM warm-up
        for label, qv, Q in (("all terms", qvecs, q_all), (f"top-{args.query_top_k} terms", pruned, q_top)):
            results[f"brute force (scipy CSR), {label}"] = brute_force(Q)
            t = time.perf_counter()
            runs[label], lat = impact.search(Path(tmp) / "impact", qv, 1000)
            results[f"Lucene impact, {label}"] = (lat, len(qids) / (time.perf_counter() - t))
    top10 = lambda r, q: set(sorted(r[q], key=lambda d: (-r[q][d], d))[:10])  # noqa: E731
    agree = np.mean([top10(runs["all terms"], q) == set(impact.brute_force({q: qvecs[q]}, docids, dvecs, 10)[q])
                     for q in qids[:20]])
    kept = np.mean([len(top10(runs["all terms"], q) & top10(runs[f"top-{args.query_top_k} terms"], q)) / 10
                    for q in qids if runs["all terms"].get(q)])
    nz_d = np.mean([len(v) for v in dvecs])
    nz_q = np.mean([len(v) for v in qvecs.values()])
    brute, brute_qps = results["brute force (scipy CSR), all terms"]
    for name, (lats, qps) in results.items():
        rows.append(("sparse search p50 (ms)", name, f"{1000 * statistics.median(lats):.2f}",
                     f"{statistics.median(brute) / statistics.median(lats):.2f}x"))
        rows.append(("sparse search p95 (ms)", name, f"{1000 * pct(lats, 95):.2f}",
                     f"{pct(brute, 95) / pct(lats, 95):.2f}x"))
        rows.append(("sparse search QPS", name, f"{qps:.1f}", f"{qps / brute_qps:.2f}x"))
    print(f"\ncorpus {len(docids)} docs; sparse non-zeros: {nz_d:.0f}/doc, {nz_q:.0f}/query; impact index "
          f"{stats['bytes'] / 1e6:.1f} MB built in {stats['seconds']:.1f} s; corpus encode {enc_s:.0f} s; "
          f"top-10 sets equal to brute force on {100 * agree:.0f}% of 20 queries; pruning queries to their "
          f"top {args.query_top_k} terms keeps {100 * kept:.0f}% of the full query's top 10")
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    print(f"{'measure':<{w[0]}}  {'method':<{w[1]}}  {'value':>{w[2]}}  {'vs baseline':>11}")
    for r in rows:
        print(f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:>{w[2]}}  {r[3]:>11}")


if __name__ == "__main__":
    main()
