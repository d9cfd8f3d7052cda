"""Preemption and resume: Slurm's warning signal mid-step saves at the next step boundary, the
requeue goes out (captured by a stub scontrol), and the requeued run ends with the weights of an
unbroken one; checkpoints are written atomically and a half-written one is never loaded."""

import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from conftest import compose
from scaling import preemption, trainstate
from scaling.config import parse
from scaling.data.resume import DataPosition
from scaling.experiment import run

SLURM_ENV = {"SLURM_NTASKS": "1", "SLURM_JOB_ID": "4242", "SLURM_ARRAY_JOB_ID": "4240",
             "SLURM_ARRAY_TASK_ID": "2", "SLURM_JOB_NAME": "grid", "SLURM_PROCID": "0",
             "SLURM_LOCALID": "0", "SLURM_NODEID": "0"}


def stub(folder, name, body):
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def signal_during(monkeypatch, signum, step, micro):
    """Send ``signum`` to this process before micro-batch ``micro`` of step ``step`` (1-based)."""
    sent = []

    def send(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == step - 1 and batch_idx % trainer.accumulate_grad_batches == micro and not sent:
            sent.append(batch_idx)
            os.kill(os.getpid(), signum)
    monkeypatch.setattr(DataPosition, "on_train_batch_start", send, raising=False)
    return sent


def weights(run_dir):
    return load_file(run_dir / "checkpoint" / "weights.safetensors")


def same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


@pytest.fixture
def common(tiny_overrides):
    # 4 steps of 2 accumulated micro-batches: the signal lands between a step's two forwards
    return tiny_overrides + ["budget.steps=4", "eval.untrained=false", "trainer.batch_size=2",
                             "trainer.global_batch=4", "trainer.checkpoint_every=100"]


def test_sigusr1_mid_step_saves_requeues_and_resumes_to_the_same_weights(common, tmp_path, monkeypatch):
    run(parse(compose(common + [f"run_dir={tmp_path / 'whole'}"])))

    bin_dir, log = tmp_path / "bin", tmp_path / "scontrol.log"
    bin_dir.mkdir()
    stub(bin_dir, "scontrol", f'echo "$@" >> {log}')
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    for k, v in SLURM_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("SUBMITIT_EXECUTOR", raising=False)
    assert preemption.requeue_owner() == "lightning"
    sent = signal_during(monkeypatch, signal.SIGUSR1, step=3, micro=1)
    cfg = parse(compose(common + [f"run_dir={tmp_path / 'r'}"]))
    assert run(cfg) == {}  # preempted: no evaluation, no result
    assert sent == [5] and not (tmp_path / "r" / "result.json").exists()
    assert log.read_text().split() == ["requeue", "4240_2"]  # the array task, as Lightning asks for it
    # saved at the end of step 3 (not between its micro-batches), with the data position and ledger
    hpc = torch.load(tmp_path / "r" / "hpc_ckpt_1.ckpt", weights_only=False)
    assert hpc["global_step"] == 3
    cb = {k.split("{")[0]: v for k, v in hpc["callbacks"].items()}
    assert cb["DataPosition"]["batches"] == 6 and cb["FlopLedger"]["steps"] == 3
    assert not list((tmp_path / "r").rglob(".*ckpt*"))  # no temporary checkpoint left behind
    assert signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None)  # handlers restored after fit

    # the requeued task: same command, resumes from the requeue checkpoint and finishes
    monkeypatch.setattr(DataPosition, "on_train_batch_start", lambda *a: None, raising=False)
    result = run(cfg)
    assert result["budget"]["realised"]["steps"] == 4
    same_weights(weights(tmp_path / "whole"), weights(tmp_path / "r"))
    assert log.read_text().split() == ["requeue", "4240_2"]  # no second requeue


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
        assert preemption.requeue_owner() == "submitit"
        seen = []
        orig_start = preemption.Preemption.on_train_start

        def check_start(self, trainer, pl_module):
            orig_start(self, trainer, pl_module)
            seen.append(signal.getsignal(signal.SIGTERM))
        monkeypatch.setattr(preemption.Preemption, "on_train_start", check_start)
        signal_during(monkeypatch, signal.SIGUSR2, step=2, micro=1)
        with pytest.raises(SystemExit):
            run(parse(compose(common + [f"run_dir={tmp_path / 's'}"])))
        assert calls == [2] and seen == [bypass]
        assert not (tmp_path / "s" / "hpc_ckpt_1.ckpt").exists()  # Lightning's auto-requeue is off
    finally:
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


def test_requeue_owner_per_path(monkeypatch):
    def owner(env):
        for k in ("SLURM_NTASKS", "SLURM_JOB_NAME", "SUBMITIT_EXECUTOR"):
            monkeypatch.delenv(k, raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        return preemption.requeue_owner()
    assert owner({}) is None
    assert owner({"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "bash"}) is None  # salloc shell
    assert owner({"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "grid"}) == "lightning"
    assert owner({"SLURM_NTASKS": "1", "SUBMITIT_EXECUTOR": "slurm"}) == "submitit"
    (lightning,) = preemption.plugins("lightning")
    (submitit,) = preemption.plugins("submitit")
    assert lightning.auto_requeue and lightning.requeue_signal == signal.SIGUSR1 and not submitit.auto_requeue
    assert preemption.owner_signal("submitit", {}) == signal.SIGUSR2
