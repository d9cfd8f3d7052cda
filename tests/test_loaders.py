"""Dataset loaders on small fixture files in the real formats: MS MARCO + TREC DL, BEIR zips."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from scaling.config import DataConfig
from scaling.data import beir, corpora, msmarco
from scaling.data.formats import FormatError

MSMARCO = Path(__file__).parent / "fixtures" / "msmarco"


def test_msmarco_and_trec_dl_fixture_parses_with_graded_qrels():
    data = msmarco.load(MSMARCO)
    assert sorted(data.qrels) == ["dev", "dl19", "dl20", "train"]
    assert len(data.corpus) == 7 and data.corpus["5"].startswith("Photosynthesis")
    assert data.qrels["train"] == {"121352": {"1": 1}, "634306": {"3": 1}}
    assert data.qrels["dl19"]["19335"] == {"6": 3, "5": 2, "0": 0}  # grades kept, 0s too
    assert data.split_queries("dl20") == {"1030303": "atomic bomb end of war"}
    assert data.split_queries("dev") == {"1048585": "what is photosynthesis"}


def test_msmarco_through_the_data_config(tmp_path):
    data = corpora.load(DataConfig(name="msmarco", path=str(MSMARCO)), tmp_path, splits=["dl19"])
    assert list(data.qrels) == ["dl19"] and len(data.queries) == 2


def test_msmarco_missing_file_is_named(tmp_path):
    shutil.copytree(MSMARCO, tmp_path / "m")
    (tmp_path / "m" / "2019qrels-pass.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"2019qrels-pass.txt is missing.*trec.nist.gov"):
        msmarco.load(tmp_path / "m", ["dl19"])
    assert "dl19" not in msmarco.load(tmp_path / "m").qrels  # absent splits are skipped by default
    (tmp_path / "m" / "collection.tsv").unlink()
    with pytest.raises(FileNotFoundError, match="collection.tsv is missing"):
        msmarco.load(tmp_path / "m")


@pytest.mark.parametrize("name,text,line,field", [
    ("2020qrels-pass.txt", "1030303 Q0 1 3\n1030303 Q0 2\n", 2, "4 fields"),
    ("2020qrels-pass.txt", "1030303 Q0 1 high\n", 1, "grade"),
    ("msmarco-test2020-queries.tsv", "1030303\tatomic bomb\n999 no tab here\n", 2, "text"),
])
def test_msmarco_malformed_lines_name_file_line_field(tmp_path, name, text, line, field):
    shutil.copytree(MSMARCO, tmp_path / "m")
    (tmp_path / "m" / name).write_text(text)
    with pytest.raises(FormatError, match=rf"{name}:{line}: .*{field}"):
        msmarco.load(tmp_path / "m", ["dl20"])


def test_msmarco_qrels_pointing_nowhere_fail(tmp_path):
    shutil.copytree(MSMARCO, tmp_path / "m")
    (tmp_path / "m" / "qrels.dev.small.tsv").write_text("1048585\t0\t77\t1\n")
    with pytest.raises(FormatError, match="pid '77'.*collection.tsv"):
        msmarco.load(tmp_path / "m", ["dev"])


def _beir_zip(path: Path, name: str = "scifact") -> Path:
    """A zip laid out like the published BEIR ones: <name>/corpus.jsonl, queries.jsonl, qrels/test.tsv."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{name}/corpus.jsonl", "\n".join(json.dumps(d) for d in [
            {"_id": "4983", "title": "Microstructural development", "text": "Alterations of the architecture."},
            {"_id": "5836", "title": "Induction of myelodysplasia", "text": "Myelodysplastic syndromes."}]) + "\n")
        z.writestr(f"{name}/queries.jsonl", json.dumps({"_id": "1", "text": "0-dimensional biomaterials"}) + "\n")
        z.writestr(f"{name}/qrels/test.tsv", "query-id\tcorpus-id\tscore\n1\t4983\t1\n")
    return path


def test_beir_zip_is_extracted_once_and_loaded(tmp_path):
    zpath = _beir_zip(tmp_path / "scifact.zip")
    cfg = DataConfig(name="beir", path=str(zpath))
    data = corpora.load(cfg, tmp_path / "cache")
    assert data.corpus["4983"] == "Microstructural development Alterations of the architecture."
    assert data.qrels == {"test": {"1": {"4983": 1}}}
    root = corpora.dataset_dir(cfg, tmp_path / "cache")
    assert root.parent == tmp_path / "cache" / "data" / "beir" and (root / "corpus.jsonl").exists()
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_beir_by_name_reads_the_cached_zip_and_never_downloads_unasked(tmp_path):
    cfg = DataConfig(name="beir", beir_name="scifact")
    with pytest.raises(FileNotFoundError, match=r"data.download=true.*scifact.zip"):
        corpora.load(cfg, tmp_path)
    _beir_zip((tmp_path / "downloads").mkdir() or tmp_path / "downloads" / "scifact.zip")
    data = corpora.load(cfg, tmp_path)
    assert data.name == "scifact" and set(data.corpus) == {"4983", "5836"}


def test_beir_zip_without_a_corpus_is_rejected(tmp_path):
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as z:
        z.writestr("x/readme.txt", "nothing")
    with pytest.raises(FileNotFoundError, match="no corpus.jsonl"):
        beir.extract(tmp_path / "x.zip", tmp_path / "out")
