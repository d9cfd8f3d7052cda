"""Preemption while training: the Slurm warning acted on at an optimiser-step boundary.

The process's guard (scaling/signals.py) owns the warning signal on both Slurm paths, from the
recipe's first line to its last. While the Trainer runs, it defers to ``Preemption``: a signal
landing mid-step, or between the micro-batches of one accumulated step (whose gradients no
checkpoint holds), is only noted. At the next optimiser-step boundary (after the FLOP ledger and
the data position have counted the step; at the end of training at the latest) the ranks agree
(any rank signalled), every rank takes part in saving ``ckpt/last.ckpt``, the guard requeues the
job (``scontrol requeue``, or submitit's resubmission), and training ends at once by raising
``Preempted`` (``scaling.training.fit`` returns ``preempted=True``: no evaluation; the requeued
job resumes from that checkpoint and evaluates).

Lightning's own SLURM auto-requeue is off on every path (``SLURMEnvironment(auto_requeue=False)``),
so one owner saves and requeues, wherever the signal lands. Under submitit, submitit's SIGTERM
handler (it ignores the SIGTERM Slurm sends a requeued job) is put back in place of Lightning's.
"""

from __future__ import annotations

import signal

from lightning.pytorch.callbacks import Callback

from scaling import signals
from scaling.signals import Preempted  # noqa: F401  (raised here, caught by scaling.training.fit)


def plugins(guard: signals.Guard | None) -> list:
    """The Trainer's cluster environment in a Slurm job (the guard's): Slurm's ranks and addresses,
    no auto-requeue (the guard and ``Preemption`` own it)."""
    if guard is None:
        return []
    from lightning.pytorch.plugins.environments import SLURMEnvironment
    return [SLURMEnvironment(auto_requeue=False)]


class Preemption(Callback):
    """Defer the guard's requeue to the next optimiser-step boundary, after saving ``last``."""

    def __init__(self, guard: signals.Guard | None, last):
        """``guard``: the process's (None outside Slurm: nothing to do); ``last``: ckpt/last.ckpt."""
        self.guard, self.last = guard, last
        self.pending = False
        self.preempted = False
        self._seen = 0
        # submitit installed its SIGTERM handler before this process built the Trainer: keep it
        owner = guard.owner if guard is not None else None
        self._sigterm = signal.getsignal(signal.SIGTERM) if owner == "submitit" else None

    def _note(self, signum) -> None:
        print(f"\n[preempt] received {signal.Signals(signum).name}: saving and requeueing at the "
              "next optimiser-step boundary", flush=True)
        self.pending = True

    def on_train_start(self, trainer, pl_module) -> None:
        self._seen = trainer.global_step
        if self.guard is None:
            return
        self.guard.defer_to(self._note)
        if self._sigterm is not None and callable(self._sigterm):
            signal.signal(signal.SIGTERM, self._sigterm)

    def _act(self, trainer, logged: bool = False) -> None:
        self.preempted, self.pending = True, False
        print(f"[preempt] step {trainer.global_step}: saving {self.last} and requeueing", flush=True)
        if not logged:  # Lightning logs a step's metrics after its batch-end hooks, which the raise below skips
            trainer._logger_connector.update_train_step_metrics()
        trainer.save_checkpoint(str(self.last), weights_only=False)
        self.guard.defer_to(None)
        ok = self.guard.requeue() if trainer.is_global_zero else True
        raise Preempted(0 if ok else 1)

    def _agreed(self, trainer) -> bool:
        if trainer.world_size > 1:
            return bool(trainer.strategy.reduce_boolean_decision(self.pending, all=False))
        return self.pending

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.guard is None or trainer.global_step == self._seen:
            return  # no owner, or inside an accumulation window
        self._seen = trainer.global_step
        if self._agreed(trainer):
            self._act(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.guard is None:
            return
        if not self.preempted and self._agreed(trainer):
            self._act(trainer, logged=True)
        self.guard.defer_to(None)

    def on_exception(self, trainer, pl_module, exception) -> None:
        if self.guard is not None:
            self.guard.defer_to(None)
