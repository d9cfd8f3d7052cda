"""One run folder per launch, and finished runs never overwritten.

The folder is ``run_dir`` when given. Otherwise it is named once per launch and every rank uses
that one name: a launcher's name for the launch when it has one (torchrun's rendezvous id, a
multi-task Slurm step), else the leader's choice, ``runs/<time>-<paradigm>-<loss>-<size>``,
which it hands to the ranks it starts through the environment (``launch.RUN_DIR_ENV``; Lightning's
DDP launcher copies the environment into each child). A rank that is not the leader and finds no
name refuses to invent its own.
"""

from __future__ import annotations

import datetime as _dt
import os
from contextlib import contextmanager
from pathlib import Path

from scaling import launch
from scaling.schema import ConfigError


class RunExistsError(FileExistsError):
    """The run folder holds a finished run (result.json) and overwrite is false."""


def finished(run_dir: Path) -> bool:
    return (Path(run_dir) / "result.json").exists()


def _fresh(stem: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir, n = Path("runs") / f"{stamp}-{stem}", 1
    while run_dir.exists():
        run_dir, n = Path("runs") / f"{stamp}-{stem}-{n}", n + 1
    return run_dir


def resolve(run_dir: str | None, stem: str, env=os.environ) -> Path:
    """The launch's run folder: ``run_dir``, else the name handed down or given by the launcher,
    else (the leader only) a fresh ``runs/<time>-<stem>``."""
    if run_dir is not None:
        return Path(run_dir).expanduser()
    if env.get(launch.RUN_DIR_ENV):
        return Path(env[launch.RUN_DIR_ENV])
    name = launch.launch_name(env)
    if name is not None:
        return Path("runs") / f"{name}-{stem}"
    if not launch.is_leader(env):
        raise ConfigError("run_dir", "this rank was started without its launch's run folder: set "
                          "run_dir=DIR so that every rank writes to the same one")
    return _fresh(stem)


def prepare(run_dir: str | None, stem: str, overwrite: bool = False, env=os.environ) -> Path:
    """Resolve the folder, refuse a finished run unless ``overwrite``, create it."""
    path = resolve(run_dir, stem, env)
    if finished(path) and not overwrite:
        raise RunExistsError(f"{path} holds a finished run (result.json); choose another "
                             "run_dir or pass overwrite=true to replace it")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def handed_down(path: Path, env=os.environ):
    """While the block runs, ranks this process starts inherit ``path`` as their run folder; the
    variable is restored after, so the next job of a multirun in this process names its own."""
    old = env.get(launch.RUN_DIR_ENV)
    env[launch.RUN_DIR_ENV] = str(Path(path).resolve())
    try:
        yield
    finally:
        if old is None:
            env.pop(launch.RUN_DIR_ENV, None)
        else:
            env[launch.RUN_DIR_ENV] = old
