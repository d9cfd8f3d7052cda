"""``eval=beir13``: one checkpoint on Zeng et al.'s 13 public BEIR sets from one local folder, each
set a row of the table, their plain mean one more, a query's own document left out of its ranking,
and a missing set named before anything heavy runs. Thirteen tiny folders (one of them a zip)."""

import json
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import ir_measures
import pytest
import yaml

from conftest import CONF, ROOT, compose, tiny_args
from scaling.config import EvaluateConfig, parse
from tests.test_checks import Tripwire, _fails, tripwires  # noqa: F401 (a fixture)

ZENG13 = ["trec-covid", "nfcorpus", "nq", "hotpotqa", "fiqa", "arguana", "webis-touche2020", "dbpedia-entity",
          "scidocs", "climate-fever", "scifact", "quora", "fever"]
MEASURES = ["nDCG@10", "R@100"]
WORDS = ("alpha beta gamma delta river stone cloud metal glass paper light sound water fire earth wind "
         "tree leaf root seed bird fish wolf bear").split()


def _text(rng, n=8):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _write_set(out, name, seed, titled: bool, self_doc: bool):
    """6 documents and 3 test queries (q<i> judged relevant to d<i>); ``self_doc`` adds a document
    with q0's id and text, as ArguAna and Quora have."""
    rng = random.Random(seed)
    out.mkdir(parents=True)
    docs = [{"_id": f"d{i}", "title": f"{name} title {i}" if titled else "", "text": _text(rng)} for i in range(6)]
    queries = [{"_id": f"q{i}", "text": _text(rng, 5)} for i in range(3)]
    if self_doc:
        docs.append({"_id": "q0", "title": "", "text": queries[0]["text"]})
    (out / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (out / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (out / "qrels").mkdir()
    judged = "".join(f"q{i}\td{i}\t1\n" for i in range(3))
    (out / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + judged)


@pytest.fixture(scope="module")
def beir_root(tmp_path_factory):
    """The 13 sets under one folder, named by their BEIR names: every other one with titles, arguana
    and quora with a document whose id is a query's, quora as a BEIR zip (a folder inside)."""
    root = tmp_path_factory.mktemp("beir13")
    for i, name in enumerate(ZENG13):
        _write_set(root / name, name, i, titled=i % 2 == 0, self_doc=name in ("arguana", "quora"))
    with zipfile.ZipFile(root / "quora.zip", "w") as z:
        for f in sorted((root / "quora").rglob("*")):
            z.write(f, f.relative_to(root))
    shutil.rmtree(root / "quora")
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, beir_root):
    """A 3-step tiny dense run on a 16-document folder of its own ("train"; rows train/test),
    evaluated on the suite after training too (recipes/run.py's path)."""
    from scaling.data import formats
    from scaling.experiment import run
    tmp = tmp_path_factory.mktemp("train")
    rng = random.Random(99)
    docs = [{"_id": f"t{i}", "title": "", "text": _text(rng)} for i in range(16)]
    queries = [{"_id": f"t{i}", "text": _text(rng, 5)} for i in range(12)]
    qrels = {"train": {f"t{i}": {f"t{i}": 1} for i in range(8)}, "test": {f"t{i}": {f"t{i}": 1} for i in range(8, 12)}}
    formats.write_beir(tmp / "train", docs, queries, qrels)
    result = run(parse(compose(tiny_args(tmp / "train", tmp / "cache") + [
        f"run_dir={tmp / 'run'}", "eval=beir13", f"eval.beir_root={beir_root}", "eval.baselines=[]"])))
    return tmp / "train", result["checkpoint"]


def _evaluate(checkpoint, root, out, *more):
    from scaling.experiment import evaluate
    train, ckpt = checkpoint
    return evaluate(parse(compose([f"checkpoint={ckpt}", "data=beir", f"data.path={train}", "eval=beir13",
                                   f"eval.beir_root={root}", "baseline=none", f"run_dir={out}",
                                   f"cache_dir={out.parent / 'cache'}", *more], config_name="evaluate"),
                          EvaluateConfig))


def _plain_mean(result, m):
    return sum(result["metrics"][f"{n}/test"][m] for n in ZENG13) / 13


def _trec(path):
    run = {}
    for line in path.read_text().splitlines():
        qid, _, docid, _, score, _ = line.split()
        run.setdefault(qid, {})[docid] = float(score)
    return run


def test_the_option_lists_zengs_13_sets_at_beirs_settings(beir_root):
    from scaling import checks
    option = yaml.safe_load((CONF / "eval" / "beir13.yaml").read_text())
    assert option["beir_sets"] == ZENG13 and option["measures"] == MEASURES
    assert (option["doc_len"], option["query_len"]) == (512, 64)
    cfg = parse(compose(["checkpoint=/c", "eval=beir13", f"eval.beir_root={beir_root}"], config_name="evaluate"),
                EvaluateConfig)
    listed = checks.zero_shot_configs(cfg.eval)  # as data=beir composes them, each BEIR's way
    assert [key for key, _ in listed] == [f"eval.beir_sets[{i}]" for i in range(13)]
    assert [d.beir_name for _, d in listed] == ZENG13 and all(d.ignore_identical_ids for _, d in listed)
    assert listed[11][1].path == str(beir_root / "quora.zip") and listed[0][1].path == str(beir_root / "trec-covid")
    assert cfg.data.ignore_identical_ids is False  # not on the evaluated data=, whose own rows stay as they were


def test_beir13_prints_13_rows_and_their_plain_mean(checkpoint, beir_root, tmp_path, capsys):
    result = _evaluate(checkpoint, beir_root, tmp_path / "out")
    table = capsys.readouterr().out
    rows = [line.split()[0] for line in table.splitlines() if line.split()[1:2] == ["nDCG@10"]]
    assert rows == ["train/test"] + [f"{n}/test" for n in ZENG13] + ["beir13/mean"]  # the trained data's row stays
    on_disk = json.loads((tmp_path / "out" / "result.json").read_text())
    assert on_disk["beir_mean"] == result["beir_mean"] and on_disk["config"]["eval"]["doc_len"] == 512
    assert on_disk["metrics"]["train/test"]["R@100"] == 1.0  # its queries' own ids are their positives: kept
    trained = json.loads((Path(checkpoint[1]).parent / "result.json").read_text())  # run.py's, after training
    for m in MEASURES:  # the plain mean over exactly the 13 sets (not train/test, not weighted by queries)
        mean = _plain_mean(on_disk, m)
        assert trained["beir_mean"]["metrics"][m] == pytest.approx(_plain_mean(trained, m), abs=1e-12)
        assert on_disk["beir_mean"]["metrics"][m] == pytest.approx(mean, abs=1e-12)
        assert trained["beir_mean"]["metrics"][m] == pytest.approx(mean, abs=1e-6)  # the checkpoint's, reloaded
        printed = next(line for line in table.splitlines() if line.split()[:2] == ["beir13/mean", m])
        assert float(printed.split()[2]) == pytest.approx(mean, abs=5e-5)
    # documents are title + text
    from scaling.config import DataConfig
    from scaling.data import corpora
    loaded = corpora.load(DataConfig(name="beir", path=str(beir_root / "trec-covid")), tmp_path / "c")
    assert loaded.corpus["d0"].startswith("trec-covid title 0 ")


def test_a_querys_own_document_is_left_out_of_its_ranking(checkpoint, beir_root, tmp_path):
    """The same checkpoint on the same set as a plain zero-shot entry ranks q0 (a copy of the query)
    for q0; in the suite, q0's ranking is that one without it, and ir_measures on that agrees."""
    for name, path in (("arguana", beir_root / "arguana"), ("quora", beir_root / "quora.zip")):
        _evaluate(checkpoint, beir_root, tmp_path / "with", f"eval.beir_sets=[{name}]")
        _evaluate(checkpoint, beir_root, tmp_path / "kept", "eval.beir_sets=[]", "eval.beir_root=null",
                  f"eval.zero_shot=[{{name:beir,path:'{path}',beir_name:{name}}}]")
        kept, dropped = (_trec(tmp_path / d / "runs" / f"{name}_test.trec") for d in ("kept", "with"))
        assert "q0" in kept["q0"] and "q0" not in dropped["q0"] and "q0" in dropped["q1"]  # removed only for q0
        assert dropped["q0"] == pytest.approx({d: s for d, s in kept["q0"].items() if d != "q0"})
        qrels = {f"q{i}": {f"d{i}": 1} for i in range(3)}
        expect = ir_measures.calc_aggregate([ir_measures.parse_measure(m) for m in MEASURES], qrels, dropped)
        got = json.loads((tmp_path / "with" / "result.json").read_text())["metrics"][f"{name}/test"]
        for m in MEASURES:
            assert got[m] == pytest.approx(expect[ir_measures.parse_measure(m)], abs=1e-9)
        shutil.rmtree(tmp_path / "with")
        shutil.rmtree(tmp_path / "kept")


def test_a_missing_set_is_named_before_anything_heavy(checkpoint, beir_root, tmp_path, tripwires):
    root = tmp_path / "twelve"
    shutil.copytree(beir_root, root, ignore=shutil.ignore_patterns("fiqa"))
    with pytest.raises(FileNotFoundError, match=rf"eval\.beir_root={root} lacks 1 of the 13 BEIR sets "
                                                r"of eval\.beir_sets: fiqa \(") as e:
        _evaluate(checkpoint, root, tmp_path / "out")
    assert not isinstance(e.value, Tripwire) and tripwires == [] and not (tmp_path / "out").exists()
    for dry in (False, True):  # a training run with the suite, and its dry run, stop the same way
        _fails(tiny_args(checkpoint[0], tmp_path / "c") + ["eval=beir13", f"eval.beir_root={root}"], tmp_path, dry,
               FileNotFoundError, "lacks 1 of the 13 BEIR sets of eval.beir_sets: fiqa")
    assert tripwires == [] and not (tmp_path / "c").exists()
    # through the recipe: one error line, exit status 1, torch never imported, nothing written
    guard = ("import runpy, sys; sys.modules['torch'] = None; sys.argv = ['recipes/evaluate.py'] + sys.argv[1:]; "
             "runpy.run_path('recipes/evaluate.py', run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", guard, f"checkpoint={checkpoint[1]}", "eval=beir13",
                          f"eval.beir_root={root}", f"run_dir={tmp_path / 'out'}", f"cache_dir={tmp_path / 'c'}"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1 and out.stderr.startswith(f"error: eval.beir_root={root} lacks 1 of the 13"), out.stderr
    assert "fiqa" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "c").exists()
