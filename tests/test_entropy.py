"""Contrastive entropy (scaling/evaluation/entropy.py) against a brute-force computation, and its
candidate sets: drawn once, per query, never a relevant document among the negatives."""

import json

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import logsumexp

from scaling.evaluation import entropy


def corpus_and_qrels(n_docs=40, n_queries=12):
    docids = [f"d{i}" for i in range(n_docs)]
    qrels = {f"q{i}": {f"d{i}": 1, f"d{i + 1}": 2} for i in range(n_queries)}
    qrels["q_none"] = {"d3": 0}                  # no relevant document: left out
    qrels["q_gone"] = {"missing": 1}             # its positive is not in the corpus: left out
    return docids, qrels


def test_candidate_sets_are_drawn_per_query_and_saved_once(tmp_path):
    docids, qrels = corpus_and_qrels()
    sets = entropy.draw(qrels, docids, k=7, seed=3)
    assert set(sets) == {f"q{i}" for i in range(12)}
    for qid, cands in sets.items():
        i = int(qid[1:])
        assert cands[0] == f"d{i + 1}"           # the highest grade is the positive
        assert len(cands) == 8 and len(set(cands)) == 8
        assert not set(cands[1:]) & {f"d{i}", f"d{i + 1}"}  # no relevant document among the negatives
    # a query's set depends on (seed, qid) only: dropping other queries changes nothing
    assert entropy.draw({"q5": qrels["q5"]}, docids, 7, 3)["q5"] == sets["q5"]
    assert entropy.draw(qrels, docids, 7, 4)["q5"] != sets["q5"]
    path = tmp_path / "c" / "test-k7-seed3.json"
    assert entropy.candidates(path, qrels, docids, 7, 3) == sets
    first = path.read_text()
    # read back, not redrawn: even when the corpus it is asked with differs
    assert entropy.candidates(path, qrels, docids[:20], 7, 3) == sets and path.read_text() == first
    assert json.loads(first)["k"] == 7


@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("block", [5, 16, 100])
def test_entropy_equals_a_brute_force_log_softmax(kind, block):
    rng = np.random.default_rng(0)
    docids, qrels = corpus_and_qrels()
    qids = sorted(qrels)
    dim = 9
    docs = rng.normal(size=(len(docids), dim)).astype(np.float32)
    queries = rng.normal(size=(len(qids), dim)).astype(np.float32)
    if kind == "sparse":
        docs, queries = np.maximum(docs, 0), np.maximum(queries, 0)
    sets = entropy.draw(qrels, docids, k=6, seed=0)
    store = sp.csr_matrix(docs) if kind == "sparse" else docs
    q_rows = sp.csr_matrix(queries) if kind == "sparse" else queries

    def blocks():
        for s in range(0, len(docids), block):
            yield store[s:s + block]
    mean, per_query = entropy.entropy(q_rows, qids, blocks, docids, sets, temperature=0.3)
    want = {}
    for qid, cands in sets.items():
        q = queries[qids.index(qid)].astype(np.float64)
        scores = np.array([q @ docs[docids.index(d)].astype(np.float64) for d in cands]) / 0.3
        want[qid] = logsumexp(scores) - scores[0]
    assert set(per_query) == set(want)
    for qid in want:
        assert per_query[qid] == pytest.approx(want[qid], rel=1e-5, abs=1e-5)
    assert mean == pytest.approx(np.mean(list(want.values())), rel=1e-5)
    assert all(v > 0 for v in per_query.values())
