"""W&B sweep files, offline: each validates and expands (the `sweeps` package, as W&B's server
does), every point's command line is the one an agent builds (wandb's own argument builder), and
each composes through Hydra to exactly one point of the experiment's grid."""

from pathlib import Path

import pytest
import yaml

from conftest import ROOT, compose_run
from scaling import grid

SWEEPS = sorted((ROOT / "recipes" / "sweeps").glob("*.yaml"))


def expand(sweep: dict) -> list[dict]:
    """Every run a grid sweep issues, in order (each a {param: {"value": v}} mapping)."""
    import sweeps
    done = []
    while (run := sweeps.next_run(sweep, done)) is not None:
        run.state = sweeps.RunState.finished
        done.append(run)
    return [run.config for run in done]


def agent_argv(sweep: dict, args: dict) -> list[str]:
    """The argv `wandb agent` starts for one run (wandb_agent.Agent._command_run's substitution)."""
    from wandb.sdk.launch.sweeps import utils
    command = utils.create_sweep_command(list(sweep["command"]))
    macros = utils.create_sweep_command_args({"args": args})
    macros.update(interpreter=["python"], program=[sweep["program"]], env=["/usr/bin/env"])
    argv = []
    for part in map(str, command):
        argv += macros.get(part[2:-1]) or [] if part.startswith("${") and part.endswith("}") else [part]
    return argv


def numbers_are_numbers(node, where="") -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            numbers_are_numbers(v, f"{where}.{k}")
    elif isinstance(node, list):
        for v in node:
            numbers_are_numbers(v, where)
    elif isinstance(node, str):
        try:
            float(node)
        except ValueError:
            return
        raise AssertionError(f"{where}: {node!r} is a string (write 1.0e+18, not 1.0e18)")


def test_the_cpu_grids_have_sweep_files():
    assert {p.stem for p in SWEEPS} >= {"cpu_grid", "cpu_budget"}


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_expands_and_every_agent_command_composes_to_its_grid_point(path: Path):
    import sweeps
    sweep = yaml.safe_load(path.read_text())
    assert sweeps.schema_violations_from_proposed_config(sweep) == []
    assert sweep["method"] == "grid" and sweep["program"] == "recipes/run.py"
    assert sweep["command"] == ["${env}", "${interpreter}", "${program}", "${args_no_hyphens}"]
    numbers_are_numbers(sweep["parameters"])
    experiment = sweep["parameters"]["experiment"]["value"]
    axes = grid.experiment_axes(experiment)
    swept = {k for k, v in sweep["parameters"].items() if "values" in v}
    assert swept == set(axes), f"{path.name} sweeps {sorted(swept)}, the grid's axes are {sorted(axes)}"

    runs = expand(sweep)
    names = []
    for args in runs:
        argv = agent_argv(sweep, args)
        assert argv[:3] == ["/usr/bin/env", "python", "recipes/run.py"]
        assert all("=" in a and not a.startswith("-") for a in argv[3:])  # Hydra key=value overrides
        cfg = compose_run(argv[3:])
        assert cfg.grid.name == experiment and cfg.logger.name == "wandb"
        assert cfg.run_dir == str(grid.run_dir("runs", experiment, cfg.grid.point))
        names.append(grid.name(cfg.grid.point))
    # each grid point exactly once, named (and foldered) as the grid names it
    assert sorted(names) == sorted(grid.name(p) for p in grid.points(axes))
