"""The BEIR loader names the file, line and field of every malformed input."""

import json

import pytest

from scaling.data import formats
from scaling.data.formats import FormatError
from scaling.io import write_json_atomic


def _write(root, corpus=None, queries=None, qrels=None):
    root.mkdir(parents=True, exist_ok=True)
    (root / "qrels").mkdir(exist_ok=True)
    (root / "corpus.jsonl").write_text(corpus if corpus is not None else
                                       '{"_id": "d1", "title": "T", "text": "one"}\n'
                                       '{"_id": "d2", "text": "two"}\n')
    (root / "queries.jsonl").write_text(queries if queries is not None else
                                        '{"_id": "q1", "text": "first"}\n')
    (root / "qrels" / "test.tsv").write_text(qrels if qrels is not None else
                                             "query-id\tcorpus-id\tscore\nq1\td1\t2\n")
    return root


def test_valid_folder_loads(tmp_path):
    data = formats.load_beir(_write(tmp_path / "ok"))
    assert data.corpus == {"d1": "T one", "d2": "two"}
    assert data.qrels == {"test": {"q1": {"d1": 2}}}
    assert data.split_queries("test") == {"q1": "first"}


@pytest.mark.parametrize("corpus,line,field", [
    ('{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": \n', 2, "not valid JSON"),
    ('{"_id": "d1", "text": "a"}\n\n{"text": "b"}\n', 3, "'_id'"),
    ('{"_id": "d1", "text": 5}\n', 1, "'text'"),
    ('{"_id": "d1", "text": "a"}\n{"_id": "d1", "text": "b"}\n', 2, "duplicate"),
    ('["a list"]\n', 1, "JSON object"),
])
def test_malformed_corpus_lines(tmp_path, corpus, line, field):
    root = _write(tmp_path / "bad", corpus=corpus, qrels="")
    with pytest.raises(FormatError) as e:
        formats.load_beir(root)
    assert f"corpus.jsonl:{line}:" in str(e.value) and field in str(e.value)


@pytest.mark.parametrize("qrels,line,field", [
    ("query-id\tcorpus-id\tscore\nq1\td1\n", 2, "3 tab-separated fields"),
    ("q1\td1\thigh\n", 1, "'score'"),
])
def test_malformed_qrels_lines(tmp_path, qrels, line, field):
    root = _write(tmp_path / "bad", qrels=qrels)
    with pytest.raises(FormatError) as e:
        formats.load_beir(root)
    assert f"test.tsv:{line}:" in str(e.value) and field in str(e.value)


def test_qrels_pointing_nowhere_and_missing_files(tmp_path):
    with pytest.raises(FormatError, match="'d9'"):
        formats.load_beir(_write(tmp_path / "a", qrels="q1\td9\t1\n"))
    with pytest.raises(FormatError, match="'q9'"):
        formats.load_beir(_write(tmp_path / "b", qrels="q9\td1\t1\n"))
    root = _write(tmp_path / "c")
    (root / "queries.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="queries.jsonl"):
        formats.load_beir(root)
    with pytest.raises(FileNotFoundError, match="dev.tsv"):
        formats.load_beir(_write(tmp_path / "d"), splits=["dev"])


def test_trec_style_qrels_and_atomic_json(tmp_path):
    data = formats.load_beir(_write(tmp_path / "t", qrels="q1 0 d2 1\n".replace(" ", "\t")))
    assert data.qrels["test"] == {"q1": {"d2": 1}}
    write_json_atomic(tmp_path / "x.json", {"a": 1})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_bad_json_names_file_line_and_column(tmp_path):
    """A malformed JSON line is pointed at to the character: FILE:LINE: not valid JSON at column C."""
    corpus = '{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": "b",, "title": "x"}\n'
    root = _write(tmp_path / "bad", corpus=corpus, qrels="")
    with pytest.raises(FormatError) as e:
        formats.load_beir(root)
    assert str(e.value) == (f"{root / 'corpus.jsonl'}:2: not valid JSON at column 27 "
                            "(Expecting property name enclosed in double quotes)")
    assert corpus.splitlines()[1][26] == ","  # column 27 is the second comma

    groups = tmp_path / "groups.jsonl"
    groups.write_text('{"qid": "q0", "positives": ["d1"], "negatives": []}\n\n'
                      '{"qid": "q1", "positives": ["d1"] "negatives": []}\n')
    with pytest.raises(FormatError) as e:
        formats.read_groups(groups)
    assert str(e.value) == f"{groups}:3: not valid JSON at column 35 (Expecting ',' delimiter)"
