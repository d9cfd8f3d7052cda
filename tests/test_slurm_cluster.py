"""Through a real single-node Slurm (.ci/slurm-local; CI starts one with slurmdbd for sacct):
real sbatch, srun, scontrol, scancel and sacct, the project's templates as a researcher submits
them, the local cluster's CPU-only node.

- the grid template over the smoke grid's points, one task warned before training;
- a point preempted by Slurm's own time-limit warning in a later epoch (requeued, released,
  resumed), then SIGKILLed in a later epoch and resubmitted: it ends with the weights of an
  unbroken run of the same point, bitwise;
- the submitit launcher: a time-limit warning, submitit's requeue, the resumed task's result
  collected by the launcher, which prints the tasks' progress while it waits;
- the encode and teacher arrays, sharded by the array task, the last task finishing the job.

A requeued job is held by Slurm for about two minutes (BeginTime); the tests release it at once
(``scontrol update StartTime=now``) and give it a longer limit, so it is not warned again. Slurm
checks time limits about every 30 s, so a warning comes up to 30 s after the limit is cut: the
long point trains for longer than that. Without a cluster these tests skip (fail instead under
SCALING_REQUIRE_SLURM=1, as in CI).
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import ROOT, assert_same_weights
from scaling import grid

SLURM = ROOT / "recipes" / "slurm"
LONG_STEPS = 450
"""The smoke grid's long point (recipes/conf/experiment/smoke.yaml), 2 steps an epoch: the fewest
steps a preempted point trains (``long_steps`` gives more on a fast machine)."""


def sh(*cmd, check=True, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=60, **kw)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))}: exit {out.returncode}\n{out.stdout}\n{out.stderr}")
    return out


def cluster_problem() -> str | None:
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20)
    except (FileNotFoundError, subprocess.TimeoutExpired) as e:
        return f"sinfo: {e}"
    if out.returncode != 0:
        return out.stderr.strip() or "sinfo failed"
    if not {"idle", "mix", "alloc"} & set(out.stdout.split()):
        return f"no node is up ({out.stdout.strip()})"
    return None


SUBMITTED: list[str] = []
"""Jobs this module submitted (cancelled when it ends, so a failed test leaves none running)."""
SUBMITIT_NAME = "scaling-submitit-test"


@pytest.fixture(scope="module")
def cluster():
    problem = cluster_problem()
    if problem:
        if os.environ.get("SCALING_REQUIRE_SLURM"):
            pytest.fail(f"SCALING_REQUIRE_SLURM is set but no Slurm cluster answers: {problem}")
        pytest.skip(f"no Slurm cluster here ({problem}); .ci/slurm-local install && .ci/slurm-local start")
    yield
    sh("scancel", *SUBMITTED, check=False)
    sh("scancel", "-n", SUBMITIT_NAME, check=False)


def job(jid: str) -> dict:
    """``scontrol show job`` as a dict (JobState, Restarts, ExitCode, ...)."""
    out = sh("scontrol", "show", "job", "-o", jid).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def wait_for(what: str, predicate, timeout: float, poll: float = 0.5, log: Path | None = None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    tail = log.read_text()[-4000:] if log is not None and log.exists() else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tail}")


def state(jid: str) -> str:
    return job(jid).get("JobState", "")


def finished(jid: str) -> bool:
    return state(jid) in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL")


def release(jid: str, minutes: int = 15) -> None:
    """A requeued job: start it now (Slurm holds it ~2 min) with a limit it will not be warned under.
    The old attempt's batch script exits a while after the job turns PENDING (seconds on a loaded
    machine); a job started before that is charged the old exit status and ends FAILED at once, so this
    waits until the old attempt's step daemon (``slurmstepd: [<job id>.batch]``, on this one node) is gone."""
    try:
        wait_for(f"{jid} back in the queue", lambda: state(jid) == "PENDING" and int(job(jid).get("Restarts", 0)) > 0,
                 120)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{jid} is {job(jid)}") from None
    raw = job(jid)["JobId"]  # an array task's own job id, which its step daemons are named by
    wait_for(f"{jid}'s old attempt to exit", lambda: not sh("pgrep", "-f", rf"slurmstepd: \[{raw}\.", check=False).stdout,
             120)
    time.sleep(1)
    sh("scontrol", "update", f"JobId={jid}", f"TimeLimit={minutes}", "StartTime=now")


def sbatch(template: str, *args, options=(), env_extra=None) -> str:
    """Submit a template from the project root as the README does; returns the job id."""
    env = {**os.environ, "PYTHON": sys.executable, **(env_extra or {})}
    out = sh("sbatch", "--parsable", *options, SLURM / template, *args, cwd=ROOT, env=env)
    SUBMITTED.append(out.stdout.strip().split(";")[0])
    return SUBMITTED[-1]


def ckpt_step(path: Path) -> int:
    try:
        return int(torch.load(path, weights_only=False, map_location="cpu")["global_step"])
    except Exception:
        return -1


@pytest.fixture(scope="module")
def grid_args(small_beir, tmp_path_factory):
    """The smoke experiment on the small BEIR folder, 2 optimiser steps an epoch, LoRA dropout on."""
    work = tmp_path_factory.mktemp("slurm")
    return work, ["data=beir", f"data.path={small_beir}", "data.max_train_queries=16", "model.lora.dropout=0.1",
                  "logger=csv", "trainer.log_every=1", f"cache_dir={work / 'cache'}"]


def test_the_templates_as_the_readme_submits_them_fit_a_cpu_only_node(cluster):
    """``sbatch recipes/slurm/grid.sbatch`` (and the other two) are accepted and schedulable as
    written on this CPU-only node: no GPU asked for, CPUs and memory a small node has."""
    for template in ("grid.sbatch", "encode.sbatch", "teacher.sbatch"):
        out = sh("sbatch", "--test-only", SLURM / template, cwd=ROOT, check=False)
        assert out.returncode == 0 and "to start at" in out.stderr, (template, out.stderr)
    gpu = sh("sbatch", "--test-only", "--gpus-per-node=1", SLURM / "grid.sbatch", cwd=ROOT, check=False)
    assert gpu.returncode != 0  # a GPU is an opt-in this node cannot give


def training_steps(args: list[str], root: Path, seconds: float) -> int:
    """Steps of the smoke grid's dense point that train for at least ``seconds`` on this machine
    (at least its long point's 450), from a 40-step run here: a faster machine trains more steps
    in the up to 30 s a time-limit warning takes, and the warning must land in training."""
    from conftest import compose_run
    from scaling.experiment import run
    threads = torch.get_num_threads()
    try:  # one thread, as a task on one CPU trains
        took = run(compose_run(["experiment=smoke", "grid.index=0", *args, f"grid.root={root}",
                                "trainer.threads=1"]))["timing_s"]["train"]
    finally:
        torch.set_num_threads(threads)
    return max(450, int(seconds * 40 / took) // 10 * 10)


@pytest.fixture(scope="module")
def long_steps(cluster, grid_args) -> int:
    """Steps of a point that trains for 45 s on one CPU here: a time-limit warning comes up to 30 s
    after the limit is cut, on a warm cache (the module's earlier tests) right as training starts,
    and must land in training, not after it."""
    work, args = grid_args
    return training_steps(args, work / "calibration", 45)


def test_grid_array_requeue_in_a_later_epoch_and_kill_end_with_the_unbroken_weights(cluster, grid_args, long_steps):
    work, args = grid_args
    opts = ["--cpus-per-task=1", "--mem=2G", "--time=15", "--signal=USR1@119"]
    out = work / "logs"
    out.mkdir()
    steps = long_steps
    long = [f"budget.steps={steps}"]
    point = f"dense-tiny-steps{steps}"
    env = {"EXPERIMENT": "smoke"}
    # the point to preempt, the tiny grid's short point, then the unbroken run of the long one
    broken = sbatch("grid.sbatch", f"grid.root={work / 'p'}", *args, *long,
                    options=[*opts, "--array=1", f"--output={out}/p-%A_%a.out"], env_extra=env)
    tiny = sbatch("grid.sbatch", f"grid.root={work / 'g'}", *args,
                  options=[*opts, "--array=0", f"--output={out}/g-%A_%a.out"], env_extra=env)
    whole = sbatch("grid.sbatch", f"grid.root={work / 'g'}", *args, *long,
                   options=[*opts, "--array=1", f"--output={out}/u-%A_%a.out"], env_extra=env)
    p, run_dir, plog = f"{broken}_1", work / "p" / "smoke" / point, out / f"p-{broken}_1.out"
    unbroken = work / "g" / "smoke" / point

    # 1. the tiny grid's short point, warned while it starts (in the recipe's imports, long before
    #    training), requeues; it is let back in once the unbroken run is done
    early = f"{tiny}_0"
    wait_for(f"{early} to start its step", lambda: f"{early}.0" in sh("squeue", "-h", "-s", "-o", "%i").stdout, 120)
    time.sleep(2)
    sh("scancel", "--signal=USR1", early)
    wait_for(f"{early} back in the queue", lambda: state(early) == "PENDING", 60)

    # 2. the point to preempt: once it trains in a later epoch, its limit is cut below the warning
    #    time; Slurm's warning comes at its next time-limit check, the task saves, requeues, resumes
    wait_for("the first checkpoint of the point to preempt", lambda: ckpt_step(run_dir / "ckpt" / "last.ckpt") >= 20,
             180, log=plog)
    sh("scontrol", "update", f"JobId={p}", "TimeLimit=2")
    release(p)
    text = wait_for("the requeued task to resume", lambda: "resuming the data stream" in plog.read_text()
                    and plog.read_text(), 120, log=plog)
    first = re.search(r"\[preempt\] step (\d+): saving", text)
    assert first and f"scontrol requeue {p}: done" in text, text[-3000:]
    (epoch, batch), = re.findall(r"resuming the data stream at epoch (\d+), batch (\d+)", text)
    assert 10 <= int(first.group(1)) < steps and int(epoch) >= 10, text[-3000:]

    # 3. then SIGKILL in a later epoch, after a checkpoint the rerun wrote; resubmitted, it resumes
    wait_for("a checkpoint after the resume", lambda: ckpt_step(run_dir / "ckpt" / "last.ckpt") > int(first.group(1)),
             120, log=plog)
    sh("scancel", "--signal=KILL", p)
    wait_for(f"{p} to end", lambda: finished(p), 60)
    axes = {**grid.experiment_axes("smoke"), "budget.steps": [steps]}
    assert grid.status(str(work / "p"), "smoke", axes)["interrupted"] == [point]  # its marker is stale
    again = sbatch("grid.sbatch", f"grid.root={work / 'p'}", *args, *long,
                   options=[*opts, "--array=1", f"--output={out}/p2-%A_%a.out"], env_extra=env)
    wait_for("the unbroken run to finish", lambda: finished(f"{whole}_1"), 300, poll=2, log=out / f"u-{whole}_1.out")
    release(early)

    for jid, log in ((f"{whole}_1", out / f"u-{whole}_1.out"), (f"{again}_1", out / f"p2-{again}_1.out"),
                     (early, out / f"g-{tiny}_0.out")):
        wait_for(f"{jid} to finish", lambda jid=jid: finished(jid), 300, poll=2, log=log)
        assert state(jid) == "COMPLETED", (job(jid), log.read_text()[-3000:])
    text2 = (out / f"p2-{again}_1.out").read_text()
    (epoch2, _), = re.findall(r"resuming the data stream at epoch (\d+), batch (\d+)", text2)
    assert int(epoch2) > int(epoch), text2[-3000:]
    assert_same_weights(unbroken, run_dir)
    assert json.loads((run_dir / "result.json").read_text())["budget"]["realised"]["steps"] == steps
    logged = [int(r["step"]) for r in csv.DictReader(open(run_dir / "logs" / "metrics.csv")) if r.get("train/loss")]
    assert logged == list(range(steps))  # every step logged once, across three attempts

    glog = (out / f"g-{tiny}_0.out").read_text()
    assert "outside training: requeueing now" in glog and f"scontrol requeue {early}: done" in glog
    assert "dense-tiny-steps40" in grid.status(str(work / "g"), "smoke", grid.experiment_axes("smoke"))["done"]


def test_submitit_launcher_times_out_requeues_and_collects_the_resumed_result(cluster, grid_args, long_steps):
    """hydra/launcher=slurm as a researcher runs it: the task's limit is cut so Slurm warns it
    (SIGUSR2, submitit's); submitit requeues it, the requeued task resumes and finishes, and the
    launcher, printing the tasks' progress meanwhile, collects the result and exits 0."""
    work, args = grid_args
    sweep, name = work / "sweep", SUBMITIT_NAME
    cmd = [sys.executable, ROOT / "recipes" / "run.py", "-m", "hydra/launcher=slurm", "experiment=smoke",
           "grid.index=1", f"grid.root={work / 's'}", *args, f"budget.steps={long_steps}", f"hydra.sweep.dir={sweep}", f"hydra.launcher.name={name}",
           "hydra.launcher.timeout_min=15", "hydra.launcher.signal_delay_s=119", "hydra.launcher.cpus_per_task=1",
           "hydra.launcher.mem_gb=2", "hydra.launcher.max_num_timeout=2"]
    launcher = subprocess.Popen([str(c) for c in cmd], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env={**os.environ, "SCALING_PROGRESS_POLL_S": "2"})
    try:
        def running() -> str:
            if launcher.poll() is not None:
                raise AssertionError(f"the launcher ended ({launcher.returncode}): {launcher.stdout.read()[-3000:]}")
            return sh("squeue", "-h", "-n", name, "-t", "R", "-o", "%i").stdout.strip()
        jid = wait_for("the launcher's array task to run", running, 180)
        # submitit binds SIGUSR2 only once it has unpickled the task (imports of a minute on a loaded
        # machine); a warning before that kills the process, so the limit is cut once the task is in
        # the run, whose grid marker is written after the binding
        marker = work / "s" / "smoke" / f"dense-tiny-steps{long_steps}" / grid.RUNNING
        wait_for(f"{jid} to enter the run ({marker})", marker.exists, 180)
        sh("scontrol", "update", f"JobId={jid}", "TimeLimit=2")  # warned at Slurm's next time-limit check
        release(jid)
        out, _ = launcher.communicate(timeout=300)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 0, out[-3000:]
    wait_for(f"{jid} to end", lambda: finished(jid), 60)  # the result is written a moment before the task ends
    info = job(jid)
    assert info["JobState"] == "COMPLETED" and info["Restarts"] == "1", info
    progress = [line for line in out.splitlines() if line.startswith("[slurm] ")]
    assert any("1 tasks (job " in line and "1 running" in line and "smoke: 0 of 1 done, 1 running" in line
               for line in progress), out[-3000:]
    assert progress[-1] == "[slurm] every task has returned", progress
    task_log = "".join(p.read_text() for p in sweep.glob(".submitit/*/*_log.*"))
    assert "SIGUSR2" in task_log and "requeue" in task_log.lower(), task_log[-3000:]
    result = json.loads((work / "s" / "smoke" / f"dense-tiny-steps{long_steps}" / "result.json").read_text())
    assert result["budget"]["realised"]["steps"] == long_steps


def test_encode_and_teacher_arrays_shard_by_task_and_the_last_task_finishes(cluster, grid_args, tiny_overrides,
                                                                           tiny_ce_dir, small_beir, tmp_path):
    from conftest import compose
    from scaling.config import parse
    from scaling.data.formats import read_groups, read_scores
    from scaling.experiment import run
    from scaling.prepare import paths, prepare, teacher_pairs
    # a trained checkpoint to encode, and a prepared teacher to score with (in this process)
    trained = run(parse(compose(tiny_overrides + [f"run_dir={tmp_path / 'run'}", "eval.untrained=false"])))
    cache = tmp_path / "cache"
    teacher = ["data=beir", f"data.path={small_beir}", f"cache_dir={cache}", f"teacher.init={tiny_ce_dir}",
               "teacher.train.steps=2", "teacher.train.batch_size=4", "teacher.max_len=64", "teacher.candidates=3",
               "teacher.report_splits=[test]", "teacher.report_depth=10", "data.bm25.hits=20",
               "teacher.report_pool=bm25", "teacher.report_references=[bm25]"]
    cfg = parse(compose(["size=tiny", *teacher]))
    prepare(cfg, ["data", "bm25", "teacher_model"])

    opts = ["--array=0-1", "--cpus-per-task=1", "--mem=2G", "--time=10"]
    encode = sbatch("encode.sbatch", "data=beir", f"data.path={small_beir}", "eval.block=100", "eval.baselines=[]",
                    "eval.untrained=false", f"cache_dir={cache}",
                    options=[*opts, f"--output={tmp_path}/encode-%A_%a.out"],
                    env_extra={"CKPT": str(tmp_path / "run" / "checkpoint"), "OUT": str(tmp_path / "eval")})
    scores = sbatch("teacher.sbatch", *teacher[1:], options=[*opts, f"--output={tmp_path}/teacher-%A_%a.out"],
                    env_extra={"DATA": "beir"})
    for jid in (f"{encode}_0", f"{encode}_1", f"{scores}_0", f"{scores}_1"):
        wait_for(f"{jid} to finish", lambda jid=jid: finished(jid), 300, poll=2)
        assert state(jid) == "COMPLETED", (job(jid), "".join(p.read_text()[-2000:] for p in tmp_path.glob("*.out")))
    logs = {p.name: p.read_text() for p in tmp_path.glob("*.out")}
    assert "shard 0/2: 2 of 2 blocks" in logs[f"encode-{encode}_0.out"]
    assert "shard 1/2: 1 of 1 blocks" in logs[f"encode-{encode}_1.out"]
    got = json.loads((tmp_path / "eval" / "result.json").read_text())["metrics"]["small/test"]
    want = trained["metrics"]["small/test"]
    for measure in ("nDCG@10", "RR@10", "R@100", "R@1000"):  # the same model and vectors, in 3 blocks of 2 tasks
        assert got[measure] == pytest.approx(want[measure], abs=1e-9), measure
    p = paths(cfg)
    merged = read_scores(p.teacher_scores)
    assert {(q, d) for q, docs in merged.items() for d in docs} == set(teacher_pairs(read_groups(p.groups), 3))
