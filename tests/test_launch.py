"""Multi-process launches: one run folder per launch, once-only work on the leader, bounded waits."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from scaling import launch, rundir
from scaling.schema import ConfigError


def test_two_process_launch_writes_one_run_folder(tiny_overrides, tmp_path):
    """Lightning's DDP launcher re-runs recipes/run.py for rank 1 (gloo on the CPU) with run_dir
    unset: both ranks use one folder, the references and the untrained model are evaluated once
    (by the leader), each rank encodes its share of the corpus there, and rank 0 writes the result."""
    overrides = [o for o in tiny_overrides if not o.startswith("eval.baselines")] + [
        "eval.baselines=[bm25]", "trainer.devices=2", "trainer.strategy=ddp", "trainer.threads=1",
        "budget.steps=2", "eval.block=100"]  # 300 documents: blocks 0 and 2 on rank 0, block 1 on rank 1
    try:
        out = subprocess.run([sys.executable, str(ROOT / "recipes" / "run.py"), *overrides], cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the 2-process launch did not finish in 600 s: {str(e.stdout)[-2000:]}")
    assert out.returncode == 0, out.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("result.json")] == \
        [f"runs/{run_dir.name}/result.json"]
    log = out.stdout
    assert log.count("[eval] BM25") == 1 and log.count("[eval] untrained (step 0)") == 1, log[-3000:]
    assert log.count("[eval] trained model") == 2  # both ranks encode ...
    store = run_dir.resolve() / "encoded" / "small"
    assert f"[encode] shard 1/2: 1 of 1 blocks to encode (100 texts) in {store}" in log  # ... into one store
    assert sorted(p.name for p in store.glob("block-*")) == [f"block-00000{b}.npy" for b in range(3)]
    result = json.loads((run_dir / "result.json").read_text())
    assert set(result["metrics"]["small/test"]) >= {"nDCG@10", "R@100"}
    assert set(result["reference_metrics"]) == {"bm25"} and result["baseline_metrics"]


def test_run_folder_is_fixed_once_per_launch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {}
    leader = rundir.prepare(None, "dense-cl-tiny", env=env)
    assert leader.parent.name == "runs" and leader.name.endswith("dense-cl-tiny")
    with rundir.handed_down(leader, env):  # what the ranks the leader starts inherit
        child = dict(env, LOCAL_RANK="1")
        assert rundir.resolve(None, "dense-cl-tiny", child).resolve() == leader.resolve()
    assert launch.RUN_DIR_ENV not in env  # the next job of a multirun names its own folder
    with pytest.raises(ConfigError, match="run_dir"):  # a rank never invents its own folder
        rundir.resolve(None, "x", {"RANK": "1", "WORLD_SIZE": "2"})
    torchrun = {"RANK": "1", "WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "abc"}
    assert rundir.resolve(None, "x", torchrun) == rundir.resolve(None, "x", dict(torchrun, RANK="0"))
    assert str(rundir.resolve("/given", "x", torchrun)) == "/given"
    (leader / "result.json").write_text("{}")
    with pytest.raises(rundir.RunExistsError, match="overwrite=true"):
        rundir.prepare(str(leader), "x", env={})


def test_leader_and_launch_names_from_the_environment():
    assert launch.is_leader({}) and launch.is_leader({"RANK": "0", "LOCAL_RANK": "0"})
    assert not launch.is_leader({"LOCAL_RANK": "1"}) and not launch.is_leader({"NODE_RANK": "1", "LOCAL_RANK": "0"})
    # the tasks of a multi-task srun (Lightning's SLURM environment): SLURM_PROCID is the rank
    assert not launch.is_leader({"SLURM_NTASKS": "4", "SLURM_PROCID": "2"})
    assert launch.is_leader({"SLURM_NTASKS": "4", "SLURM_PROCID": "0"})
    assert launch.is_leader({"SLURM_NTASKS": "1", "SLURM_PROCID": "0", "SLURM_ARRAY_TASK_ID": "5"})
    assert launch.launch_name({"TORCHELASTIC_RUN_ID": "none"}) is None
    assert launch.launch_name({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4", "SLURM_STEP_ID": "0"}) == "slurm-7-0"
    assert launch.launch_name({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1"}) is None


def test_waiting_for_other_ranks_has_a_deadline(tmp_path):
    from scaling.index.encode import ROWS, block_path, wait_for_blocks
    rows = ROWS["dense"]
    rows.save(np.zeros((2, 4), np.float32), block_path(tmp_path, 0, rows))
    with pytest.raises(TimeoutError, match=r"1 of 2 corpus blocks in .*missing: 1"):
        wait_for_blocks(tmp_path, rows, count=4, block=2, timeout_s=0.3, poll_s=0.1)
    rows.save(np.zeros((2, 4), np.float32), block_path(tmp_path, 1, rows))
    wait_for_blocks(tmp_path, rows, count=4, block=2, timeout_s=0.3, poll_s=0.1)  # complete: returns
