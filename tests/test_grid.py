"""Grids: index <-> point, folder names from the point, the command lines each launcher gets, and
a relaunched grid skipping its finished point."""

import json
import subprocess
import sys

import pytest

from conftest import CONF, ROOT, compose, compose_run
from scaling import grid
from scaling.config import ConfigError, parse

AXES = {"paradigm": ["dense", "sparse"], "loss": ["cl", "kd", "cl+kd"], "budget.flops": ["1e13", "3e13"]}


def test_index_and_point_are_inverse_and_names_are_unique():
    every = grid.points(AXES)
    assert len(every) == 12 and every[0] == {"paradigm": "dense", "loss": "cl", "budget.flops": "1e13"}
    assert every[1]["budget.flops"] == "3e13"  # the last axis varies fastest
    assert [grid.point(AXES, i) for i in range(12)] == every
    assert len({grid.name(p) for p in every}) == 12
    assert grid.name(every[5]) == "dense-cl+kd-flops3e13"
    with pytest.raises(ConfigError, match="grid.index: 12 is outside the grid's 12 points"):
        grid.point(AXES, 12)


def test_command_lines_of_each_launcher(tmp_path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "g.yaml").write_text(
        "# @package _global_\ngrid:\n  name: g\n  axes:\n    paradigm: [dense, sparse]\n    loss: [cl, kd]\n")
    base = ["run.py", "experiment=g"]
    # a Slurm array task or a sweep agent: the overrides of point 3
    assert grid.expand_argv(base + ["grid.index=3"], tmp_path)[-2:] == ["paradigm=sparse", "loss=kd"]
    # Hydra multirun: one sweep per axis, except what the command line fixes
    assert grid.expand_argv(base + ["-m", "loss=kd"], tmp_path)[-1] == "paradigm=dense,sparse"
    assert grid.expand_argv(base + ["paradigm=dense"], tmp_path) == base + ["paradigm=dense"]
    assert grid.expand_argv(["run.py", "-m", "loss=cl,kd"], tmp_path) == ["run.py", "-m", "loss=cl,kd"]


# each CPU grid: (at least this many points, at least this many sizes)
CPU_GRIDS = {"cpu_grid": (24, 4), "cpu_budget": (24, 2), "cpu_data": (6, 1)}


@pytest.mark.parametrize("experiment", sorted(CPU_GRIDS))
def test_cpu_grids_compose_every_point(experiment):
    axes = grid.experiment_axes(experiment)
    every = grid.points(axes)
    n_points, n_sizes = CPU_GRIDS[experiment]
    assert len(every) >= n_points and len(axes["size"]) >= n_sizes
    for p in every:
        cfg = parse(compose([f"experiment={experiment}", *[f"{k}={v}" for k, v in p.items()]]))
        assert cfg.grid.name == experiment and cfg.paradigm.name == p["paradigm"] and cfg.loss.name == p["loss"]
        assert cfg.trainer.global_batch == 8 and cfg.data.n_negatives == 3
        assert cfg.budget.flops == float(p.get("budget.flops", 2.6e13))
        assert cfg.data.fraction == float(p.get("data.fraction", 1.0))
        assert list(cfg.grid.axes) == list(axes)  # the manifest's axes are the composed ones
    assert (CONF / "size" / f"{axes['size'][-1]}.yaml").exists()


def test_a_relaunched_grid_skips_its_finished_point(tiny_overrides, tmp_path):
    cmd = [sys.executable, str(ROOT / "recipes" / "run.py"), *tiny_overrides, "grid.name=g",
           f"grid.root={tmp_path / 'runs'}", "grid.axes={loss:[cl],paradigm:[dense]}", "eval.untrained=false"]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    folder = tmp_path / "runs" / "g" / "cl-dense"
    result = json.loads((folder / "result.json").read_text())
    assert result["grid"] == {"experiment": "g", "name": "cl-dense", "point": {"loss": "cl", "paradigm": "dense"}}
    assert "0 of 1 done" in first.stdout and not (folder / "running.json").exists()
    manifest = json.loads((tmp_path / "runs" / "g" / "grid.json").read_text())
    assert [p["name"] for p in manifest["points"]] == ["cl-dense"]
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "1 of 1 done" in again.stdout and "cl-dense is finished" in again.stdout
    assert "[budget]" not in again.stdout  # no model was built
    assert grid.status(str(tmp_path / "runs"), "g", {"loss": ["cl", "kd"], "paradigm": ["dense"]}) == \
        {"done": ["cl-dense"], "running": [], "interrupted": [], "left": ["kd-dense"]}


def test_a_composed_number_is_named_as_its_axis_spells_it():
    """budget.flops=2.6e+12 composes to the float 2.6e12; the point keeps the axis' spelling, so its
    folder is the one grid.json lists (and a finished point is found)."""
    axes = {"paradigm": ["dense"], "budget.flops": ["2.6e+12", "8.2e+12"]}
    values = {"budget.flops": 2.6e12}
    got = grid.point_of(axes, {"paradigm": "dense"}, values.get)
    assert got == {"paradigm": "dense", "budget.flops": "2.6e+12"} == grid.points(axes)[0]
    assert grid.name(got) == "dense-flops2.6e+12"
    assert grid.point_of(axes, {"paradigm": "dense"}, {"budget.flops": 5e12}.get)["budget.flops"] == "5000000000000.0"


def test_grid_listing_gives_every_point_and_the_array_range(tmp_path, capsys):
    (tmp_path / "cpu_budget" / "dense-cl-smollm2-l1-flops2.6e+12").mkdir(parents=True)
    grid.main(["cpu_budget", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "--array=0-23" and "0 of 24 done" in lines[-2] and "1 interrupted" in lines[-2]
    assert lines[-3].startswith("interrupted points resume") and "--array=0 " in lines[-3]
    assert f"grid.root={tmp_path}" in lines[-3]
    assert lines[0].split() == ["0", "dense-cl-smollm2-l1-flops2.6e+12", "interrupted"]
    assert lines[23].split() == ["23", "sparse-cl+kd-smollm2-l4-flops8.2e+12", "left"]


def test_grid_axes_take_numbers_as_numbers():
    """recipes/conf/experiment/smoke.yaml lists budget.steps: [40, 450] unquoted."""
    axes = grid.experiment_axes("smoke")
    assert axes["budget.steps"] == [40, 450]
    cfg = compose_run(["experiment=smoke", "grid.index=1"])
    assert cfg.budget.steps == 450 and cfg.grid.point == {"paradigm": "dense", "size": "tiny", "budget.steps": "450"}
    assert cfg.run_dir.endswith("smoke/dense-tiny-steps450") and cfg.model.name == "tiny"
    assert grid.expand_argv(["run.py", "experiment=smoke", "-m"])[-1] == "budget.steps=40,450"


def test_a_running_marker_beats_and_a_dead_ones_is_stale(tmp_path):
    import os
    import socket
    import time
    marker = grid.Running(tmp_path, beat_s=0.05)
    first = marker.path.stat().st_mtime_ns
    time.sleep(0.3)
    assert marker.path.stat().st_mtime_ns > first and grid._alive(marker.path)  # the heartbeat touches it
    assert json.loads(marker.path.read_text())["pid"] == os.getpid()
    marker.stop()
    assert not marker.path.exists()

    path = tmp_path / grid.RUNNING
    path.write_text(json.dumps({"host": "node-elsewhere", "pid": 1}))
    assert grid._alive(path)  # another machine's, still beating
    assert not grid._alive(path, now=time.time() + grid.STALE_AFTER_S + 1)  # stopped beating: killed or lost
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout)}))
    assert not grid._alive(path)  # this host's, and its process is gone


def test_grid_cli_help_describes_the_output():
    proc = subprocess.run([sys.executable, "-m", "scaling.grid", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: python -m scaling.grid [-h] EXPERIMENT [GRID_ROOT]")
    assert "interrupted" in proc.stdout and "--array=0-(M-1)" in proc.stdout and proc.stderr == ""


def test_grid_cli_names_the_known_grids_for_an_unknown_experiment(capsys):
    with pytest.raises(SystemExit) as e:
        grid.main(["nope"])
    assert e.value.code == 2
    out = capsys.readouterr()
    assert out.err == "error: unknown experiment 'nope' (known: cpu_budget, cpu_data, cpu_grid, smoke)\n"
    assert out.out == ""
    assert grid.known_experiments() == ["cpu_budget", "cpu_data", "cpu_grid", "smoke"]


def test_grid_cli_refuses_an_experiment_without_axes(tmp_path, capsys):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "flat.yaml").write_text("# @package _global_\nbudget:\n  flops: 1e12\n")
    (tmp_path / "experiment" / "g.yaml").write_text("# @package _global_\ngrid:\n  axes:\n    loss: [cl, kd]\n")
    with pytest.raises(SystemExit) as e:
        grid.main(["flat"], conf_dir=tmp_path)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: experiment 'flat' is not a grid: ") and "flat.yaml has no grid.axes (grids: g)" in err
    with pytest.raises(SystemExit) as e:
        grid.main(["g", "a", "b"], conf_dir=tmp_path)  # argparse: one GRID_ROOT at most
    assert e.value.code == 2 and "unrecognized arguments: b" in capsys.readouterr().err
    grid.main(["g", str(tmp_path / "runs")], conf_dir=tmp_path)
    assert capsys.readouterr().out.splitlines()[-1] == "--array=0-1"
