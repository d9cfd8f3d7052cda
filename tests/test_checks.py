"""Every check before any work (scaling/checks.py): a run that would fail fails before a run
folder, a model, a corpus or a reference system is touched, and ``dry_run=true`` fails with the
same error, so a dry run approves only what would run.

Each case runs twice, as the real run and as the dry run, with the backbone loader, the corpus
loader and the reference systems replaced by tripwires: the test fails if any of them is called.
"""

import subprocess
import sys

import pytest

from conftest import ROOT, compose
from scaling.config import parse
from scaling.data.formats import FormatError
from scaling.schema import ConfigError


class Tripwire(AssertionError):
    pass


@pytest.fixture
def tripwires(monkeypatch):
    """Make every piece of heavy work raise: loading a backbone (training, the untrained model,
    the references), loading a corpus, evaluating a reference system."""
    from scaling import backbone
    from scaling.data import corpora
    from scaling.evaluation import systems
    calls = []

    def wire(name):
        def fire(*args, **kwargs):
            calls.append(name)
            raise Tripwire(f"{name} was called before the checks failed")
        return fire
    monkeypatch.setattr(backbone, "load_backbone", wire("backbone.load_backbone"))
    monkeypatch.setattr(backbone, "_load_model", wire("backbone._load_model"))
    monkeypatch.setattr(corpora, "load", wire("corpora.load"))
    monkeypatch.setattr(systems, "references", wire("systems.references"))
    return calls


def _fails(args, tmp_path, dry: bool, error, match: str):
    """Run ``args`` (really or as a dry run); it must raise ``error`` matching ``match`` with no
    tripwire fired and no run folder created."""
    from scaling.experiment import run
    run_dir = tmp_path / "run"
    cfg = parse(compose([*args, f"run_dir={run_dir}", f"dry_run={str(dry).lower()}"]))
    with pytest.raises(error, match=match) as e:
        run(cfg)
    assert not isinstance(e.value, Tripwire), e.value
    assert not run_dir.exists(), f"{run_dir} was created before the error"
    return str(e.value)


BOTH = pytest.mark.parametrize("dry", [False, True], ids=["run", "dry_run"])


@BOTH
def test_a_distilling_loss_without_negatives(tmp_path, tripwires, dry):
    """cl+kd on 8b without sampled negatives (the README's example once ran so by default)."""
    _fails(["paradigm=sparse", "loss=cl+kd", "size=8b", "budget.flops=1e19", "data.n_negatives=0"], tmp_path, dry, ConfigError,
           r"^data\.n_negatives: loss term 'kl' compares each query's candidates")
    assert tripwires == []


@BOTH
@pytest.mark.parametrize("args,match", [
    (["size=8b"], r"^budget\.flops: 2\.600e\+13 FLOPs buys no step: one step costs 9\.423e\+13"),  # the default budget
    (["size=tiny", "budget.flops=10"], r"^budget\.flops: 1\.000e\+01 FLOPs buys no step"),
    (["size=tiny", "budget=tokens", "budget.tokens=100"], r"^budget\.tokens: 1\.000e\+02 tokens buys no step"),
])
def test_a_budget_that_buys_no_step(tmp_path, tripwires, dry, args, match):
    _fails(args, tmp_path, dry, ConfigError, match)
    assert tripwires == []


@BOTH
def test_more_layers_than_the_backbone_has(tmp_path, tripwires, dry):
    """Once silently clamped: `-m model.num_layers=2,4` on the 2-layer tiny model trained two equal runs."""
    _fails(["size=tiny", "model.num_layers=4"], tmp_path, dry, ConfigError,
           r"^model\.num_layers: 4 is more than the 2 layers of size=tiny")


def test_a_cut_beyond_the_depth_is_refused_where_layers_are_cut():
    import torch.nn as nn

    from scaling import sizes
    from scaling.backbone import cut_layers
    body = nn.Module()
    body.layers = nn.ModuleList([nn.Linear(1, 1), nn.Linear(1, 1)])
    with pytest.raises(ValueError, match="only 2 layers"):
        cut_layers(body, 3)
    with pytest.raises(ValueError, match="tiny has 2 layers, not 4"):
        sizes.arch_for("tiny", 4)


@BOTH
def test_a_missing_dataset_folder_is_named(tmp_path, tripwires, dry):
    """data=msmarco trains on BM25 negatives: the missing folder is the cause, not the missing groups."""
    message = _fails(["size=tiny", "data=msmarco", "data.path=/nonexistent"], tmp_path, dry, FileNotFoundError,
                     r"^data\.path=/nonexistent does not exist \(data=msmarco reads a folder with collection\.tsv")
    assert "groups" not in message


@BOTH
def test_missing_split_files_are_named_with_the_splits_there(tmp_path, small_beir, tripwires, dry):
    _fails(["size=tiny", "data=beir", f"data.path={small_beir}", "data.eval_splits=[dev]",
            f"cache_dir={tmp_path / 'c'}"], tmp_path, dry, ConfigError,
           r"^data\.eval_splits: split 'dev' needs .*qrels/dev\.tsv, which is missing \(the dataset has test, train\)")
    no_corpus = tmp_path / "beir"
    (no_corpus / "qrels").mkdir(parents=True)
    _fails(["size=tiny", "data=beir", f"data.path={no_corpus}", f"cache_dir={tmp_path / 'c'}"], tmp_path, dry,
           FileNotFoundError, r"beir/corpus\.jsonl is missing \(data=beir reads a folder with corpus\.jsonl")


def _teacher_args(path, small_beir, tmp_path):
    return ["size=tiny", "loss=kd", "data.n_negatives=3", "data=beir", f"data.path={small_beir}",
            f"data.teacher_scores={path}", f"cache_dir={tmp_path / 'c'}"]


@BOTH
def test_a_malformed_teacher_file_fails_first(tmp_path, small_beir, teacher_file, tripwires, dry):
    lines = teacher_file.read_text().splitlines()
    lines[9] = lines[9].rsplit("\t", 1)[0] + "\tnan-ish"
    bad = tmp_path / "teacher_nan.tsv"
    bad.write_text("\n".join(lines) + "\n")
    _fails(_teacher_args(bad, small_beir, tmp_path), tmp_path, dry, FormatError,
           r"teacher_nan\.tsv:10: field 'score' must be a number, got 'nan-ish'")
    assert tripwires == []


@BOTH
def test_teacher_scores_that_miss_groups_fail_first(tmp_path, small_beir, teacher_file, tripwires, dry):
    """The coverage is counted against the training split's qrels alone, before any corpus loads."""
    lines = teacher_file.read_text().splitlines()
    victims = sorted({line.split("\t")[0] for line in lines})[:10]
    short = tmp_path / "teacher_short.tsv"
    short.write_text("\n".join(x for x in lines if x.split("\t")[0] not in victims) + "\n")
    _fails(_teacher_args(short, small_beir, tmp_path), tmp_path, dry, FormatError,
           r"teacher_short\.tsv: 10 of 60 training groups lack teacher scores.*data\.missing_teacher=drop")
    # too few scored candidates for the negatives asked for: the same check, the same moment
    _fails(_teacher_args(teacher_file, small_beir, tmp_path)[:2] + ["data.n_negatives=6"]
           + _teacher_args(teacher_file, small_beir, tmp_path)[3:], tmp_path, dry, FormatError,
           r"60 of 60 training groups lack teacher scores.*5 scored negatives < 6")


def test_a_dry_run_that_passes_reports_what_it_read(tmp_path, small_beir, teacher_file, tripwires, capsys):
    from scaling.experiment import run
    cfg = parse(compose(_teacher_args(teacher_file, small_beir, tmp_path) + ["dry_run=true"]))
    plan = run(cfg)
    out = capsys.readouterr().out
    assert plan["max_steps"] >= 1 and f"teacher scores: {teacher_file} (360 pairs, 60 queries)" in out
    assert tripwires == [] and not (tmp_path / "c").exists()  # nothing built, nothing written


def test_a_dry_run_before_the_corpus_is_built_says_what_it_left_unchecked(tmp_path, teacher_file, tripwires,
                                                                         capsys):
    from scaling.experiment import run
    cfg = parse(compose(["size=tiny", "loss=kd", "data.n_negatives=3", f"data.teacher_scores={teacher_file}",
                         f"cache_dir={tmp_path / 'c'}", "dry_run=true"]))
    run(cfg)
    out = capsys.readouterr().out
    assert "not checked: the pycode dataset's files (not built yet)" in out
    assert "not checked: how many training queries the teacher scores" in out
    assert not (tmp_path / "c").exists()


def test_a_tied_lm_head_adds_no_parameters():
    """1B ties its LM head to the embedding: the whole model is the body (8B's untied head is
    checked through the recipe in tests/test_budget.py)."""
    from scaling import checks
    one = checks.run_inputs(parse(compose(["size=1b", "budget.flops=1e19"])), build=False).plan
    assert one.params_lm_head == 0 and one.params_total == one.params_without_lm_head == 1_235_814_400


def test_a_failing_dry_run_exits_non_zero_through_the_recipe(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "recipes" / "run.py"), "paradigm=sparse", "loss=cl+kd",
                          "size=8b", "data.n_negatives=0", "dry_run=true", f"cache_dir={tmp_path / 'cache'}"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 1 and out.stderr.startswith("error: data.n_negatives: loss term 'kl'")
    assert "Traceback" not in out.stderr and list(tmp_path.iterdir()) == []


def test_evaluate_names_a_run_folder_given_as_a_checkpoint(tmp_path, tripwires):
    from scaling.config import EvaluateConfig
    from scaling.experiment import evaluate
    run_dir = tmp_path / "runs" / "x"
    (run_dir / "checkpoint").mkdir(parents=True)
    (run_dir / "checkpoint" / "run_config.json").write_text("{}")
    cfg = parse(compose([f"checkpoint={run_dir}", f"run_dir={tmp_path / 'out'}"], config_name="evaluate"),
                EvaluateConfig)
    with pytest.raises(FileNotFoundError, match=r"is a run folder: give checkpoint=.*runs/x/checkpoint"):
        evaluate(cfg)
    assert tripwires == [] and not (tmp_path / "out").exists()
