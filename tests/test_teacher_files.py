"""Teacher files in every supported layout read into one record; bad lines are named by file,
line and field; a pickle that would run code is refused before it runs."""

import gzip
import json
import pathlib
import pickle

import numpy as np
import pytest

from scaling.data import teacher_files as tfiles
from scaling.data.formats import FormatError


def _jsonl(*records):
    return [json.dumps(r) for r in records]


def _tev(docid, score=None):
    p = {"docid": docid, "title": "", "text": f"passage {docid}"}
    return p if score is None else {**p, "score": score}


# format -> (lines of a good file, expected (scores, pools, positives), a bad line 3, the field it names)
LAYOUTS = {
    "tsv": (
        ["1\t10\t0.5", "1\t11\t-1.25", "", "2\t20\t3", "3\t30\t1e-2"],
        ({"1": {"10": 0.5, "11": -1.25}, "2": {"20": 3.0}, "3": {"30": 0.01}}, {}, {}),
        "2\t20\thigh", "'score'"),
    "margin_mse": (
        ["10.5\t2.0\t1\t10\t11", "10.5\t3.0\t1\t10\t12", "10.5004\t2.0\t1\t10\t11", "8\t-1\t2\t20\t21"],
        ({"1": {"10": 10.5, "11": 2.0, "12": 3.0}, "2": {"20": 8.0, "21": -1.0}},
         {"1": ["11", "12"], "2": ["21"]}, {"1": ["10"], "2": ["20"]}),
        "10.5\tlow\t1\t10\t13", "'neg_score'"),
    "hard_negatives": (
        _jsonl({"qid": 1, "pos": [10], "neg": {"bm25": [11, 12, 10, 13], "tasb": [12, 14]}},
               {"qid": 2, "pos": [20, 21], "neg": {"tasb": [22], "bm25": [23, 21]}},
               {"qid": 3, "pos": [30], "neg": {"bm25": [31]}}),
        ({}, {"1": ["11", "12", "14", "13"], "2": ["22", "23"], "3": ["31"]},
         {"1": ["10"], "2": ["20", "21"], "3": ["30"]}),
        json.dumps({"qid": 3, "pos": 30, "neg": {"bm25": [31]}}), "'pos'"),
    "zeng_triples": (
        _jsonl({"question": "what is a", "pos_pid": "10", "neg_pids": ["11", "12"]},
               {"question": "who is b", "pos_pid": 20, "neg_pids": [21, 22, 21]},
               {"question": "what is a", "pos_pid": "13", "neg_pids": ["12", "14"]}),
        ({}, {"what is a": ["11", "12", "14"], "who is b": ["21", "22"]},
         {"what is a": ["10", "13"], "who is b": ["20"]}),
        json.dumps({"question": "c", "pos_pid": "30", "neg_pids": "31"}), "'neg_pids'"),
    "zeng_margin": (
        _jsonl({"question": "q a", "pos_pid": "10", "neg_pids": ["11", "12"], "pos_score": 9.5,
                "neg_scores": [1.0, -2]},
               {"qid": 2, "question": "q b", "pos_pid": 20, "neg_pids": [21], "pos_score": 7, "neg_scores": [0.5]},
               {"question": "q c", "pos_pid": "30", "neg_pids": [], "pos_score": 1, "neg_scores": []}),
        ({"q a": {"10": 9.5, "11": 1.0, "12": -2.0}, "2": {"20": 7.0, "21": 0.5}, "q c": {"30": 1.0}},
         {"q a": ["11", "12"], "2": ["21"], "q c": []}, {"q a": ["10"], "2": ["20"], "q c": ["30"]}),
        json.dumps({"question": "c", "pos_pid": "30", "neg_pids": ["31", "32"], "pos_score": 1,
                    "neg_scores": [0.5]}), "'neg_scores'"),
    "zeng_scores": (
        _jsonl({"query": "q a", "docids": ["10", "11", "12"], "scores": [9.0, 1.0, 2.0]},
               {"query": "q b", "docids": [20, 21], "scores": [5, 4.5]},
               {"query": "q c", "docids": ["30"], "scores": [1.0]}),
        ({"q a": {"10": 9.0, "11": 1.0, "12": 2.0}, "q b": {"20": 5.0, "21": 4.5}, "q c": {"30": 1.0}},
         {"q a": ["11", "12"], "q b": ["21"], "q c": []}, {"q a": ["10"], "q b": ["20"], "q c": ["30"]}),
        json.dumps({"query": "q c", "docids": ["30"], "scores": ["high"]}), "'scores'"),
    "tevatron": (
        _jsonl({"query_id": "1", "query": "a", "positive_passages": [_tev("10", 9.0)],
                "negative_passages": [_tev("11", 1.0), _tev("12")]},
               {"query_id": "2", "query": "b", "positive_passages": [_tev("20")],
                "negative_passages": [_tev("21"), _tev("22"), _tev("21")]},
               {"query_id": 3, "query": "c", "positive_passages": [_tev("30")], "negative_passages": []}),
        ({"1": {"10": 9.0, "11": 1.0}}, {"1": ["11", "12"], "2": ["21", "22"], "3": []},
         {"1": ["10"], "2": ["20"], "3": ["30"]}),
        json.dumps({"query_id": "3", "query": "c", "positive_passages": [_tev("30")],
                    "negative_passages": [{"title": "", "text": "no id"}]}), "'negative_passages[0].docid'"),
}


def _write(path, lines, gz=False):
    data = ("\n".join(lines) + "\n").encode()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def _parts(tf):
    return tf.scores, tf.pools, tf.positives


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("fmt", list(LAYOUTS))
def test_every_layout_reads(tmp_path, fmt, gz):
    lines, expected, _, _ = LAYOUTS[fmt]
    path = _write(tmp_path / "teacher.data", lines, gz)  # the name says nothing: content decides
    assert tfiles.detect(path) == fmt
    for how in ("auto", fmt):
        tf = tfiles.read(path, format=how)
        assert (tf.format, _parts(tf), tf.lines) == (fmt, expected, sum(bool(x) for x in lines))
        assert all(type(s) is float for docs in tf.scores.values() for s in docs.values())


@pytest.mark.parametrize("fmt", list(LAYOUTS))
def test_malformed_middle_line_names_file_line_and_field(tmp_path, fmt):
    lines, _, bad, field = LAYOUTS[fmt]
    path = _write(tmp_path / "file", [x for x in lines if x][:2] + [bad] + lines[-1:])
    with pytest.raises(FormatError) as e:
        tfiles.read(path, format=fmt)
    assert f"{path}:3" in str(e.value) and field in str(e.value)


@pytest.mark.parametrize("fmt,bad,field", [
    ("tsv", "2\t21", "3 tab-separated"),
    ("tsv", "1\t10\t0.7", "duplicate pair ('1', '10')"),
    ("margin_mse", "9.0\t2.0\t1\t10\t11", "'pos_score'"),           # same pair, another score
    ("hard_negatives", '{"qid": 3, "pos": [30], "neg": {"bm25": [31, 1.5]}}', "'neg.bm25'"),
    ("hard_negatives", '{"qid": 3, "pos": [30], "neg": [31]}', "'neg'"),
    ("hard_negatives", '{"qid": 3, "pos": [30], "neg": {"bm25": [31]}', "not valid JSON at column"),
    ("zeng_triples", '{"question": "c", "neg_pids": ["31"]}', "missing field 'pos_pid'"),
    ("zeng_margin", '{"question": "c", "pos_pid": "30", "neg_pids": [], "pos_score": "1", "neg_scores": []}',
     "'pos_score'"),
    ("zeng_scores", '{"query": "c", "docids": ["30", "31"], "scores": [1.0]}', "'docids' and 'scores'"),
    ("tevatron", '{"query_id": "3", "positive_passages": [{"docid": "30", "score": "x"}], '
                 '"negative_passages": []}', "'positive_passages[0].score'"),
    ("tevatron", '{"query_id": "3", "positive_passages": [{"docid": "30"}]}', "missing field 'negative_passages'"),
])
def test_more_malformed_lines(tmp_path, fmt, bad, field):
    lines = [x for x in LAYOUTS[fmt][0] if x]
    path = _write(tmp_path / "file", lines[:2] + [bad])
    with pytest.raises(FormatError) as e:
        tfiles.read(path, format=fmt)
    assert f"{path}:3" in str(e.value) and field in str(e.value)


def test_tevatron_without_scores_has_no_scores(tmp_path):
    path = _write(tmp_path / "t.jsonl", _jsonl({"query_id": "1", "query": "a", "positive_passages": [_tev("10")],
                                                "negative_passages": [_tev("11")]}))
    tf = tfiles.read(path)
    assert (tf.format, _parts(tf)) == ("tevatron", ({}, {"1": ["11"]}, {"1": ["10"]}))


def test_hard_negatives_systems(tmp_path):
    path = _write(tmp_path / "hn.jsonl", LAYOUTS["hard_negatives"][0], gz=True)
    assert tfiles.read(path, systems=["bm25"]).pools == {"1": ["11", "12", "13"], "2": ["23"], "3": ["31"]}
    assert tfiles.read(path, systems=["tasb", "bm25"]).pools["1"] == ["12", "11", "14", "13"]
    assert tfiles.read(path, systems=["tasb"]).pools == {"1": ["12", "14"], "2": ["22"], "3": []}
    with pytest.raises(ValueError, match=r"\['ce'\].*\['bm25', 'tasb'\]"):
        tfiles.read(path, systems=["bm25", "ce"])
    with pytest.raises(ValueError, match="hard_negatives"):
        tfiles.read(_write(tmp_path / "s.tsv", ["1\t2\t3"]), systems=["bm25"])


SCORES = {1: {10: np.float32(0.5), 11: np.float64(-1.25), 12: 2}, 2: {20: 3.0}}
EXPECTED = {"1": {"10": 0.5, "11": -1.25, "12": 2.0}, "2": {"20": 3.0}}


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_pickle_of_numpy_scores_loads(tmp_path, protocol, gz):
    data = pickle.dumps(SCORES, protocol=protocol)
    path = tmp_path / "ce-scores.pkl.gz"
    path.write_bytes(gzip.compress(data) if gz else data)
    for how in ("auto", "pickle"):
        tf = tfiles.read(path, format=how)
        assert (tf.format, _parts(tf), tf.lines) == ("pickle", (EXPECTED, {}, {}), 2)
        assert all(type(s) is float for s in tf.scores["1"].values())


@pytest.mark.parametrize("data,named", [
    ({1: {10: 0.5}, 2: {20: "high"}}, "query 2, document 20"),
    ({1: {10: 0.5}, 2: [20]}, "query 2"),
    ({1: {10: 0.5}, 2.5: {20: 1.0}}, "query 2.5"),
    ([1, 2], "expected a pickled dict"),
])
def test_pickle_of_the_wrong_shape_names_the_key(tmp_path, data, named):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(data, protocol=4))
    with pytest.raises(FormatError, match=named) as e:
        tfiles.read(path)
    assert str(path) in str(e.value)


class _Touch:
    """Unpickling this calls pathlib.Path.touch(sentinel): code a plain pickle.load would run."""

    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return (pathlib.Path.touch, (self.sentinel,))


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_pickle_that_would_run_code_is_refused(tmp_path, gz):
    control = tmp_path / "CONTROL"
    pickle.loads(pickle.dumps(_Touch(control)))
    assert control.exists()  # the payload is live: an unrestricted load runs it

    sentinel = tmp_path / "SENTINEL"
    data = pickle.dumps({1: {10: _Touch(sentinel)}}, protocol=4)
    path = tmp_path / "evil.pkl"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(FormatError, match=r"refused to load global pathlib\.Path\.touch") as e:
        tfiles.read(path)
    assert str(path) in str(e.value)
    assert not sentinel.exists()


def test_detect_names_the_file_of_unknown_content(tmp_path):
    for name, content in [("words.txt", b"hello world\n"), ("keys.jsonl", b'{"a": 1}\n'),
                          ("empty.tsv", b"\n\n"), ("blob.bin", bytes(range(1, 256)) * 4)]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(FormatError) as e:
            tfiles.detect(path)
        assert str(path) in str(e.value)
        with pytest.raises(FormatError):
            tfiles.read(path)


def test_unknown_format_name_and_missing_file(tmp_path):
    path = _write(tmp_path / "s.tsv", ["1\t2\t3"])
    with pytest.raises(ValueError, match="tsv, pickle, hard_negatives, margin_mse, zeng_triples"):
        tfiles.read(path, format="csv")
    with pytest.raises(FileNotFoundError, match="nope"):
        tfiles.read(tmp_path / "nope.tsv")


def test_match_report_counts_unmatched_ids(tmp_path):
    tf = tfiles.read(_write(tmp_path / "m.tsv", ["1\t10\t0.5", "1\t11\t1", "2\t20\t3", "3\t30\t1", "4\t10\t2"]))
    report = tfiles.match_report(tf, qids=[1, "2"], docids={"10", "11"})
    assert report == {"file": str(tf.path), "format": "tsv", "queries": 4, "unmatched_queries": 2,
                      "unmatched_query_examples": ["3", "4"], "docs": 4, "unmatched_docs": 2,
                      "unmatched_doc_examples": ["20", "30"]}
    line = tfiles.describe(report)
    assert line == (f"teacher file {tf.path} (tsv): 4 queries (2 match no training query, e.g. 3, 4), "
                    "4 documents (2 not in the corpus, e.g. 20, 30)")

    hn = tfiles.read(_write(tmp_path / "hn.jsonl", LAYOUTS["hard_negatives"][0]))
    report = tfiles.match_report(hn, qids={"1", "2", "3", "9"})
    assert "docs" not in report and (report["queries"], report["unmatched_queries"]) == (3, 0)
    assert tfiles.describe(report).endswith("3 queries (all are training queries)")
    report = tfiles.match_report(hn, qids=range(10), docids=[str(d) for d in range(10, 40)])
    assert (report["docs"], report["unmatched_docs"]) == (11, 0)
    assert "11 documents (all in the corpus)" in tfiles.describe(report)
    many = tfiles.match_report(hn, qids=[], docids=[])
    assert (many["unmatched_queries"], many["unmatched_query_examples"]) == (3, ["1", "2", "3"])
    assert (many["unmatched_docs"], many["unmatched_doc_examples"]) == (11, ["11", "12", "14"])
