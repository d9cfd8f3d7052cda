"""Grids of runs: index <-> grid point, the point's name and run folder, and the grid's progress.

A grid is an experiment config (``recipes/conf/experiment/<name>.yaml``) whose ``grid.axes`` map
a config group (paradigm, loss, size) or a dotted key (budget.flops) to its values. Point i is
the i-th combination, the last axis varying fastest. Every launcher reaches a point the same way:

- Hydra multirun, ``run.py -m experiment=X``: ``expand_argv`` adds one sweep override per axis;
- a Slurm array task or a sweep agent, ``run.py experiment=X grid.index=I``: ``expand_argv`` adds
  the overrides of point I;
- any launch with explicit overrides (a W&B agent's ``paradigm=dense loss=cl ...``) is named
  from the composed config (``point_of``).

A point may also bring settings of its own: ``grid.brings`` maps an axis and one of its values to
dotted keys and their values, set for every point with that value (distillation with one sampled
negative and a larger global batch, contrastive with the experiment's)::

    grid:
      axes: {loss: [cl, kd, cl+kd], size: [smollm2-l1, smollm2-l2]}
      brings:
        loss:
          kd: {data.n_negatives: 1, trainer.global_batch: 16}

Axes joined by commas bring settings to a combination of their values (Zeng et al.'s KD batch
depends on both the loss and the size)::

      brings:
        size,loss:
          "1b,margin_mse": {trainer.global_batch: 1024}

``cli.bind_grid`` applies them once the point is known, before the config is parsed, whichever
launcher reached the point; a key the command line sets (``data.n_negatives=2``) wins over what a
point brings. An axis or value ``brings`` names that ``grid.axes`` does not list, a brought key that
is itself an axis, and two values of one point bringing different values for one key are errors;
an unknown key fails as any unknown key does. The folder name is the point's alone (what it
brings does not rename it); ``grid.json`` lists what each point brings.

A point's run folder is ``<grid.root>/<grid.name>/<point name>``, named from the point, never the
clock, so a relaunch finds its finished points (skipped) and its interrupted ones (resumed from
their last checkpoint). ``<grid.root>/<grid.name>/grid.json`` lists every point for the report.
Nothing here imports torch.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parents[1] / "recipes" / "conf"
RUNNING = "running.json"
"""Marker a run folder holds while a process trains or evaluates it (host, pid, start)."""


def points(axes: dict[str, list]) -> list[dict[str, str]]:
    """Every combination of the axes' values, the last axis varying fastest."""
    keys = list(axes)
    return [dict(zip(keys, map(str, combo))) for combo in itertools.product(*(axes[k] for k in keys))]


def point(axes: dict[str, list], index: int) -> dict[str, str]:
    from scaling.schema import ConfigError
    every = points(axes)
    if not 0 <= index < len(every):
        raise ConfigError("grid.index", f"{index} is outside the grid's {len(every)} points (0..{len(every) - 1})")
    return every[index]


def name(pt: dict[str, str]) -> str:
    """A folder name from a point's values in axis order: group choices as they are, other keys
    as their last part and value (budget.flops=3e13 -> flops3e13, seed=1 -> seed1)."""
    parts = [v if _is_group(k) else f"{k.rsplit('.', 1)[-1]}{v}" for k, v in pt.items()]
    return "-".join(p.replace("/", "_").replace(" ", "") for p in parts)


def _is_group(key: str) -> bool:
    """A config group (a folder ``recipes/conf/<key>/``, or one defined in code: config.CODE_GROUPS),
    not a key (seed, budget.flops)."""
    from scaling.config import CODE_GROUPS
    return "." not in key and (key in CODE_GROUPS or (CONF_DIR / key).is_dir())


def run_dir(root: str, grid_name: str, pt: dict[str, str]) -> Path:
    return Path(root).expanduser() / grid_name / name(pt)


def experiment_axes(experiment: str, conf_dir: Path = CONF_DIR) -> dict[str, list]:
    """``grid.axes`` of ``recipes/conf/experiment/<experiment>.yaml``, read before Hydra composes,
    merged as Hydra merges them: an experiment listed in its ``defaults`` (``- cpu_grid``) gives
    its axes first, and the file's own axes replace or follow them. So a multirun sweeps every
    axis the composed config (and the grid's manifest) holds."""
    import yaml
    path = conf_dir / "experiment" / f"{experiment}.yaml"
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    axes: dict[str, list] = {}
    for entry in data.get("defaults") or []:
        if isinstance(entry, str) and entry != "_self_" and not entry.startswith("/"):
            axes.update(experiment_axes(entry, conf_dir))
    axes.update((data.get("grid") or {}).get("axes") or {})
    return axes


def override_value(arg: str, key: str) -> str | None:
    """The value a command-line override ``key=value`` (or ``+key=``, ``~key=``) gives ``key``, else None."""
    return arg.split("=", 1)[1] if arg.split("=", 1)[0].lstrip("+~") == key else None


def _with(argv: list[str], overrides: list[str]) -> list[str]:
    """``argv`` with ``overrides`` after its last override (``key=value``), so that Hydra's own
    options with a value (``--cfg job``) may follow: argparse takes overrides in one run only."""
    last = max((i for i, a in enumerate(argv) if "=" in a and not a.startswith("-")), default=0)
    return argv[:last + 1] + overrides + argv[last + 1:]


def expand_argv(argv: list[str], conf_dir: Path = CONF_DIR) -> list[str]:
    """Add the grid's overrides to a command line naming ``experiment=X``: with ``grid.index=I``
    point I's values, with ``-m`` one sweep per axis; axes the command line sets keep its value."""
    experiment = next((v for a in argv if (v := override_value(a, "experiment")) is not None), None)
    if experiment is None:
        return argv
    axes = experiment_axes(experiment, conf_dir)
    given = {a.split("=", 1)[0].lstrip("+~") for a in argv if "=" in a}
    free = {k: v for k, v in axes.items() if k not in given}
    index = next((v for a in argv if (v := override_value(a, "grid.index")) is not None), None)
    if index is not None and index != "null":
        chosen = point(axes, int(index))
        return _with(argv, [f"{k}={chosen[k]}" for k in free])
    if "-m" in argv or "--multirun" in argv:
        return _with(argv, [f"{k}={','.join(map(str, v))}" for k, v in free.items()])
    return argv


def _spelled(value, listed: list) -> str:
    """``value`` as the axis lists it: a composed 2.6e12 is the axis' "2.6e+12", so the point's
    name (and folder) is the manifest's; a value the axis does not list is kept as text."""
    for option in listed:
        if str(option) == str(value):
            return str(option)
        try:
            if float(option) == float(value):
                return str(option)
        except (TypeError, ValueError):
            continue
    return str(value)


def point_of(axes: dict[str, list], choices: dict[str, str], select) -> dict[str, str]:
    """The point a composed config stands for: each axis' group choice, or its key's value
    (``select(key)``), spelled as the axis lists it."""
    return {key: _spelled(choices[key] if key in choices else select(key), listed) for key, listed in axes.items()}


def _listed(value, listed: list) -> bool:
    return any(str(option) == str(value) or _same_number(option, value) for option in listed)


def _same_number(a, b) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def _axes_of(axis: str) -> list[str]:
    """``"size,loss"`` -> ``["size", "loss"]``: the axes a ``grid.brings`` entry conditions on."""
    return [a.strip() for a in str(axis).split(",")]


def _values_of(value) -> list[str]:
    """``"1b,margin_mse"`` -> ``["1b", "margin_mse"]``: one value per joined axis."""
    return [v.strip() for v in str(value).split(",")]


def _matches(axes: dict[str, list], axis: str, value, pt: dict[str, str]) -> bool:
    """Whether point ``pt`` has ``value`` on ``axis`` (joined axes: every one of the joined values)."""
    names, values = _axes_of(axis), _values_of(value)
    return len(names) == len(values) and all(
        a in pt and _spelled(v, axes.get(a, [])) == pt[a] for a, v in zip(names, values))


def check_brings(axes: dict[str, list], brings: dict | None) -> None:
    """Refuse a ``grid.brings`` naming an axis ``axes`` lacks or a value its axis does not list,
    bringing an axis' own key, or giving one point two values for one key (ConfigError, grid.brings)."""
    from scaling.schema import ConfigError
    for axis, by_value in (brings or {}).items():
        names = _axes_of(axis)
        for a in names:
            if a not in axes:
                raise ConfigError("grid.brings", f"axis {a!r} is not in grid.axes (axes: {', '.join(map(str, axes))})")
        if not isinstance(by_value, dict):
            raise ConfigError(f"grid.brings.{axis}", "expected a mapping of the axis' values to settings")
        for value, settings in by_value.items():
            values = _values_of(value)
            if len(values) != len(names):
                raise ConfigError(f"grid.brings.{axis}", f"{str(value)!r} has {len(values)} values for "
                                                         f"{len(names)} axes ({', '.join(names)})")
            for a, v in zip(names, values):
                if not _listed(v, axes[a]):
                    raise ConfigError("grid.brings", f"axis {a!r} has no value {v!r} "
                                                     f"(its values: {', '.join(map(str, axes[a]))})")
            if not isinstance(settings, dict):
                raise ConfigError(f"grid.brings.{axis}.{value}", "expected a mapping of dotted keys to values")
            for key in settings:
                if key in axes:
                    raise ConfigError(f"grid.brings.{axis}.{value}.{key}",
                                      f"{key} is an axis of the grid: the point sets it")
    for pt in points(axes):
        brought(axes, brings, pt)


def brought(axes: dict[str, list], brings: dict | None, pt: dict[str, str]) -> dict:
    """The settings point ``pt`` brings ({dotted key: value}), in axis order. Two of its values
    bringing different values for one key is a ConfigError."""
    from scaling.schema import ConfigError
    out, by = {}, {}
    for axis, by_value in (brings or {}).items():
        for value, settings in (by_value or {}).items():
            if _matches(axes, axis, value, pt):
                where = "+".join(f"{a}={pt[a]}" for a in _axes_of(axis))
                for key, setting in settings.items():
                    if key in out and out[key] != setting:
                        raise ConfigError("grid.brings", f"{by[key]} and {where} both bring {key} "
                                                         f"({out[key]!r} vs {setting!r}) to point {name(pt)}")
                    out[key], by[key] = setting, where
    return out


def write_manifest(root: str, grid_name: str, axes: dict[str, list], brings: dict | None = None) -> Path:
    """``<root>/<name>/grid.json``: every point with its index, folder name and the settings it
    brings (``grid.brings``; what the report and a status check compare the run folders with).
    Rewritten only when it changes."""
    from scaling.io import write_json_atomic
    path = Path(root).expanduser() / grid_name / "grid.json"
    data = {"experiment": grid_name, "axes": {k: list(map(str, v)) for k, v in axes.items()},
            "points": [{"index": i, "name": name(p), "point": p, "brings": brought(axes, brings, p)}
                       for i, p in enumerate(points(axes))]}
    if not path.exists() or json.loads(path.read_text()) != data:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, data)
    return path


TRAINING_IGNORES = ("eval", "grid.point")
"""Keys two points of a grid may differ in and still train the same model: how it is evaluated
(``eval.*``, but for the learning curve, which training records) and the point's own name."""
TRAINING_KEEPS = ("eval.every_n_steps", "eval.curve_split")


def trained_twin(run_dir: Path, record: dict) -> Path | None:
    """A finished point of the same grid whose training is this point's (its configuration differs
    only in ``TRAINING_IGNORES`` and what a resume may change) and whose end-of-training checkpoint
    is whole: its folder, else None. Points that differ only in evaluation (Luo et al.'s documents
    cut at 256 ... 8192 tokens) train once."""
    from scaling import trainstate
    from scaling.rundir import differing, recorded_config
    run_dir = Path(run_dir)
    if not run_dir.parent.exists():
        return None
    for other in sorted(run_dir.parent.iterdir()):
        if other == run_dir or not (other / "result.json").exists():
            continue
        recorded = recorded_config(other)
        if recorded is None or not trainstate.complete(other / "ckpt" / "last.ckpt"):
            continue
        diff = [k for k in differing(recorded, record)
                if k in TRAINING_KEEPS or not any(k == f or k.startswith(f + ".") for f in TRAINING_IGNORES)]
        if not diff:
            return other
    return None


def _trained_in(folder: Path) -> str | None:
    """The point a folder's training came from (``ckpt/trained_in.json``), None if it trained itself."""
    marker = Path(folder) / "ckpt" / "trained_in.json"
    return json.loads(marker.read_text())["trained_in"] if marker.exists() else None


def share_training(run_dir: Path, record: dict) -> str | None:
    """Before a point trains: when it has no checkpoint of its own and a finished twin
    (``trained_twin``) trained the same model, give it the twin's end-of-training state as
    ``ckpt/last.ckpt`` (a hard link where the file system allows, else a copy; placed atomically:
    a later save replaces the name, never the twin's file), so that training resumes at its last
    step and only the evaluation runs. ``ckpt/trained_in.json`` names the point that trained (a
    twin that was itself given its state names its own origin), written first, so that a rerun
    after a kill still knows. Returns that point's name (the result's ``trained_in``), or None
    when this point trains itself."""
    import os
    import shutil

    from scaling import trainstate
    from scaling.io import write_atomic, write_json_atomic
    run_dir = Path(run_dir)
    if trainstate.resume_path(run_dir, quiet=True) is not None:  # its own training, or a given state, goes on
        return _trained_in(run_dir)
    twin = trained_twin(run_dir, record)
    if twin is None:
        return None
    origin = _trained_in(twin) or twin.name
    write_json_atomic(run_dir / "ckpt" / "trained_in.json", {"trained_in": origin})
    source, target = twin / "ckpt" / "last.ckpt", run_dir / "ckpt" / "last.ckpt"
    link = target.with_name(f".{target.name}.link{os.getpid()}")
    try:
        link.unlink(missing_ok=True)
        os.link(source, link)
        os.replace(link, target)
    except OSError:  # another file system, or none that links: copy
        link.unlink(missing_ok=True)
        with open(source, "rb") as src:
            write_atomic(target, lambda f: shutil.copyfileobj(src, f), binary=True)
    print(f"[grid] {run_dir.name} trains as {origin} did (they differ only in evaluation): "
          f"starting from its end of training, {source}", flush=True)
    return origin


HEARTBEAT_S = 30.0
"""How often a running process touches its marker; a marker untouched for ``STALE_AFTER_S`` is a
dead process's (killed, or its node lost), whichever machine wrote it."""
STALE_AFTER_S = 4 * HEARTBEAT_S


def _alive(marker: Path, now: float | None = None) -> bool:
    """A live process's marker: touched within STALE_AFTER_S, and on this host its pid runs."""
    import time
    try:
        info = json.loads(marker.read_text())
        beat = marker.stat().st_mtime
    except (OSError, ValueError):
        return False
    if (time.time() if now is None else now) - beat > STALE_AFTER_S:
        return False
    if info.get("host") != socket.gethostname():
        return True  # another machine's process, still beating
    try:
        os.kill(int(info["pid"]), 0)
    except (ProcessLookupError, ValueError, KeyError):
        return False
    except PermissionError:
        return True
    return True


def status(root: str, grid_name: str, axes: dict[str, list]) -> dict[str, list[str]]:
    """{"done", "running", "interrupted", "left"}: point names by the state of their folders
    (result.json; a live running marker; a folder without either, resumable; no folder)."""
    out = {"done": [], "running": [], "interrupted": [], "left": []}
    for p in points(axes):
        folder = run_dir(root, grid_name, p)
        if (folder / "result.json").exists():
            state = "done"
        elif (folder / RUNNING).exists() and _alive(folder / RUNNING):
            state = "running"
        elif folder.exists():
            state = "interrupted"
        else:
            state = "left"
        out[state].append(name(p))
    return out


def describe_status(grid_name: str, state: dict[str, list[str]]) -> str:
    n = sum(len(v) for v in state.values())
    return (f"[grid] {grid_name}: {len(state['done'])} of {n} done, {len(state['running'])} running, "
            f"{len(state['interrupted'])} interrupted (resumable), {len(state['left'])} left")


class Running:
    """A run folder's marker (``running.json``: host, pid, start, Slurm job) and its heartbeat, a
    daemon thread that touches it every HEARTBEAT_S; ``stop()`` ends both."""

    def __init__(self, folder: Path, beat_s: float = HEARTBEAT_S):
        import threading
        import time

        from scaling.io import write_json_atomic
        self.path = Path(folder) / RUNNING
        write_json_atomic(self.path, {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
                                      "slurm_job": os.environ.get("SLURM_JOB_ID")})
        self._stop = threading.Event()
        self._beat_s = beat_s
        self._thread = threading.Thread(target=self._beat, name="running-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self._beat_s):
            try:
                os.utime(self.path)
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()
        self.path.unlink(missing_ok=True)


def mark_running(folder: Path) -> Running:
    """Write the running marker and start its heartbeat (the caller stops it however the run ends)."""
    return Running(folder)


def known_experiments(conf_dir: Path = CONF_DIR) -> list[str]:
    """The experiment configs that are grids (their yaml has ``grid.axes``), sorted."""
    return sorted(p.stem for p in (conf_dir / "experiment").glob("*.yaml") if experiment_axes(p.stem, conf_dir))


HELP_OUTPUT = """\
output, one line per point, then a summary:
     I  NAME                                             STATE
  I is the point's index (grid.index=I, a Slurm array task id), NAME its run folder
  GRID_ROOT/EXPERIMENT/NAME, STATE one of done (result.json), running (a live running.json),
  interrupted (a folder with neither: it resumes from its last checkpoint) or left (no folder).
  Then the command that resumes the interrupted points (if any), "[grid] EXPERIMENT: N of M
  done, ...", and last "--array=0-(M-1)", the Slurm array range covering the grid.

examples:
  python -m scaling.grid cpu_grid
  python -m scaling.grid cpu_budget /scratch/runs"""


def parser():
    """``python -m scaling.grid``'s command line (what ``--help`` prints)."""
    import argparse
    parse = argparse.ArgumentParser(
        prog="python -m scaling.grid", epilog=HELP_OUTPUT, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="List a grid's points and where each stands, from recipes/conf/experiment/\n"
                    "EXPERIMENT.yaml (its grid.axes) and the run folders under GRID_ROOT/EXPERIMENT/.\n"
                    "Writes nothing.")
    parse.add_argument("experiment", metavar="EXPERIMENT",
                       help="a grid: an experiment config with grid.axes (e.g. cpu_grid)")
    parse.add_argument("root", metavar="GRID_ROOT", nargs="?", default="runs",
                       help="the folder holding the grids' run folders, as grid.root (default: runs)")
    return parse


def _fail(message: str) -> None:
    import sys
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str] | None = None, conf_dir: Path = CONF_DIR) -> None:
    """``python -m scaling.grid EXPERIMENT [GRID_ROOT]``: the grid's points (index, folder, state) and
    the Slurm array range that covers them. An unknown experiment, or one that is not a grid,
    exits with status 2 and ``error: ...``."""
    args = parser().parse_args(argv)
    experiment, root = args.experiment, args.root
    path, known = conf_dir / "experiment" / f"{experiment}.yaml", ", ".join(known_experiments(conf_dir))
    if not path.exists():
        _fail(f"unknown experiment {experiment!r} (known: {known})")
    axes = experiment_axes(experiment, conf_dir)
    if not axes:
        _fail(f"experiment {experiment!r} is not a grid: {path} has no grid.axes (grids: {known})")
    state = status(root, experiment, axes)
    where = {n: s for s, names in state.items() for n in names}
    every = points(axes)
    for i, p in enumerate(every):
        print(f"{i:4d}  {name(p):<48} {where[name(p)]}")
    stopped = [i for i, p in enumerate(every) if where[name(p)] == "interrupted"]
    if stopped:
        ids, rooted = ",".join(map(str, stopped)), "" if root == "runs" else f" grid.root={root}"
        print(f"interrupted points resume where they stopped: python recipes/run.py experiment={experiment}{rooted} "
              f"grid.index=I (I in {ids}), or sbatch --array={ids} --export=ALL,EXPERIMENT={experiment} "
              f"recipes/slurm/grid.sbatch{rooted}")
    print(describe_status(experiment, state))
    print(f"--array=0-{len(every) - 1}")


if __name__ == "__main__":
    main()
