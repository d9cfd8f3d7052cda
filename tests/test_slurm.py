"""Slurm without a cluster: stub sbatch/srun/sacct/scontrol executables on PATH capture what the
array templates and hydra-submitit-launcher submit, exactly (what a single node cannot vary: the
directives, the arguments, the array script). tests/test_slurm_cluster.py runs the same paths
through a real Slurm."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, compose, compose_run
from scaling import grid, launch
from scaling.config import EvaluateConfig, PrepareConfig, parse

SLURM = ROOT / "recipes" / "slurm"
GOLDEN = ROOT / "tests" / "fixtures" / "slurm" / "submitit_array.sh"


def stubs(folder: Path) -> Path:
    """sbatch (keeps the script, answers with job 4321), srun (records its argv, one per line),
    sacct (no news) and scontrol (records its argv) in folder/bin."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    scripts = {
        "sbatch": f'for a in "$@"; do last="$a"; done\ncp "$last" {folder}/submitted.sh\n'
                  'echo "Submitted batch job 4321"',
        "srun": f'printf "%s\\n" "$@" > {folder}/srun.args',
        "sacct": "exit 0",
        "scontrol": f'echo "$@" >> {folder}/scontrol.log',
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body + "\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir


def directives(script: Path) -> dict[str, str]:
    return dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(\S+))?", script.read_text(), re.M))


def run_template(template: str, tmp_path: Path, task: int, env_extra: dict, *args) -> list[str]:
    """Run a template as Slurm would start array task ``task``; returns the argv given to srun."""
    bin_dir = stubs(tmp_path)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_SUBMIT_DIR": str(ROOT),
           "SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_COUNT": "8", "SLURM_ARRAY_TASK_MIN": "0",
           **env_extra}
    out = subprocess.run(["bash", str(SLURM / template), *args], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return (tmp_path / "srun.args").read_text().splitlines()


def test_grid_template_runs_the_tasks_point_and_fits_a_cpu_partition(tmp_path):
    for template in ("grid.sbatch", "encode.sbatch", "teacher.sbatch"):
        d = directives(SLURM / template)
        assert d["signal"] == "USR1@90" and "requeue" in d  # the run's guard listens on USR1 (scaling/signals.py)
        assert "mem" in d and not any("gpu" in k or k == "gres" for k in d), d  # a GPU is an opt-in
    d = directives(SLURM / "grid.sbatch")
    n = len(grid.points(grid.experiment_axes("cpu_grid")))
    assert d["array"] == f"0-{n - 1}%8"  # the default experiment's every point, 8 at a time
    argv = run_template("grid.sbatch", tmp_path, 7, {}, "trainer.threads=2")
    assert argv[1:] == ["recipes/run.py", "experiment=cpu_grid", "grid.index=7", "trainer.threads=2"]
    cfg = compose_run(argv[2:])
    assert cfg.grid.point == grid.points(grid.experiment_axes("cpu_grid"))[7]
    assert cfg.run_dir == str(grid.run_dir("runs", "cpu_grid", cfg.grid.point))
    argv = run_template("grid.sbatch", tmp_path, 23, {"EXPERIMENT": "cpu_budget"})
    assert compose_run(argv[2:]).grid.point == grid.points(grid.experiment_axes("cpu_budget"))[23]


def test_teacher_and_encode_templates_shard_by_the_array_task(tmp_path):
    argv = run_template("teacher.sbatch", tmp_path, 3, {"DATA": "pycode"}, "teacher.batch_size=8")
    assert argv[1:4] == ["recipes/prepare.py", "data=pycode", "steps=[teacher]"]
    cfg = parse(compose(argv[2:], config_name="prepare"), PrepareConfig)
    assert cfg.steps == ["teacher"] and cfg.teacher.batch_size == 8
    env = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "8"}
    assert launch.resolve_shard(cfg.teacher.shard, env) == (3, 8)

    (tmp_path / "e").mkdir()
    argv = run_template("encode.sbatch", tmp_path / "e", 5, {"CKPT": "runs/x/checkpoint", "OUT": "runs/e"})
    cfg = parse(compose(argv[2:], config_name="evaluate"), EvaluateConfig)
    assert cfg.checkpoint == "runs/x/checkpoint" and cfg.run_dir == "runs/e"
    assert launch.resolve_shard(cfg.eval.shard, {**env, "SLURM_ARRAY_TASK_ID": "5"}) == (5, 8)
    missing = subprocess.run(["bash", str(SLURM / "encode.sbatch")], capture_output=True, text=True,
                             env={**os.environ, "SLURM_SUBMIT_DIR": str(ROOT)})
    assert missing.returncode != 0 and "set CKPT" in missing.stderr


def normalise(script: str, sweep: Path) -> str:
    return script.replace(str(sweep), "{SWEEP}").replace(sys.executable, "{PYTHON}")


def test_submitit_launcher_submits_one_cpu_array_with_submitits_warning(tiny_overrides, tmp_path):
    bin_dir, sweep, runs = stubs(tmp_path), tmp_path / "sweep", tmp_path / "runs"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    cmd = [sys.executable, str(ROOT / "recipes" / "run.py"), "-m", "hydra/launcher=slurm", *tiny_overrides,
           "eval.untrained=false", "grid.name=g", f"grid.root={runs}", "grid.axes={paradigm:[dense,sparse]}",
           "paradigm=dense,sparse", f"hydra.sweep.dir={sweep}", "hydra.launcher.timeout_min=60"]
    launcher = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    try:
        pickles = [sweep / ".submitit" / f"4321_{i}" / f"4321_{i}_submitted.pkl" for i in (0, 1)]
        deadline = time.time() + 120
        while not all(p.exists() for p in pickles) and launcher.poll() is None and time.time() < deadline:
            time.sleep(0.5)
        assert all(p.exists() for p in pickles), launcher.stdout.read() if launcher.poll() is not None else ""
        # what was submitted: one array of two CPU tasks, submitit's USR2 warning, resubmission allowed
        submitted = normalise((tmp_path / "submitted.sh").read_text(), sweep)
        if os.environ.get("UPDATE_GOLDEN"):
            GOLDEN.write_text(submitted)
        assert submitted == GOLDEN.read_text()
    finally:
        launcher.kill()
        launcher.wait()
    gpu = subprocess.run([sys.executable, str(ROOT / "recipes" / "run.py"), "hydra/launcher=slurm_gpu",
                          "--cfg", "hydra", "-p", "hydra.launcher"], capture_output=True, text=True, cwd=tmp_path)
    assert gpu.returncode == 0, gpu.stderr[-2000:]
    assert "gpus_per_node: 1" in gpu.stdout and "mem_gb: 64" in gpu.stdout
