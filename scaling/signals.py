"""The run's Slurm warning signal, owned from a recipe's first line to its last.

Slurm warns a job before its time limit (or a preemption) with a signal: SIGUSR1 on the
``sbatch recipes/slurm/*.sbatch`` path (``--signal=USR1@90``), submitit's SIGUSR2 under
``hydra/launcher=slurm``. Left to its default action the signal kills the task, Slurm marks it
FAILED and never requeues it. ``own()``, the first call of every recipe (before Hydra, torch or
a model is imported), installs one handler for the whole process:

- while training (``defer_to`` was called by the Preemption callback, scaling/preemption.py) it
  only notes the signal: the callback saves ``ckpt/last.ckpt`` at the next optimiser-step
  boundary, then calls ``requeue()`` and ends training;
- anywhere else (imports, model loading, the reference systems, evaluation, the teacher's
  scoring) it requeues at once and raises ``Preempted``: nothing durable is lost, since every
  output is written atomically and evaluation keeps its finished corpus blocks (the rerun
  encodes only the missing ones); the ``finally`` blocks of the run remove its running marker.

``requeue()`` is the owner's: on the sbatch path the leader calls ``scontrol requeue`` for the job
(``<array job>_<task>`` for an array task) and the task comes back with the same command line; under
submitit, submitit's own handler (installed before this process ran any of ours) re-pickles the
submission, requeues it and exits. Outside a Slurm batch job nothing is installed.

On the sbatch path the guard also takes SIGTERM (``scancel``, a time limit reached): the run stops
by raising ``Terminated``, so its ``finally`` blocks remove the running marker and it prints how to
resume; once the job is requeued, the SIGTERM Slurm then sends is ignored so the process can end
cleanly. (Under submitit, submitit's own SIGTERM handler stays: it ignores the signal.)

Nothing here imports torch or Lightning.
"""

from __future__ import annotations

import os
import signal
import subprocess

from scaling import launch

INTERACTIVE = ("bash", "interactive")
"""SLURM_JOB_NAME of an interactive allocation (``salloc``/``srun --pty bash``): no requeue there.
The same rule as Lightning's ``SLURMEnvironment.detect`` (tests/test_preemption.py checks that)."""


class Preempted(SystemExit):
    """The run stopped for a requeue; the checkpoint to resume from (if any) is saved. A
    SystemExit, so that ``except Exception`` never swallows it and an uncaught one prints no
    traceback: exit status 0 when the requeue went out, 1 when it failed."""


class Terminated(SystemExit):
    """SIGTERM (``scancel``, a time limit reached, ``kill``): the run stops where it is, its
    ``finally`` blocks run (the running marker goes) and it says how to resume. Exit status 143."""


def requeue_owner(env=os.environ) -> str | None:
    """"submitit" inside a submitit Slurm job; "slurm" in any other Slurm batch or srun task;
    None outside Slurm and in an interactive allocation."""
    if env.get("SUBMITIT_EXECUTOR") == "slurm":
        return "submitit"
    if "SLURM_NTASKS" in env and env.get("SLURM_JOB_NAME") not in INTERACTIVE:
        return "slurm"
    return None


def owner_signal(owner: str, env=os.environ) -> signal.Signals:
    """The signal Slurm sends the owner's jobs: USR1 from the templates, submitit's own (USR2)."""
    if owner == "submitit":
        return getattr(signal, f"SIG{env.get('SUBMITIT_PREEMPT_SIGNAL', 'USR2')}")
    return signal.SIGUSR1


def job_id(env=os.environ) -> str:
    """What ``scontrol requeue`` takes: ``<array job>_<task>`` in an array, else the job id."""
    if env.get("SLURM_ARRAY_JOB_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env["SLURM_JOB_ID"]


class Guard:
    """The process's handler of the owner's signal (see the module docstring)."""

    def __init__(self, owner: str, env=os.environ):
        self.owner, self.env = owner, env
        self.signum = owner_signal(owner, env)
        self.previous = signal.getsignal(self.signum)  # submitit's handler on its path
        self.deferred = None
        self.requeued = False
        self._asking = False  # while scontrol runs: Slurm's SIGTERM for the requeue may come first
        signal.signal(self.signum, self._on_signal)
        if owner != "submitit":  # submitit keeps its own SIGTERM handler (it ignores the signal)
            signal.signal(signal.SIGTERM, self._on_term)

    def _on_signal(self, signum, frame) -> None:
        if self.deferred is not None:
            self.deferred(signum)
            return
        print(f"\n[preempt] received {signal.Signals(signum).name} outside training: requeueing now "
              "(finished outputs are kept; the rerun goes on from them)", flush=True)
        raise Preempted(0 if self.requeue() else 1)

    def _on_term(self, signum, frame) -> None:
        if self.requeued or self._asking:  # Slurm ends a requeued job with SIGTERM: let this process leave
            return
        print("\n[run] received SIGTERM: stopping", flush=True)
        raise Terminated(143)

    def defer_to(self, note) -> None:
        """While training: ``note(signum)`` instead of an immediate requeue (None: immediate again)."""
        self.deferred = note

    def requeue(self) -> bool:
        """Requeue this job once; True when it went out (or this rank leaves it to the leader). A
        failed request is said and returns False: the task then ends failed, its checkpoint kept."""
        if self.requeued:
            return True
        if self.owner == "submitit":
            self.requeued = True
            if callable(self.previous):
                self.previous(self.signum, None)  # checkpoints the submission, requeues, sys.exit(-1)
            return True
        if not launch.is_leader(self.env):
            self.requeued = True
            return True
        job = job_id(self.env)
        self._asking = True
        try:
            code = subprocess.call(["scontrol", "requeue", job])
        except FileNotFoundError:
            code = 127
        finally:
            self._asking = False
        print(f"[preempt] scontrol requeue {job}: {'done' if code == 0 else f'failed (exit {code})'}", flush=True)
        self.requeued = code == 0
        return self.requeued


_guard: Guard | None = None


def own(env=os.environ) -> Guard | None:
    """Install the process's guard once (a no-op outside Slurm); returns it."""
    global _guard
    if _guard is None:
        owner = requeue_owner(env)
        if owner is not None:
            _guard = Guard(owner, env)
    return _guard


def guard() -> Guard | None:
    return _guard


def requeued() -> bool:
    """Whether this process has requeued its job (it is on its way out: no failure, no resume hint)."""
    return _guard is not None and _guard.requeued


def release() -> None:
    """Give the signal back to what held it before ``own`` (tests; a process that stops owning it)."""
    global _guard
    if _guard is not None:
        signal.signal(_guard.signum, _guard.previous if _guard.previous is not None else signal.SIG_DFL)
        if _guard.owner != "submitit":
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _guard = None

