"""Index export: FAISS for dense vectors and Lucene impact indexes for sparse ones, each against brute force."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from scaling.heads.vocab import token_names
from scaling.index import dense, impact
from scaling.index.search import exact_search


def _same_top(run_a, run_b, k=10, tol=1e-4):
    """Same ids in the same order up to ties (equal scores may swap)."""
    for qid in run_b:
        a = sorted(run_a[qid].items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        b = sorted(run_b[qid].items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        assert len(a) == len(b), qid
        for (da, sa), (db, sb) in zip(a, b):
            assert sa == pytest.approx(sb, abs=tol), qid
            assert da == db or abs(sa - sb) <= tol, qid


def test_faiss_flat_equals_brute_force(tmp_path):
    g = torch.Generator().manual_seed(0)
    docs, queries = torch.randn(500, 48, generator=g), torch.randn(20, 48, generator=g)
    docids, qids = [f"d{i}" for i in range(500)], [f"q{i}" for i in range(20)]
    index = dense.build(docs.numpy(), "flat")
    run = dense.search(index, docids, queries.numpy(), qids, 100)
    _same_top(run, exact_search(queries, docs, qids, docids, 100), k=100)
    dense.save(index, docids, tmp_path / "idx", {"kind": "flat"})
    loaded, ids, meta = dense.load(tmp_path / "idx")
    assert ids == docids and meta["kind"] == "flat" and loaded.ntotal == 500
    assert len(dense.latencies(loaded, queries.numpy()[:5], 10)) == 5


def test_faiss_built_block_by_block_equals_one_array():
    g = torch.Generator().manual_seed(2)
    docs, queries = torch.randn(230, 16, generator=g).numpy(), torch.randn(7, 16, generator=g).numpy()
    docids, qids = [f"d{i}" for i in range(230)], [f"q{i}" for i in range(7)]
    reads = []

    def blocks():
        reads.append(1)
        return (docs[s:s + 50] for s in range(0, 230, 50))
    streamed = dense.build_blocks(blocks, 230, "flat")
    assert streamed.ntotal == 230
    whole = dense.build(docs)
    assert dense.search(streamed, docids, queries, qids, 20) == dense.search(whole, docids, queries, qids, 20)
    # IVF-PQ trains on the leading 120 rows (from the first three blocks), then adds all 230
    ivf = dense.build_blocks(blocks, 230, "ivfpq", nlist=4, pq_m=4, pq_bits=4, train_rows=120)
    assert ivf.ntotal == 230 and ivf.is_trained
    assert len(reads) == 2  # each build read the blocks once


@pytest.mark.parametrize("kind,kwargs", [("hnsw", {"hnsw_m": 16}), ("ivfpq", {"nlist": 8, "pq_m": 8})])
def test_approximate_indexes_find_the_exact_neighbours_mostly(kind, kwargs):
    g = torch.Generator().manual_seed(1)
    centres = torch.randn(10, 32, generator=g) * 3
    docs = centres[torch.arange(1000) % 10] + torch.randn(1000, 32, generator=g)
    queries = centres[torch.arange(30) % 10] + torch.randn(30, 32, generator=g)
    docids, qids = [f"d{i}" for i in range(1000)], [f"q{i}" for i in range(30)]
    run = dense.search(dense.build(docs.numpy(), kind, **kwargs), docids, queries.numpy(), qids, 10)
    exact = exact_search(queries, docs, qids, docids, 10)
    overlap = np.mean([len(set(run[q]) & set(exact[q])) / 10 for q in qids])
    assert overlap > 0.5, overlap


def test_token_names_are_whitespace_free_and_unique():
    class Tok:
        vocab = ["the", "Ġthe", "a b", "a\tb", "", "The"]
        def __len__(self):
            return len(self.vocab)
        def convert_ids_to_tokens(self, i):
            return self.vocab[i]
    names = token_names(Tok(), 7)
    assert len(set(names)) == 7 and not any(c.isspace() for n in names for c in n)
    assert names[:2] == ["the", "Ġthe"] and names[2] == "a␣b" and names[3] == "a␣b#3" and names[5] == "The"


def test_lucene_impact_search_equals_brute_force_over_quantised_vectors(tmp_path):
    from scaling.backbone import llama3_tokenizer
    tok = llama3_tokenizer()
    names = token_names(tok, len(tok))
    rng = random.Random(0)
    vocab = rng.sample(range(len(names)), 300) + [tok.convert_tokens_to_ids(t) for t in ("apple", "Apple")]
    def vec(n_terms):
        w = torch.zeros(len(names))
        for i in rng.sample(vocab, n_terms):
            w[i] = rng.random() * 3
        return w
    docids = [f"doc{i}" for i in range(400)]
    dweights = torch.stack([vec(rng.randint(5, 40)) for _ in docids])
    dweights[0, vocab[-1]], dweights[1, vocab[-2]] = 2.5, 2.5  # 'Apple' and 'apple' stay distinct
    dvecs = list(impact.to_vectors(impact.quantise_csr(dweights), names))
    qweights = torch.stack([vec(rng.randint(2, 12)) for _ in range(25)])
    qweights[0, vocab[-1]] = 1.0
    qvecs = dict(zip([f"q{i}" for i in range(25)], impact.to_vectors(impact.quantise_csr(qweights), names)))
    stats = impact.build_index(docids, dvecs, tmp_path / "impact")
    assert stats["bytes"] > 0
    run, lat = impact.search(tmp_path / "impact", qvecs, 10)
    want = impact.brute_force(qvecs, docids, dvecs, 10)
    _same_top(run, want, k=10, tol=0.0)
    assert len(lat) == 25
    single = {"upper": {names[vocab[-1]]: 1}, "lower": {names[vocab[-2]]: 1}}
    run, _ = impact.search(tmp_path / "impact", single, 50)
    _same_top(run, impact.brute_force(single, docids, dvecs, 50), k=50, tol=1e-3)
    assert "doc0" in run["upper"] and "doc1" in run["lower"] and run["upper"] != run["lower"]
