"""Progress of a Slurm multirun while hydra-submitit-launcher waits for it.

``python recipes/run.py -m hydra/launcher=slurm ...`` submits one array job, then blocks on the
tasks' results, silent for hours. ``SlurmProgress`` (a Hydra callback, ``hydra.callbacks`` in
recipes/conf/config.yaml) starts a thread when such a multirun starts: it finds the submitted tasks
in ``<hydra.sweep.dir>/.submitit/<job>_<task>/`` (``<job>/`` for one task), asks ``squeue`` which are pending or running, and
for a grid (``grid.name``) reads its points' folders (scaling/grid.py); it prints a line whenever
that changes, and at least every ``every_s``:

    [slurm] 30 tasks (job 4321): 3 finished, 2 running, 25 pending | cpu_grid: 3 of 30 done, 2 running, 25 left

Any other launcher (the local one runs the jobs in this process, printing their own output) is
left alone. Nothing here runs inside a task.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path

from hydra.experimental.callback import Callback

TASK_DIR = re.compile(r"^\d+(_\d+)?$")
"""A task's folder: ``<job>_<task>`` in an array, ``<job>`` for a single job."""


def submitted(folder: Path) -> list[str]:
    """The tasks submitit made folders for."""
    try:
        return sorted((p.name for p in Path(folder).iterdir() if TASK_DIR.match(p.name)),
                      key=lambda n: tuple(int(x) for x in n.split("_")))
    except OSError:
        return []


def queued(tasks: list[str]) -> dict[str, str]:
    """{task: PENDING|RUNNING|...} for the tasks still in Slurm's queue (a finished task is not)."""
    jobs = sorted({t.split("_")[0] for t in tasks})
    if not jobs:
        return {}
    out = subprocess.run(["squeue", "-h", "-r", "-j", ",".join(jobs), "-o", "%i %T"], capture_output=True,
                         text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip() or f"squeue exit {out.returncode}")
    return dict(line.split(None, 1) for line in out.stdout.splitlines() if line.strip())


def launched(axes: dict[str, list], overrides: list[str]) -> dict[str, list]:
    """The grid's axes as this command line launches them: an axis it sets (``budget.steps=450``,
    ``size=l1,l2``) takes its values, so the grid line counts the points the tasks run, a value
    the grid does not list included (scaling.grid.expand_argv keeps such a value)."""
    from scaling.grid import override_value
    out = dict(axes)
    for key in axes:
        given = [v for o in overrides if (v := override_value(o, key)) is not None]
        if given:  # the last one wins, as in Hydra
            out[key] = given[-1].split(",")
    return out


def describe(tasks: list[str], states: dict[str, str], grid_line: str = "") -> str:
    running = sum(states.get(t) in ("RUNNING", "COMPLETING") for t in tasks)
    pending = sum(t in states for t in tasks) - running
    jobs = ",".join(sorted({t.split("_")[0] for t in tasks}))
    line = (f"{len(tasks)} tasks (job {jobs}): {len(tasks) - running - pending} finished, {running} running, "
            f"{pending} pending")
    return f"{line} | {grid_line}" if grid_line else line


class SlurmProgress(Callback):
    def __init__(self, poll_s: float | None = None, every_s: float = 600.0):
        """``poll_s``: seconds between looks (null: SCALING_PROGRESS_POLL_S, else 15)."""
        self.poll_s = float(poll_s if poll_s is not None else os.environ.get("SCALING_PROGRESS_POLL_S", 15))
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = None

    def __getstate__(self) -> dict:
        """The launcher pickles Hydra's callbacks into every task: the thread stays here."""
        return {"poll_s": self.poll_s, "every_s": self.every_s}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def on_multirun_start(self, config, **kwargs) -> None:
        from omegaconf import OmegaConf
        if not str(OmegaConf.select(config, "hydra.launcher._target_") or "").endswith(".SlurmLauncher"):
            return
        folder = Path(str(config.hydra.sweep.dir)) / ".submitit"
        grid = None
        if OmegaConf.select(config, "grid.name"):
            axes = launched(OmegaConf.to_container(config.grid.axes, resolve=True),
                            list(OmegaConf.select(config, "hydra.overrides.task") or []))
            grid = (str(config.grid.root), str(config.grid.name), axes)
        self._thread = threading.Thread(target=self._watch, args=(folder, grid), name="slurm-progress", daemon=True)
        self._thread.start()

    def _grid_line(self, grid) -> str:
        if grid is None:
            return ""
        from scaling import grid as grids
        root, name, axes = grid
        state = grids.status(root, name, axes)
        n = sum(map(len, state.values()))
        return (f"{name}: {len(state['done'])} of {n} done, {len(state['running'])} running, "
                f"{len(state['interrupted']) + len(state['left'])} left")

    def _watch(self, folder: Path, grid) -> None:
        last, shown_at = None, 0.0
        while not self._stop.wait(self.poll_s):
            tasks = submitted(folder)
            if not tasks:
                continue
            try:
                line = describe(tasks, queued(tasks), self._grid_line(grid))
            except Exception as e:  # squeue unreachable for a moment: say so, keep watching
                line = f"state unknown ({type(e).__name__}: {e})"
            if line != last or time.time() - shown_at >= self.every_s:
                print(f"[slurm] {line}", flush=True)
                last, shown_at = line, time.time()

    def on_multirun_end(self, config, **kwargs) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=10)
        print("[slurm] every task has returned", flush=True)
