"""A run resumes only itself: a folder holding another configuration's unfinished run is refused
before any work, naming the keys, and left as it was; settings that shape nothing may differ;
overwrite=true replaces the run's own entries and nothing else."""

import hashlib
import json
import subprocess
import sys

import pytest

from conftest import ROOT, compose
from scaling import rundir
from scaling.config import parse, to_dict


def snapshot(folder):
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, hashlib.sha1(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def unfinished(tiny_overrides, tmp_path):
    """A dense-cl folder as a killed run leaves it: its configuration, a checkpoint, logs."""
    folder = tmp_path / "r"
    cfg = parse(compose(tiny_overrides + [f"run_dir={folder}"]))
    (folder / "ckpt").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))
    (folder / "ckpt" / "last.ckpt").write_bytes(b"a checkpoint")
    (folder / "notes.txt").write_text("the user's own file")
    return folder


def test_a_rerun_with_another_paradigm_is_refused_before_any_work(unfinished, tiny_overrides, tmp_path):
    before = snapshot(unfinished)
    cmd = [sys.executable, "-X", "importtime", str(ROOT / "recipes" / "run.py"), *tiny_overrides,
           f"run_dir={unfinished}", "paradigm=sparse"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 1
    error = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "unfinished run of another configuration" in error[0]
    assert "paradigm.name: 'dense' -> 'sparse'" in error[0] and "overwrite=true" in error[0]
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert "torch" not in imported and "lightning" not in imported  # nothing heavy ran before the error
    assert snapshot(unfinished) == before


@pytest.mark.parametrize("change,key", [("budget.steps=8", "budget.steps"),
                                        ("data.n_negatives=3", "data.n_negatives"),
                                        ("data.path=/elsewhere", "data.path"),
                                        ("model.lora.r=8", "model.lora.r")])
def test_budget_data_or_model_changes_are_named(unfinished, tiny_overrides, change, key):
    record = to_dict(parse(compose(tiny_overrides + [f"run_dir={unfinished}", change])))
    with pytest.raises(rundir.RunMismatch, match=rf"{key}: "):
        rundir.claim(str(unfinished), "x", record=record)


def test_settings_that_shape_nothing_may_differ_and_overwrite_replaces(unfinished, tiny_overrides):
    free = ["eval.wait_s=10", "logger=csv", "trainer.threads=1", "eval.batch_size=7", "eval.baselines=[bm25]",
            "trainer.checkpoint_every=9", "grid.index=3"]
    record = to_dict(parse(compose(tiny_overrides + [f"run_dir={unfinished}", *free])))
    assert rundir.differing(json.loads((unfinished / "config.json").read_text()), record) == {}
    assert rundir.claim(str(unfinished), "x", record=record) == unfinished

    other = to_dict(parse(compose(tiny_overrides + [f"run_dir={unfinished}", "paradigm=sparse"])))
    assert rundir.prepare(str(unfinished), "x", overwrite=True, record=other) == unfinished
    assert sorted(p.name for p in unfinished.iterdir()) == ["notes.txt"]  # only the run's own entries went
    # the same configuration resumes, even with overwrite=true: only a finished run is replaced
    (unfinished / "config.json").write_text(json.dumps(other))
    (unfinished / "ckpt").mkdir()
    rundir.prepare(str(unfinished), "x", overwrite=True, record=other)
    assert (unfinished / "ckpt").exists()
    (unfinished / "result.json").write_text("{}")
    with pytest.raises(rundir.RunExistsError):
        rundir.claim(str(unfinished), "x", record=other)
    rundir.prepare(str(unfinished), "x", overwrite=True, record=other)
    assert sorted(p.name for p in unfinished.iterdir()) == ["notes.txt"]
