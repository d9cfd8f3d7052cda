"""Preemption on Slurm: one owner of the requeue per launch path, acting at an optimiser-step boundary.

Two ways a grid point runs on Slurm, each with one owner of the requeue:

- ``sbatch recipes/slurm/grid.sbatch`` (``--signal=USR1@90 --requeue``): Lightning's SLURM
  environment owns it. Its SIGUSR1 handler saves ``RUN_DIR/hpc_ckpt_N.ckpt`` and calls
  ``scontrol requeue <array job>_<task>``; the requeued task reruns the same grid index and resumes.
- ``python recipes/run.py -m hydra/launcher=slurm ...`` (hydra-submitit-launcher): submitit owns
  it. Its job script asks for SIGUSR2 before the time limit; its handler resubmits the same job
  (up to ``max_num_timeout`` times) and exits. Lightning's auto-requeue is off on this path and
  its SIGTERM handler (which would end the run when Slurm signals a requeued job) is replaced by
  submitit's, which ignores SIGTERM as submitit intends. Before submitit's handler runs,
  ``ckpt/last.ckpt`` is saved, so the resubmitted job loses nothing.

Either handler, left alone, runs wherever the signal lands: mid-step, between the micro-batches
of one accumulated step, whose gradients a checkpoint does not hold. ``Preemption`` therefore
only notes the signal and runs the owner's handler at the next optimiser-step boundary (or at the
end of training), after the FLOP ledger and the data position have counted the step; under
several processes the ranks agree (any rank signalled) so they save together. It then ends
training at once by raising ``Preempted`` (``scaling.training.fit`` turns it into
``preempted=True``: no end-of-training checkpoint, which would mark the epoch finished, and no
evaluation; the requeued job does both).
"""

from __future__ import annotations

import os
import signal

from lightning.pytorch.callbacks import Callback


def requeue_owner() -> str | None:
    """"submitit" inside a submitit Slurm job, "lightning" in any other Slurm job Lightning's
    SLURM environment detects (srun/sbatch, not an interactive shell), else None."""
    from lightning.pytorch.plugins.environments import SLURMEnvironment
    if os.environ.get("SUBMITIT_EXECUTOR") == "slurm":
        return "submitit"
    return "lightning" if SLURMEnvironment.detect() else None


def plugins(owner: str | None) -> list:
    """The Trainer's cluster environment for the owner: auto-requeue on SIGUSR1 for Lightning's
    path, off for submitit's (which sends SIGUSR2 and requeues itself)."""
    if owner is None:
        return []
    from lightning.pytorch.plugins.environments import SLURMEnvironment
    if owner == "lightning":
        return [SLURMEnvironment(auto_requeue=True, requeue_signal=signal.SIGUSR1)]
    return [SLURMEnvironment(auto_requeue=False)]


def owner_signal(owner: str, env=os.environ) -> signal.Signals:
    if owner == "lightning":
        return signal.SIGUSR1
    return getattr(signal, f"SIG{env.get('SUBMITIT_PREEMPT_SIGNAL', 'USR2')}")


class Preempted(Exception):
    """Training stopped at a step boundary for a requeue; the checkpoint to resume from is saved."""


class Preemption(Callback):
    """Defer the requeue owner's signal handler to the next optimiser-step boundary."""

    def __init__(self, owner: str | None, last=None):
        """``last``: where the checkpoint is saved before submitit's handler runs (ckpt/last.ckpt;
        Lightning's own handler saves its requeue checkpoint itself)."""
        self.owner, self.last = owner, last
        self.pending = False
        self.preempted = False
        self._handler = None
        self._seen = 0
        # submitit installed its handlers before this process built the Trainer; keep its SIGTERM one
        self._sigterm = signal.getsignal(signal.SIGTERM) if owner == "submitit" else None

    def _note(self, signum, frame) -> None:
        print(f"\n[preempt] received {signal.Signals(signum).name}: saving and requeueing at the "
              "next optimiser-step boundary", flush=True)
        self.pending = True

    def on_train_start(self, trainer, pl_module) -> None:
        self._seen = trainer.global_step
        if self.owner is None:
            return
        sig = owner_signal(self.owner)
        handler = signal.getsignal(sig)
        if not callable(handler):  # nobody owns this signal here: nothing to defer
            return
        self._handler = (sig, handler)
        signal.signal(sig, self._note)
        if self._sigterm is not None and callable(self._sigterm):
            signal.signal(signal.SIGTERM, self._sigterm)

    def _act(self, trainer) -> None:
        sig, handler = self._handler
        self.preempted, self.pending = True, False
        print(f"[preempt] step {trainer.global_step}: handing over to {self.owner}'s requeue", flush=True)
        if self.owner == "submitit" and self.last is not None:
            trainer.save_checkpoint(str(self.last))
        handler(sig, None)  # Lightning: hpc_ckpt_N.ckpt + scontrol requeue; submitit: resubmit + exit
        raise Preempted(f"requeued at step {trainer.global_step}")

    def _agreed(self, trainer) -> bool:
        if trainer.world_size > 1:
            return bool(trainer.strategy.reduce_boolean_decision(self.pending, all=False))
        return self.pending

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._handler is None or trainer.global_step == self._seen:
            return  # no owner, or inside an accumulation window
        self._seen = trainer.global_step
        if self._agreed(trainer):
            self._act(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        if self._handler is not None and not self.preempted and self._agreed(trainer):
            self._act(trainer)
