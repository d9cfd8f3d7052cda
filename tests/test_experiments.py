"""Every point of every experiment (recipes/conf/experiment/) composes as its launcher composes it
(``grid.index``), validates, and plans at least one step with the layers it names; a later stage's
``model.init_from`` names the earlier experiment's point of the same size."""

import pytest

from scaling import grid
from tests.conftest import CONF, compose_run

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml") if not p.stem.startswith("zeng_grid"))
"""All but the paper-scale grids on the user's MS MARCO files: tests/test_zeng_grid.py dry-runs each of
their points through the run's own checks, on a small folder with those files."""


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_point_of_every_experiment_plans(experiment):
    from scaling import start
    from scaling.checks import loss_needs, make_plan
    axes = grid.experiment_axes(experiment)
    for index, point in ([(i, p) for i, p in enumerate(grid.points(axes))] or [(None, {})]):
        cfg = compose_run([f"experiment={experiment}", *([f"grid.index={index}"] if index is not None else [])])
        for key, value in point.items():  # the point's values reached the configuration
            assert str(cfg.grid.point[key]) == value, (experiment, index, key)
        loss_needs(cfg)
        plan = make_plan(cfg)
        assert plan.max_steps >= 1
        earlier = start.check(cfg, build=False)
        if cfg.model.init_from:  # a later stage: the earlier experiment's point of this size
            name = cfg.model.init_from.rstrip("/").rsplit("/", 1)[-1]
            assert point["size"] in name, (experiment, index, cfg.model.init_from)
            assert earlier is None or "not trained yet" in earlier
