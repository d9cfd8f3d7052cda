"""Preemption and resume in-process, with a stub scontrol: Slurm's warning signal mid-step saves at
the next step boundary in a later epoch and requeues; before training and during evaluation it
requeues at once; each requeued run ends with the weights of an unbroken one. Checkpoints are
written atomically and a half-written one is never loaded. (tests/test_slurm_cluster.py does the
same through a real Slurm.)"""

import os
import signal

import pytest
import torch

from conftest import RESUME_HARD, assert_same_weights, compose, tiny_args
from scaling import signals, trainstate
from scaling.callbacks import FlopLedger
from scaling.config import parse
from scaling.experiment import run
from scaling.index.encode import DenseRows

SLURM_ENV = {"SLURM_NTASKS": "1", "SLURM_JOB_ID": "4242", "SLURM_ARRAY_JOB_ID": "4240",
             "SLURM_ARRAY_TASK_ID": "2", "SLURM_JOB_NAME": "grid", "SLURM_PROCID": "0",
             "SLURM_LOCALID": "0", "SLURM_NODEID": "0"}


def stub(folder, name, body):
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def slurm_task(tmp_path, monkeypatch):
    """This process as an sbatch array task; scontrol is a stub recording its arguments."""
    bin_dir, log = tmp_path / "bin", tmp_path / "scontrol.log"
    bin_dir.mkdir()
    stub(bin_dir, "scontrol", f'echo "$@" >> {log}')
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    for k, v in SLURM_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("SUBMITIT_EXECUTOR", raising=False)
    assert signals.requeue_owner() == "slurm"
    return log


def requeues(log):
    return log.read_text().split() if log.exists() else []


def signal_during(monkeypatch, signum, step, micro):
    """Send ``signum`` to this process before micro-batch ``micro`` of step ``step`` (1-based)."""
    sent = []

    def send(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == step - 1 and batch_idx % trainer.accumulate_grad_batches == micro and not sent:
            sent.append((trainer.current_epoch, batch_idx))
            os.kill(os.getpid(), signum)
    monkeypatch.setattr(FlopLedger, "on_train_batch_start", send, raising=False)
    return sent


HARD = RESUME_HARD + ["budget.steps=7", "trainer.checkpoint_every=100"]
"""7 steps of 2 accumulated micro-batches, 2 steps an epoch, negatives and dropout drawn anew."""


@pytest.fixture
def common(tiny_overrides):
    return tiny_overrides + HARD


@pytest.fixture(scope="module")
def whole(small_beir, tmp_path_factory):
    """The unbroken run every preempted one is compared with (its own cache: nothing is shared)."""
    folder = tmp_path_factory.mktemp("whole")
    run(parse(compose(tiny_args(small_beir, folder / "cache") + HARD + [f"run_dir={folder / 'run'}"])))
    return folder / "run"


def test_sigusr1_mid_step_in_a_later_epoch_saves_requeues_and_resumes_to_the_same_weights(
        common, whole, slurm_task, tmp_path, monkeypatch):
    sent = signal_during(monkeypatch, signal.SIGUSR1, step=6, micro=1)
    cfg = parse(compose(common + [f"run_dir={tmp_path / 'r'}"]))
    assert run(cfg) == {}  # preempted: no evaluation, no result
    assert sent == [(2, 3)] and not (tmp_path / "r" / "result.json").exists()
    assert requeues(slurm_task) == ["requeue", "4240_2"]  # the array task
    # saved at the end of step 6 (not between its micro-batches), with the data position and ledger
    last = torch.load(tmp_path / "r" / "ckpt" / "last.ckpt", weights_only=False)
    assert last["global_step"] == 6
    cb = {k.split("{")[0]: v for k, v in last["callbacks"].items()}
    assert cb["DataPosition"]["trained"] == 12 and cb["FlopLedger"]["steps"] == 6
    assert not list((tmp_path / "r").rglob(".*ckpt*"))  # no temporary checkpoint left behind
    assert not (tmp_path / "r" / "running.json").exists()
    assert signal.getsignal(signal.SIGUSR1) == signals.guard()._on_signal  # the guard holds it again

    # the requeued task: same command, resumes in epoch 3 and finishes
    monkeypatch.setattr(FlopLedger, "on_train_batch_start", lambda *a: None, raising=False)
    result = run(cfg)
    assert result["budget"]["realised"]["steps"] == 7
    assert_same_weights(whole, tmp_path / "r")
    assert requeues(slurm_task) == ["requeue", "4240_2"]  # no second requeue


def test_a_signal_before_training_requeues_at_once_and_the_rerun_completes(
        common, whole, slurm_task, tmp_path, monkeypatch, capsys):
    from scaling import checkpoint
    build = checkpoint.build

    def signalled_build(cfg):  # the warning lands while the model is being built
        os.kill(os.getpid(), signal.SIGUSR1)
        return build(cfg)
    monkeypatch.setattr(checkpoint, "build", signalled_build)
    cfg = parse(compose(common + [f"run_dir={tmp_path / 'r'}"]))
    with pytest.raises(signals.Preempted) as stopped:
        run(cfg)
    assert stopped.value.code == 0 and requeues(slurm_task) == ["requeue", "4240_2"]
    assert "outside training: requeueing now" in capsys.readouterr().out
    assert not (tmp_path / "r" / "running.json").exists() and not (tmp_path / "r" / "ckpt").exists()

    monkeypatch.setattr(checkpoint, "build", build)
    assert run(cfg)["budget"]["realised"]["steps"] == 7
    assert_same_weights(whole, tmp_path / "r")


def test_a_signal_during_evaluation_keeps_the_encoded_blocks_and_the_rerun_only_finishes(
        common, whole, slurm_task, tmp_path, monkeypatch):
    save, saved = DenseRows.save, []

    def signalled_save(self, rows, path):  # the warning lands once the first corpus block is on disk
        save(self, rows, path)
        saved.append(path.name)
        if len(saved) == 1:
            os.kill(os.getpid(), signal.SIGUSR1)
    monkeypatch.setattr(DenseRows, "save", signalled_save)
    cfg = parse(compose(common + [f"run_dir={tmp_path / 'r'}", "eval.block=100"]))
    with pytest.raises(signals.Preempted):
        run(cfg)
    store = tmp_path / "r" / "encoded" / "small"
    assert saved == ["block-000000.npy"] and sorted(p.name for p in store.glob("block-*")) == saved
    assert requeues(slurm_task) == ["requeue", "4240_2"]
    assert torch.load(tmp_path / "r" / "ckpt" / "last.ckpt", weights_only=False)["global_step"] == 7

    trained = []
    monkeypatch.setattr(FlopLedger, "on_train_batch_start", lambda *a: trained.append(1), raising=False)
    result = run(cfg)  # the requeued task: no step trained again, only the missing blocks encoded
    assert trained == [] and result["budget"]["realised"]["steps"] == 7
    assert saved == ["block-000000.npy", "block-000001.npy", "block-000002.npy"]
    assert_same_weights(whole, tmp_path / "r")


def test_sigterm_in_a_later_epoch_stops_with_a_resume_hint_and_the_rerun_ends_with_the_same_weights(
        common, whole, slurm_task, tmp_path, monkeypatch, capsys):
    """scancel (SIGTERM) inside step 6 (epoch 2): the run stops at once, its marker goes, it says how
    to resume, nothing is requeued; the rerun resumes from the end of epoch 1 to the unbroken weights."""
    signal_during(monkeypatch, signal.SIGTERM, step=6, micro=1)
    cfg = parse(compose(common + [f"run_dir={tmp_path / 'r'}", "trainer.checkpoint_every=4"]))
    with pytest.raises(signals.Terminated) as stopped:
        run(cfg)
    assert stopped.value.code == 143 and requeues(slurm_task) == []
    assert not (tmp_path / "r" / "running.json").exists()
    out = capsys.readouterr().out
    assert "received SIGTERM: stopping" in out and "[run] stopped (Terminated)" in out and "last.ckpt" in out
    assert torch.load(tmp_path / "r" / "ckpt" / "last.ckpt", weights_only=False)["global_step"] == 4
    monkeypatch.setattr(FlopLedger, "on_train_batch_start", lambda *a: None, raising=False)
    assert run(cfg)["budget"]["realised"]["steps"] == 7
    assert_same_weights(whole, tmp_path / "r")


def test_a_failed_requeue_ends_the_task_failed_with_its_checkpoint_saved(common, slurm_task, tmp_path,
                                                                        monkeypatch, capsys):
    stub(tmp_path / "bin", "scontrol", "echo 'slurm_requeue error: Access/permission denied' >&2; exit 1")
    signal_during(monkeypatch, signal.SIGUSR1, step=3, micro=0)
    with pytest.raises(signals.Preempted) as stopped:
        run(parse(compose(common + [f"run_dir={tmp_path / 'r'}"])))
    assert stopped.value.code == 1  # Slurm marks the task FAILED: nobody is left to requeue it
    assert torch.load(tmp_path / "r" / "ckpt" / "last.ckpt", weights_only=False)["global_step"] == 3
    out = capsys.readouterr().out
    assert "scontrol requeue 4240_2: failed (exit 1)" in out and f"run_dir={tmp_path / 'r'}" in out


def test_under_submitit_last_ckpt_is_saved_before_its_handler_resubmits(common, tmp_path, monkeypatch):
    """submitit owns the requeue (SIGUSR2): its handler runs at the step boundary, after
    ckpt/last.ckpt is saved; its SIGTERM handler stays in place of Lightning's."""
    for k, v in SLURM_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    calls = []

    def submitit_handler(signum, frame):  # what submitit's checkpoint_and_try_requeue ends with
        calls.append(torch.load(tmp_path / "s" / "ckpt" / "last.ckpt", weights_only=False)["global_step"])
        raise SystemExit(-1)

    def bypass(signum, frame):
        calls.append("sigterm")
    old_usr2 = signal.signal(signal.SIGUSR2, submitit_handler)
    old_term = signal.signal(signal.SIGTERM, bypass)
    try:
        assert signals.requeue_owner() == "submitit"
        from scaling import preemption
        seen = []
        orig_start = preemption.Preemption.on_train_start

        def check_start(self, trainer, pl_module):
            orig_start(self, trainer, pl_module)
            seen.append(signal.getsignal(signal.SIGTERM))
        monkeypatch.setattr(preemption.Preemption, "on_train_start", check_start)
        signal_during(monkeypatch, signal.SIGUSR2, step=3, micro=1)
        with pytest.raises(SystemExit) as stopped:
            run(parse(compose(common + [f"run_dir={tmp_path / 's'}"])))
        assert stopped.value.code == -1 and calls == [3] and seen == [bypass]
    finally:
        signals.release()
        signal.signal(signal.SIGUSR2, old_usr2)
        signal.signal(signal.SIGTERM, old_term)


def test_checkpoints_are_written_atomically_and_a_truncated_one_is_skipped(tmp_path, monkeypatch):
    io = trainstate.AtomicCheckpointIO()
    target = tmp_path / "ckpt" / "last.ckpt"
    io.save_checkpoint({"global_step": 1, "w": torch.ones(3)}, target)
    assert trainstate.complete(target)

    def dies_mid_write(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt("killed while saving")
    monkeypatch.setattr(torch, "save", dies_mid_write)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"global_step": 2}, target)
    monkeypatch.undo()
    assert torch.load(target, weights_only=False)["global_step"] == 1  # the previous one, whole
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"]  # no temporary file left

    # a newer but truncated checkpoint (written by something else) is skipped, loudly
    newer = tmp_path / "hpc_ckpt_1.ckpt"
    newer.write_bytes(target.read_bytes()[:40])
    os.utime(newer, ns=(target.stat().st_mtime_ns + 10**9,) * 2)
    (tmp_path / "ckpt" / ".last.ckpt.k3j9x_").write_bytes(b"left over")  # a killed write_atomic's
    assert not trainstate.complete(newer)
    assert trainstate.resume_path(tmp_path) == target
    assert not (tmp_path / "ckpt" / ".last.ckpt.k3j9x_").exists()
    io.save_checkpoint({"global_step": 3}, newer)
    assert trainstate.resume_path(tmp_path) == newer
    assert trainstate.resume_path(tmp_path / "empty") is None


@pytest.mark.parametrize("env", [{}, {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "bash"},
                                 {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "interactive"},
                                 {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "grid"},
                                 {"SLURM_NTASKS": "2", "SLURM_JOB_NAME": "grid"}])
def test_requeue_owner_follows_lightnings_slurm_detection(env, monkeypatch):
    """The guard decides without importing Lightning; its rule must stay Lightning's."""
    from lightning.pytorch.plugins.environments import SLURMEnvironment
    for k in ("SLURM_NTASKS", "SLURM_JOB_NAME", "SUBMITIT_EXECUTOR"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert (signals.requeue_owner() == "slurm") == SLURMEnvironment.detect()
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    assert signals.requeue_owner() == "submitit"
    assert signals.owner_signal("submitit", {}) == signal.SIGUSR2
    assert signals.owner_signal("slurm", {}) == signal.SIGUSR1
    assert signals.job_id({"SLURM_JOB_ID": "7"}) == "7"
    assert signals.job_id({"SLURM_JOB_ID": "9", "SLURM_ARRAY_JOB_ID": "7", "SLURM_ARRAY_TASK_ID": "2"}) == "7_2"
