"""One run folder per launch: finished runs never overwritten, and a run resumes only itself.

The folder is ``run_dir`` when given. Otherwise it is named once per launch and every rank uses
that one name: a launcher's name for the launch when it has one (torchrun's rendezvous id, a
multi-task Slurm step), else the leader's choice, ``runs/<time>-<paradigm>-<loss>-<size>``,
which it hands to the ranks it starts through the environment (``launch.RUN_DIR_ENV``; Lightning's
DDP launcher copies the environment into each child). A rank that is not the leader and finds no
name refuses to invent its own.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from scaling import launch
from scaling.schema import ConfigError


class RunExistsError(FileExistsError):
    """The run folder holds a finished run (result.json) and overwrite is false."""


class RunMismatch(FileExistsError):
    """The run folder holds an unfinished run of another configuration and overwrite is false."""


RUN_ENTRIES = ("config.json", "budget.json", "ckpt", "logs", "checkpoint", "encoded", "index", "runs",
               "wandb", "result.json", "running.json", "hpc_ckpt_*.ckpt")
"""What a training run writes in its folder (scaling/experiment.py): what ``overwrite`` removes."""


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


def _flat(obj, prefix: str = "") -> dict:
    """Nested dicts and lists -> {dotted key: leaf value} (list items by index: loss.terms.0.weight)."""
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list) and any(isinstance(x, (dict, list)) for x in obj):
        items = ((str(i), x) for i, x in enumerate(obj))
    else:
        return {prefix: obj}
    out = {}
    for k, v in items:
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _flat_json(cfg: dict) -> dict:
    return _flat(json.loads(json.dumps(cfg, default=str)))  # as config.json holds it


def differing(recorded: dict, record: dict) -> dict[str, tuple]:
    """{dotted key: (recorded value, new value)} where a recorded configuration and a new one
    differ, but for keys that may change on resume (``config.RESUME_MAY_CHANGE``, a key or a
    prefix of keys). A key the record lacks (written by an older version) is not a difference."""
    from scaling.config import RESUME_MAY_CHANGE
    old, new = _flat_json(recorded), _flat_json(record)
    return {k: (old[k], v) for k, v in new.items() if k in old and old[k] != v
            and not any(k == f or k.startswith(f + ".") for f in RESUME_MAY_CHANGE)}


def recorded_config(path: Path) -> dict | None:
    try:
        return json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError):
        return None


def claim(run_dir: str | Path | None, stem: str, overwrite: bool = False, record: dict | None = None,
          env=os.environ) -> Path:
    """Resolve the folder and check it may be used, touching nothing: a finished run needs
    ``overwrite``; with ``record`` (a training run's configuration) an unfinished run in it must
    have the same configuration, or ``overwrite``."""
    path = resolve(None if run_dir is None else str(run_dir), stem, env)
    if finished(path) and not overwrite:
        raise RunExistsError(f"{path} holds a finished run (result.json); choose another "
                             "run_dir or pass overwrite=true to replace it")
    recorded = recorded_config(path) if record is not None else None
    if recorded is not None and not overwrite and not finished(path):
        diff = differing(recorded, record)
        if diff:
            shown = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in list(diff.items())[:8])
            more = f" (and {len(diff) - 8} more)" if len(diff) > 8 else ""
            raise RunMismatch(f"{path} holds an unfinished run of another configuration ({shown}{more}): "
                              "rerun it with its own settings to resume it, choose another run_dir, or pass "
                              "overwrite=true to replace it")
    return path


def clear(path: Path) -> list[str]:
    """Remove a training run's own entries (``RUN_ENTRIES``) from its folder; returns their names."""
    removed = []
    for pattern in RUN_ENTRIES:
        for entry in sorted(Path(path).glob(pattern)):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            removed.append(entry.name)
    return removed


def create(path: Path, overwrite: bool = False, record: dict | None = None) -> Path:
    """Create a claimed folder; with ``overwrite`` and ``record``, a finished run or one of another
    configuration in it is replaced (its entries removed) first."""
    if overwrite and record is not None:
        recorded = recorded_config(path)
        if finished(path) or (recorded is not None and differing(recorded, record)):
            removed = clear(path)
            print(f"[run] overwrite=true: removed {', '.join(removed)} from {path}", flush=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


def prepare(run_dir: str | Path | None, stem: str, overwrite: bool = False, record: dict | None = None,
            env=os.environ) -> Path:
    """``claim`` the folder, then ``create`` it."""
    return create(claim(run_dir, stem, overwrite, record, env), overwrite, record)


def resume_hint(path: Path, exc: BaseException | None = None) -> str:
    """What a stopped run prints: why it stopped, the checkpoint it resumes from, and the command."""
    from scaling import trainstate
    why = type(exc).__name__ if exc is not None else "stopped"
    last = trainstate.resume_path(path, quiet=True)
    where = f"resumes from {last}" if last is not None else "has no checkpoint yet and starts afresh"
    return f"\n[run] stopped ({why}); {path} {where} when the same run starts again: {command_line(path)}"


def command_line(path: Path) -> str:
    """The command that reruns this run into ``path``: the recipe and this job's Hydra overrides
    (called as a library, without Hydra: the same configuration with ``run_dir``)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else None
    except ImportError:
        overrides = None
    if overrides is None:
        return f"the same configuration with run_dir={path}"
    overrides = [o for o in overrides if not o.startswith("run_dir=")] + [f"run_dir={path}"]
    return " ".join(["python", "recipes/run.py", *overrides])


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
