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
    # group choices as they are, keys as name and value: a seed axis names its folders seed<N>
    assert grid.name({"seed": "2", "paradigm": "sparse", "size": "tiny", "model.num_layers": "4"}) == \
        "seed2-sparse-tiny-num_layers4"
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
    # Hydra's options after the overrides stay after them: `--cfg job` shows a point's config
    assert grid.expand_argv(base + ["grid.index=3", "--cfg", "job"], tmp_path)[-4:] == \
        ["paradigm=sparse", "loss=kd", "--cfg", "job"]


# each CPU grid: (at least this many points, at least this many sizes)
CPU_GRIDS = {"cpu_grid": (24, 4), "cpu_budget": (24, 2), "cpu_data": (6, 1), "cpu_grid_kd": (30, 5),
             "supervision": (8, 1), "kd_inbatch": (4, 2), "cpu_seeds": (36, 3), "isoflop": (24, 4)}


@pytest.mark.parametrize("experiment", sorted(CPU_GRIDS))
def test_cpu_grids_compose_every_point(experiment):
    axes = grid.experiment_axes(experiment)
    every = grid.points(axes)
    n_points, n_sizes = CPU_GRIDS[experiment]
    assert len(every) >= n_points and len(axes["size"]) >= n_sizes
    for p in every:
        cfg = parse(compose([f"experiment={experiment}", *[f"{k}={v}" for k, v in p.items()]]))
        assert cfg.grid.name == experiment and cfg.paradigm.name == p["paradigm"]
        assert cfg.loss.name == p.get("loss", "cl") and cfg.seed == int(p.get("seed", 0))
        assert cfg.trainer.global_batch == 8 and cfg.data.n_negatives == 3
        assert cfg.budget.flops == float(p.get("budget.flops", 2.6e13))
        assert cfg.data.fraction == float(p.get("data.fraction", 1.0))
        assert list(cfg.grid.axes) == list(axes)  # the manifest's axes are the composed ones
        assert cfg.teacher.name == p.get("teacher", "minilm-ce" if experiment in ("cpu_grid", "cpu_budget", "cpu_data",
                                                                               "supervision") else "ensemble")
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
    assert "budget.steps=40,450" in grid.expand_argv(["run.py", "experiment=smoke", "-m"])


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
    known = ["cpu_budget", "cpu_data", "cpu_grid", "cpu_grid_kd", "cpu_seeds", "cpu_steps", "gtr", "gtr_finetune",
             "gtr_finetune_only", "isoflop", "kd_inbatch", "luo_backbones", "luo_instructions", "luo_long_docs",
             "luo_multitask", "smoke", "supervision", "zeng_grid", "zeng_grid_flops"]
    assert out.err == f"error: unknown experiment 'nope' (known: {', '.join(known)})\n"
    assert out.out == ""
    assert grid.known_experiments() == known


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


SHAPES = """# @package _global_
grid:
  name: shapes
  axes:
    loss: [cl, kd, cl+kd]
    budget.steps: [40, 450]
  brings:
    loss:
      kd: {data.n_negatives: 1, trainer.global_batch: 16}
    budget.steps:
      450: {trainer.lr: 5.0e-4}
budget: {name: steps, flops: null, steps: 40}
trainer:
  global_batch: 8
data:
  n_negatives: 3
"""
"""A grid that gives distillation its own data shape (one sampled negative, a larger batch), and
its long points their own learning rate (an axis whose values are numbers)."""


def experiment_dir(tmp_path, text: str = SHAPES, name: str = "shapes"):
    conf = tmp_path / "conf"
    (conf / "experiment").mkdir(parents=True, exist_ok=True)
    (conf / "experiment" / f"{name}.yaml").write_text(text)
    return conf


def compose_point(args, conf_dir):
    """``compose_run`` with the experiment configs of ``conf_dir`` beside recipes/conf's: the grid's
    expansion, Hydra's composition (its task overrides kept), ``bind_grid``, the typed config."""
    from hydra import compose as hcompose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    from scaling import cli
    cli.register()
    overrides = grid.expand_argv(["run.py", *args], conf_dir)[1:]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        conf = hcompose(config_name="config", overrides=[*overrides, f"hydra.searchpath=[file://{conf_dir}]"],
                        return_hydra_config=True)
        HydraConfig.instance().set_config(conf)
        cli.bind_grid(conf)
        with open_dict(conf):
            del conf["hydra"]
        return parse(OmegaConf.to_container(conf, resolve=True))


def shape(cfg):
    return cfg.data.n_negatives, cfg.trainer.global_batch, cfg.trainer.lr


def test_a_point_brings_its_settings_whichever_launcher_reaches_it(tmp_path):
    conf = experiment_dir(tmp_path)
    axes = grid.experiment_axes("shapes", conf)
    names = [grid.name(p) for p in grid.points(axes)]
    assert names[2:4] == ["kd-steps40", "kd-steps450"]
    got = {}
    for i, n in enumerate(names):  # a Slurm array task or a sweep agent: grid.index=I
        cfg = compose_point(["experiment=shapes", f"grid.index={i}"], conf)
        assert cfg.run_dir.endswith(f"shapes/{n}")  # named by the axes alone
        got[n] = shape(cfg)
    assert got == {"cl-steps40": (3, 8, 1e-3), "cl-steps450": (3, 8, 5e-4),
                   "kd-steps40": (1, 16, 1e-3), "kd-steps450": (1, 16, 5e-4),
                   "cl+kd-steps40": (3, 8, 1e-3), "cl+kd-steps450": (3, 8, 5e-4)}
    assert compose_point(["experiment=shapes", "grid.index=3"], conf).budget.steps == 450
    # the point named by explicit overrides (a W&B agent; a multirun job gets these same overrides)
    cfg = compose_point(["experiment=shapes", "loss=kd", "budget.steps=450"], conf)
    assert cfg.grid.point == {"loss": "kd", "budget.steps": "450"} and shape(cfg) == (1, 16, 5e-4)
    assert cfg.run_dir.endswith("shapes/kd-steps450") and cfg.loss.name == "kd"
    cfg = compose_point(["experiment=shapes", "loss=cl+kd", "budget.steps=40"], conf)
    assert shape(cfg) == (3, 8, 1e-3) and cfg.grid.brings["loss"]["kd"]["data.n_negatives"] == 1
    # a multirun sweeps the axes; each of its jobs is one such explicit launch
    assert grid.expand_argv(["run.py", "-m", "experiment=shapes"], conf)[-2:] == \
        ["loss=cl,kd,cl+kd", "budget.steps=40,450"]


def test_the_command_line_wins_over_what_a_point_brings(tmp_path):
    conf = experiment_dir(tmp_path)
    cfg = compose_point(["experiment=shapes", "grid.index=2", "data.n_negatives=2"], conf)
    assert cfg.loss.name == "kd" and shape(cfg) == (2, 16, 1e-3)  # global_batch still brought
    cfg = compose_point(["experiment=shapes", "loss=kd", "budget.steps=450", "trainer.lr=0.01",
                         "trainer.global_batch=4"], conf)
    assert shape(cfg) == (1, 4, 0.01) and cfg.run_dir.endswith("shapes/kd-steps450")
    # a group choice only picks the group's defaults: the point still brings its keys
    cfg = compose_point(["experiment=shapes", "grid.index=2", "trainer=cpu"], conf)
    assert shape(cfg) == (1, 16, 1e-3)


@pytest.mark.parametrize("brings,message", [
    ("    lossy:\n      kd: {data.n_negatives: 1}\n",
     "grid.brings: axis 'lossy' is not in grid.axes (axes: loss, budget.steps)"),
    ("    loss:\n      kdd: {data.n_negatives: 1}\n",
     "grid.brings: axis 'loss' has no value 'kdd' (its values: cl, kd, cl+kd)"),
    ("    budget.steps:\n      45: {data.n_negatives: 1}\n",
     "grid.brings: axis 'budget.steps' has no value '45' (its values: 40, 450)"),
    ("    loss:\n      kd: {data.n_negs: 1}\n",
     "grid.brings.loss.kd.data.n_negs: unknown key (known: "),
    ("    loss:\n      kd: {datum.n_negatives: 1}\n",
     "grid.brings.loss.kd.datum.n_negatives: datum: unknown key (known: "),
    ("    loss:\n      kd: {data.n_negatives: many}\n",
     "grid.brings.loss.kd.data.n_negatives: expected int, got 'many'"),
    ("    loss:\n      kd: {budget.steps: 10}\n",
     "grid.brings.loss.kd.budget.steps: budget.steps is an axis of the grid: the point sets it"),
    ("    loss:\n      kd: {trainer.lr: 0.1}\n    budget.steps:\n      450: {trainer.lr: 0.2}\n",
     "grid.brings: loss=kd and budget.steps=450 both bring trainer.lr (0.1 vs 0.2) to point kd-steps450"),
])
def test_a_bad_brings_names_what_is_wrong(tmp_path, brings, message):
    text = ("# @package _global_\ngrid:\n  name: bad\n  axes:\n    loss: [cl, kd, cl+kd]\n"
            "    budget.steps: [40, 450]\n  brings:\n" + brings + "budget: {name: steps, flops: null, steps: 40}\n")
    conf = experiment_dir(tmp_path, text, "bad")
    for i in (0, 3):  # every point refuses a misspelt axis or value; a bad key fails where it is brought
        if i == 0 and message.startswith("grid.brings.loss.kd.") and "axis of the grid" not in message:
            continue
        with pytest.raises(ConfigError) as e:
            compose_point(["experiment=bad", f"grid.index={i}"], conf)
        assert str(e.value).startswith(message), str(e.value)
        assert e.value.key.startswith("grid.brings")


JOINT = SHAPES.replace("budget: {name", """    loss,budget.steps:
      "kd,450": {data.query_len: 48}
      "cl+kd, 4.5e2": {data.query_len: 40}
budget: {name""")
"""Settings brought by a combination of two axes' values (a numeric value spelled otherwise too)."""


def test_joined_axes_bring_settings_to_their_combination_only(tmp_path):
    conf = experiment_dir(tmp_path, JOINT, "joint")
    names = [grid.name(p) for p in grid.points(grid.experiment_axes("joint", conf))]
    lens = {n: compose_point(["experiment=joint", f"grid.index={i}"], conf).data.query_len
            for i, n in enumerate(names)}
    default = compose_point(["experiment=joint", "grid.index=0"], conf).data.query_len
    assert lens == {"cl-steps40": default, "cl-steps450": default, "kd-steps40": default,
                    "kd-steps450": 48, "cl+kd-steps40": default, "cl+kd-steps450": 40}
    cfg = compose_point(["experiment=joint", "loss=kd", "budget.steps=450"], conf)
    assert shape(cfg) == (1, 16, 5e-4) and cfg.data.query_len == 48  # single-axis brings still apply


@pytest.mark.parametrize("entry,message", [
    ('    loss,budget.steps:\n      "kd": {data.query_len: 48}\n',
     "grid.brings.loss,budget.steps: 'kd' has 1 values for 2 axes (loss, budget.steps)"),
    ('    loss,seeds:\n      "kd,1": {data.query_len: 48}\n',
     "grid.brings: axis 'seeds' is not in grid.axes"),
    ('    loss,budget.steps:\n      "kd,45": {data.query_len: 48}\n',
     "grid.brings: axis 'budget.steps' has no value '45'"),
    ('    loss,budget.steps:\n      "kd,450": {trainer.global_batch: 4}\n',
     "grid.brings: loss=kd and loss=kd+budget.steps=450 both bring trainer.global_batch (16 vs 4)"),
])
def test_a_bad_joined_brings_names_what_is_wrong(tmp_path, entry, message):
    conf = experiment_dir(tmp_path, SHAPES.replace("budget: {name", entry + "budget: {name"), "bad")
    with pytest.raises(ConfigError) as e:
        compose_point(["experiment=bad", "grid.index=3"], conf)
    assert str(e.value).startswith(message), str(e.value)


def test_the_manifest_lists_what_each_point_brings(tmp_path):
    conf = experiment_dir(tmp_path)
    cfg = compose_point(["experiment=shapes", "grid.index=0"], conf)
    path = grid.write_manifest(str(tmp_path / "runs"), "shapes", cfg.grid.axes, cfg.grid.brings)
    points = {p["name"]: p for p in json.loads(path.read_text())["points"]}
    assert list(points) == ["cl-steps40", "cl-steps450", "kd-steps40", "kd-steps450", "cl+kd-steps40",
                            "cl+kd-steps450"]
    assert points["kd-steps450"]["brings"] == {"data.n_negatives": 1, "trainer.global_batch": 16, "trainer.lr": 5e-4}
    assert points["kd-steps40"]["brings"] == {"data.n_negatives": 1, "trainer.global_batch": 16}
    assert points["cl-steps450"]["brings"] == {"trainer.lr": 5e-4}
    assert points["cl-steps40"]["brings"] == {} == points["cl+kd-steps40"]["brings"]
    assert points["kd-steps40"]["point"] == {"loss": "kd", "budget.steps": "40"} and points["kd-steps40"]["index"] == 2
    # a grid without brings: every point brings nothing
    plain = grid.write_manifest(str(tmp_path / "runs"), "plain", {"loss": ["cl", "kd"]})
    assert [p["brings"] for p in json.loads(plain.read_text())["points"]] == [{}, {}]


def test_a_multirun_gives_each_point_its_own_data_shape(tiny_overrides, teacher_file, tmp_path):
    """``run.py -m``: every job of the sweep binds its point and what it brings; the plans show the
    kd point's batch of 16 and group of 2 and the queries each point sees."""
    conf = experiment_dir(tmp_path)
    cmd = [sys.executable, str(ROOT / "recipes" / "run.py"), "-m", "experiment=shapes",
           f"hydra.searchpath=[file://{conf}]", "loss=cl,kd",
           *[o for o in tiny_overrides if o != "trainer.global_batch=null"], "budget.steps=40",  # the experiment's batch
           f"data.teacher_scores={teacher_file}", "dry_run=true", "hydra.sweep.dir=sweep"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    plans = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [(p["global_batch"], p["group_size"], p["max_steps"], p["queries_seen"]) for p in plans] == \
        [(8, 4, 40, 320), (16, 2, 40, 640)]
    budget_lines = [line for line in proc.stdout.splitlines() if line.startswith("[budget]")]
    assert ", 320 queries seen | 8 queries (1 devices x 2 x 4) x (1 + 3 docs)" in budget_lines[0]
    assert ", 640 queries seen | 16 queries (1 devices x 4 x 4) x (1 + 1 docs)" in budget_lines[1]


def test_an_experiment_inherits_the_axes_of_the_experiment_it_extends(tmp_path):
    """As Hydra merges them: the base's axes first, the file's own replace or follow them."""
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "base.yaml").write_text("grid:\n  axes:\n    paradigm: [dense, sparse]\n    loss: [cl, kd]\n")
    (tmp_path / "experiment" / "child.yaml").write_text(
        "defaults:\n  - base\n  - override /teacher: bm25\ngrid:\n  axes:\n    loss: [kd]\n    teacher: [bm25, minilm]\n")
    assert grid.experiment_axes("child", tmp_path) == {"paradigm": ["dense", "sparse"], "loss": ["kd"],
                                                       "teacher": ["bm25", "minilm"]}
    assert grid.expand_argv(["run.py", "-m", "experiment=child"], tmp_path)[3:] == [
        "paradigm=dense,sparse", "loss=kd", "teacher=bm25,minilm"]


def test_the_slurm_progress_counts_the_points_the_command_line_launches(tmp_path):
    """A task launched for one point, with a value the grid does not list (``budget.steps=999``),
    is that point in the launcher's progress line, not a grid of four it is no part of."""
    from scaling.slurm_progress import launched
    axes = grid.experiment_axes("smoke")
    argv = grid.expand_argv(["-m", "experiment=smoke", "grid.index=1", "budget.steps=999"])
    got = launched(axes, [a for a in argv if "=" in a])
    assert got == {"paradigm": ["dense"], "size": ["tiny"], "budget.steps": ["999"]}
    assert launched(axes, ["experiment=smoke", "size=tiny,l1"])["size"] == ["tiny", "l1"]
    assert launched(axes, ["experiment=smoke"]) == axes  # a whole grid is counted whole
    folder = grid.run_dir(str(tmp_path), "smoke", grid.points(got)[0])
    folder.mkdir(parents=True)
    (folder / "result.json").write_text("{}")
    assert grid.status(str(tmp_path), "smoke", got)["done"] == ["dense-tiny-steps999"]
    assert grid.status(str(tmp_path), "smoke", axes)["done"] == []


def test_points_that_differ_only_in_evaluation_train_once(tiny_overrides, tmp_path):
    """Luo et al.'s long documents: one model evaluated at several document lengths. The second
    point starts from the first's end of training (bitwise the same weights, the same realised
    budget, no step of its own); a point of another seed trains itself. Hardest: a point killed
    right after it was given its state, whose first-sorted twin was itself given one, resumes from
    that state and names the point that trained."""
    from conftest import assert_same_weights
    base = [sys.executable, str(ROOT / "recipes" / "run.py"), *tiny_overrides, "grid.name=g",
            f"grid.root={tmp_path / 'runs'}", "grid.axes={seed:[0,1],eval.doc_len:[64,128,32]}", "eval.untrained=false"]

    def run(seed, length):
        return subprocess.run([*base, f"seed={seed}", f"eval.doc_len={length}"], capture_output=True, text=True,
                              cwd=tmp_path)
    procs = [run(0, 64), run(0, 128), run(1, 64)]
    for p in procs:
        assert p.returncode == 0, p.stderr[-2000:]
    g = tmp_path / "runs" / "g"
    folders = [g / n for n in ("seed0-doc_len64", "seed0-doc_len128", "seed1-doc_len64")]
    results = [json.loads((f / "result.json").read_text()) for f in folders]
    assert [r["trained_in"] for r in results] == [None, "seed0-doc_len64", None]
    assert "trains as seed0-doc_len64 did" in procs[1].stdout and "trains as" not in procs[2].stdout
    assert_same_weights(folders[0], folders[1])
    assert results[1]["budget"]["realised"] == results[0]["budget"]["realised"]
    assert results[0]["config"]["eval"]["doc_len"] == 64 and results[1]["config"]["eval"]["doc_len"] == 128
    assert "Epoch 0" in procs[0].stdout and "Epoch 0" not in procs[1].stdout  # no step of its own
    assert json.loads((folders[1] / "ckpt" / "trained_in.json").read_text()) == {"trained_in": "seed0-doc_len64"}
    # the twin's file is shared, never rewritten: a later save replaces the name in the new folder only
    assert (folders[0] / "ckpt" / "last.ckpt").stat().st_mtime_ns <= (folders[1] / "result.json").stat().st_mtime_ns

    # seed0-doc_len32: given its state (its first-sorted twin, doc_len128, was itself given one),
    # then killed before training began; the relaunch resumes from it and names doc_len64
    last = g / "seed0-doc_len32"
    record = json.loads((folders[0] / "config.json").read_text())
    record["eval"]["doc_len"], record["grid"]["point"]["eval.doc_len"] = 32, "32"
    assert grid.trained_twin(last, record) == folders[1]
    assert grid.share_training(last, record) == "seed0-doc_len64"
    assert (last / "ckpt" / "last.ckpt").stat().st_ino == (folders[1] / "ckpt" / "last.ckpt").stat().st_ino  # linked
    again = run(0, 32)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming from" in again.stdout and "Epoch 0" not in again.stdout and "trains as" not in again.stdout
    assert json.loads((last / "result.json").read_text())["trained_in"] == "seed0-doc_len64"
    assert_same_weights(folders[0], last)


def test_a_twin_differs_only_in_how_it_is_evaluated(tmp_path):
    """What counts as the same training: eval.* (but the learning curve) and the point's name."""
    twin = tmp_path / "g" / "a"
    (twin / "ckpt").mkdir(parents=True)
    import torch
    torch.save({"global_step": 3}, twin / "ckpt" / "last.ckpt")  # a whole checkpoint archive
    (twin / "result.json").write_text("{}")
    cfg = {"seed": 0, "eval": {"doc_len": 32, "every_n_steps": None}, "grid": {"point": {"eval.doc_len": "32"}}}
    (twin / "config.json").write_text(json.dumps(cfg))
    me = tmp_path / "g" / "b"
    same = {"seed": 0, "eval": {"doc_len": 64, "every_n_steps": None}, "grid": {"point": {"eval.doc_len": "64"}}}
    assert grid.trained_twin(me, same) == twin
    assert grid.trained_twin(me, {**same, "seed": 1}) is None
    assert grid.trained_twin(me, {**same, "eval": {"doc_len": 64, "every_n_steps": 2}}) is None
    whole = (twin / "ckpt" / "last.ckpt").read_bytes()
    (twin / "ckpt" / "last.ckpt").write_bytes(whole[:len(whole) // 2])  # a truncated checkpoint is no state
    assert grid.trained_twin(me, same) is None
    (twin / "ckpt" / "last.ckpt").write_bytes(whole)
    (twin / "result.json").unlink()  # an unfinished point shares nothing
    assert grid.trained_twin(me, same) is None
