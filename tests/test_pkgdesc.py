"""The second built-in corpus (scaling/data/pkgdesc.py): parsed from a status file written here,
built atomically and deterministically, read through data=pkgdesc like any dataset."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, compose
from scaling.config import parse as parse_config
from scaling.data import corpora, formats, pkgdesc

LONG = "a long description with enough words to be a document here"
STATUS = f"""Package: zeta
Status: install ok installed
Architecture: amd64
Description: the last tool in the alphabet
 Zeta does {LONG}.
 .
 Second paragraph of zeta,
   continued with odd   spacing.
Homepage: https://example.org

Package: alpha
Description: first tool
 Alpha does {LONG}.

Package: alpha
Architecture: i386
Description: first tool for another architecture
 Alpha again, {LONG}, listed twice.

Package: nodesc
Version: 1.0

Package: short
Description: a package with a short long part
 Too short here.

Package: transitional-a
Description: dummy transitional package A
 This is a transitional package. It can safely be removed after the upgrade is done.

Package: transitional-b
Description: dummy transitional package B
 This is a transitional package. It can safely be removed after the upgrade is done.

Package: twin-1
Description: Same Synopsis
 Twin one has {LONG}.

Package: twin-2
Description: same synopsis
 Twin two has {LONG}.
"""


def test_parse_reads_synopsis_and_paragraphs_and_the_first_of_a_name():
    rows = {name: (syn, long) for name, syn, long in pkgdesc.parse(STATUS)}
    assert "nodesc" not in rows and len([n for n, *_ in pkgdesc.parse(STATUS) if n == "alpha"]) == 1
    assert rows["alpha"] == ("first tool", f"Alpha does {LONG}.")
    assert rows["zeta"] == ("the last tool in the alphabet",
                            f"Zeta does {LONG}.\n\nSecond paragraph of zeta, continued with odd spacing.")


def test_extract_drops_short_shared_and_ambiguous_entries(tmp_path):
    source = tmp_path / "status"
    source.write_text(STATUS)
    docs, queries, splits = pkgdesc.extract(source)
    # sorted by name; transitional-b shares transitional-a's text; the twins' synopses differ only in case
    assert [d["_id"] for d in docs] == ["alpha", "transitional-a", "twin-1", "twin-2", "zeta"]
    assert [q["_id"] for q in queries] == ["alpha", "transitional-a", "zeta"]
    assert sorted(sum(splits.values(), [])) == ["alpha", "transitional-a", "zeta"]


def test_build_is_atomic_keyed_by_content_and_deterministic(tmp_path):
    source = tmp_path / "status"
    source.write_text(STATUS)
    folder = pkgdesc.default_dir(tmp_path / "cache", source)
    assert folder.name.startswith("pkgdesc-") and folder.parent == tmp_path / "cache" / "data"
    built = pkgdesc.build(folder, source, quiet=True)
    again = pkgdesc.build(tmp_path / "again", source, quiet=True)
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/train.tsv", "qrels/test.tsv"):
        assert filecmp.cmp(built / name, again / name, shallow=False), name
    data = formats.load_beir(built)
    assert data.queries["zeta"] == "the last tool in the alphabet" and "twin-2" in data.corpus
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]      # no temporary left
    source.write_text(STATUS + "\nPackage: more\nDescription: one more tool\n More of " + LONG + ".\n")
    assert pkgdesc.default_dir(tmp_path / "cache", source) != folder   # a new database, a new folder


def test_a_missing_database_is_named_and_nothing_is_built(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"/no/status does not exist: data=pkgdesc reads dpkg's status"):
        pkgdesc.build(tmp_path / "out", Path("/no/status"))
    assert not (tmp_path / "out").exists()
    empty = tmp_path / "empty"
    empty.write_text("Package: x\n")
    with pytest.raises(ValueError, match="nothing to build data=pkgdesc from"):
        pkgdesc.build(tmp_path / "out", empty)
    assert list(tmp_path.iterdir()) == [empty]


def test_data_pkgdesc_reads_data_path_through_the_dataset_loader(tmp_path):
    source = tmp_path / "status"
    source.write_text(STATUS)
    cfg = parse_config(compose([f"data=pkgdesc", f"data.path={source}", f"cache_dir={tmp_path / 'cache'}"]))
    assert cfg.data.name == "pkgdesc" and cfg.data.doc_len == 128
    assert corpora.dataset_dir(cfg.data, cfg.cache_dir, build=False) is None
    data = corpora.load(cfg.data, cfg.cache_dir)
    assert set(data.corpus) == {"alpha", "transitional-a", "twin-1", "twin-2", "zeta"}


def test_a_run_on_a_missing_database_fails_before_any_work(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "recipes" / "run.py"), "data=pkgdesc", "data.path=/no/status",
                          "size=tiny", "dry_run=true", f"cache_dir={tmp_path / 'cache'}"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 1 and out.stderr.startswith("error: /no/status does not exist: data=pkgdesc reads")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not pkgdesc.SOURCE.is_file(), reason="no dpkg database on this machine")
def test_this_machine_s_database_gives_hundreds_of_queries(tmp_path):
    docs, queries, splits = pkgdesc.extract()
    assert len(queries) >= 200 and len(splits["test"]) >= 40
    ids = {d["_id"] for d in docs}
    assert all(q["_id"] in ids for q in queries)
    assert all(len(d["text"].split()) >= pkgdesc.MIN_DOC_WORDS for d in docs)
