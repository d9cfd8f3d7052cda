"""The built-in corpus: deterministic, docstrings removed, splits by hash, atomic layout."""

import filecmp
import json
import textwrap

from scaling.data import builtin, formats


def test_build_is_deterministic(tmp_path, pycode_dir):
    again = builtin.build(tmp_path / "again", quiet=True)
    for name in ["corpus.jsonl", "queries.jsonl", "qrels/train.tsv", "qrels/dev.tsv", "qrels/test.tsv"]:
        assert filecmp.cmp(pycode_dir / name, again / name, shallow=False), name


def test_counts_splits_and_contents(pycode_dir):
    data = formats.load_beir(pycode_dir)
    n = sum(len(q) for q in data.qrels.values())
    assert len(data.corpus) > 2000 and n == len(data.queries)
    fractions = {s: len(q) / n for s, q in data.qrels.items()}
    assert 0.62 < fractions["train"] < 0.78 and 0.05 < fractions["dev"] < 0.15
    assert 0.14 < fractions["test"] < 0.26
    for split, table in data.qrels.items():
        for qid, docs in table.items():
            assert docs == {qid: 1} and builtin.split_of(qid) == split
    text = data.corpus["json.dumps"]
    assert text.startswith("def dumps(") and '"""' not in text
    assert data.queries["json.dumps"].startswith("Serialize ``obj`` to a JSON formatted ``str``")


def test_extract_on_a_handmade_library(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text(textwrap.dedent('''
        def add(a, b):
            """Add two numbers and return the sum.

            More text that is not the query.
            """
            return a + b

        def _private(x):
            """This one is private so it is skipped."""
            return x

        def short():
            """Too short."""
            return 1

        class Box:
            @staticmethod
            def open(lid):
                """Open the box by lifting its lid."""
                lid.lift()

            def empty(self):
                """Only a docstring and no code at all."""
    '''))
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "t.py").write_text('def f():\n    """Tests are not library code."""\n    pass\n')
    docs, queries, splits = builtin.extract(tmp_path)
    assert [d["_id"] for d in docs] == ["pkg.mod.add", "pkg.mod.Box.open"]
    assert queries[0]["text"] == "Add two numbers and return the sum."
    assert docs[0]["text"] == "def add(a, b):\n    return a + b"
    assert docs[1]["text"].startswith("@staticmethod\ndef open(lid):")
    assert sorted(q for s in splits.values() for q in s) == ["pkg.mod.Box.open", "pkg.mod.add"]


def test_duplicate_query_texts_are_dropped(tmp_path):
    src = 'def a():\n    """Return the same words here."""\n    return 1\n'
    (tmp_path / "m1.py").write_text(src)
    (tmp_path / "m2.py").write_text(src)
    docs, queries, _ = builtin.extract(tmp_path)
    assert len(docs) == 2 and queries == []


def test_incomplete_folder_is_rebuilt(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "corpus.jsonl").write_text("garbage\n")
    root = tmp_path / "lib"
    root.mkdir()
    (root / "m.py").write_text('def a():\n    """Return one as an int."""\n    return 1\n')
    builtin.build(out, root=root, quiet=True)
    assert json.loads((out / "corpus.jsonl").read_text())["_id"] == "m.a"
    assert (out / formats.COMPLETE_MARKER).exists()


def test_pyclass_makes_whole_classes_the_documents(tmp_path):
    (tmp_path / "mod.py").write_text(textwrap.dedent('''
        class Stack:
            """A last-in first-out container of items.

            Not part of the query.
            """
            def push(self, item):
                """Put an item on top."""
                self.items.append(item)

            def pop(self):
                return self.items.pop()

        class Empty:
            """A class with no method at all here."""
            x = 1

        class _Hidden:
            """A private class that is skipped."""
            def f(self):
                return 1
    '''))
    docs, queries, splits = builtin.extract(tmp_path, "pyclass")
    assert [d["_id"] for d in docs] == ["mod.Stack"] == [q["_id"] for q in queries]
    assert queries[0]["text"] == "A last-in first-out container of items."
    text = docs[0]["text"]
    assert text.startswith("class Stack:\n    def push(self, item):") and "last-in" not in text
    assert '"""Put an item on top."""' in text and text.endswith("return self.items.pop()")


def test_pyclass_is_a_built_in_corpus_of_long_documents(tmp_path):
    from scaling.config import DataConfig
    from scaling.data import corpora
    data = corpora.load(DataConfig(name="pyclass"), tmp_path)
    assert data.name == "pyclass" and 500 < len(data.corpus) < 1000
    assert len(list((tmp_path / "data").glob("pyclass-py*"))) == 1
    words = sorted(len(t.split()) for t in data.corpus.values())
    assert words[len(words) // 2] > 100 and words[-1] > 4000  # long: a median class is a page, the longest many
    assert set(data.qrels) == {"train", "dev", "test"}
