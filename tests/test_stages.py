"""Multi-stage training (model.init_from, scaling/start.py): a second run starts from a first
run's trained weights, on another loss and budget; the result records both stages' budgets."""

import json
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from conftest import ROOT, compose
from scaling.config import ConfigError, parse
from scaling.experiment import run

KEYS = ("nDCG@10", "RR@10", "R@100")


def test_a_second_stage_starts_where_the_first_ended(tiny_overrides, tmp_path):
    first = run(parse(compose(tiny_overrides + [f"run_dir={tmp_path / 'one'}", "eval.untrained=false"])))
    assert first["start"] == {"kind": "packaged", "model": "tiny", "path": None}
    second = run(parse(compose(tiny_overrides + [
        f"run_dir={tmp_path / 'two'}", f"model.init_from={tmp_path / 'one'}", "budget.steps=2",
        "model.lora.dropout=0.0", "trainer.lr=5e-4"])))
    # step 0 of the second stage is the first stage's trained model: the same numbers
    for k in KEYS:
        assert second["baseline_metrics"]["small/test"][k] == pytest.approx(first["metrics"]["small/test"][k], abs=1e-6)
    start = second["start"]
    assert start["kind"] == "checkpoint" and start["path"] == str(tmp_path / "one" / "checkpoint")
    assert start["from"]["kind"] == "packaged" and start["stage"]["steps"] == 3
    assert start["stage"]["flops"] == pytest.approx(first["budget"]["realised"]["flops"])
    assert start["flops_before"] == pytest.approx(first["budget"]["realised"]["flops"])
    # and it trained on: its weights moved from the first stage's
    one = load_file(str(tmp_path / "one" / "checkpoint" / "weights.safetensors"))
    two = load_file(str(tmp_path / "two" / "checkpoint" / "weights.safetensors"))
    assert one.keys() == two.keys() and any(not (one[k] == two[k]).all() for k in one)
    # a third stage counts both before it
    third = run(parse(compose(tiny_overrides + [f"run_dir={tmp_path / 'three'}", f"model.init_from={tmp_path / 'two'}",
                                                "budget.steps=1", "eval.untrained=false"])))
    assert third["start"]["from"]["kind"] == "checkpoint"
    assert third["start"]["flops_before"] == pytest.approx(first["budget"]["realised"]["flops"]
                                                           + second["budget"]["realised"]["flops"])


def test_an_unfinished_or_different_earlier_stage_is_refused_before_any_work(tiny_overrides, tmp_path):
    with pytest.raises(ConfigError, match=r"^model\.init_from: .*nowhere holds no trained weights"):
        run(parse(compose(tiny_overrides + [f"run_dir={tmp_path / 'x'}", f"model.init_from={tmp_path / 'nowhere'}"])))
    assert not (tmp_path / "x").exists()
    # a finished run of another head: refused, naming the keys, through the recipe's dry run too
    (tmp_path / "fake" / "checkpoint").mkdir(parents=True)
    (tmp_path / "fake" / "checkpoint" / "weights.safetensors").write_bytes(b"")
    other = parse(compose(tiny_overrides + ["paradigm=sparse"]))
    from scaling.config import to_dict
    (tmp_path / "fake" / "checkpoint" / "run_config.json").write_text(json.dumps(to_dict(other)))
    out = subprocess.run([sys.executable, str(ROOT / "recipes" / "run.py"), *tiny_overrides,
                          f"model.init_from={tmp_path / 'fake'}", f"run_dir={tmp_path / 'y'}", "dry_run=true"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 1, out.stderr[-2000:]
    assert out.stderr.startswith("error: model.init_from: ") and "another model or head (paradigm.head." in out.stderr
    assert not (tmp_path / "y").exists()


def test_the_log_line_names_the_stage_and_its_budget():
    from scaling import start
    described = {"kind": "checkpoint", "path": "/r/one/checkpoint", "flops_before": 3e12,
                 "stage": {"loss": "cl", "data": "pkgdesc", "flops": 2e12, "steps": 40}}
    assert start.line(described) == ("from /r/one/checkpoint (cl on pkgdesc: 2.000e+12 FLOPs, 40 steps; "
                                     "3.000e+12 FLOPs in all stages before this one; not in this run's budget)")
