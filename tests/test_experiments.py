"""Every point of every experiment (recipes/conf/experiment/) composes as its launcher composes it
(``grid.index``), validates, and plans at least one step with the layers it names; a later stage's
``model.init_from`` names the earlier experiment's point of the same size."""

from pathlib import Path

import pytest

from scaling import grid
from tests.conftest import CONF, compose_run

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
MSMARCO = str(Path(__file__).parent / "fixtures" / "msmarco")
FILES = {"zeng_grid": [f"data.path={MSMARCO}", "data.negatives=file", "data.negatives_file=triples.jsonl",
                       "data.teacher_scores=scores.tsv"]}
"""What an experiment on a user's own files needs named to compose (tests/test_zeng_grid.py reads them)."""
FILES["zeng_grid_paper"] = FILES["zeng_grid"]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_point_of_every_experiment_plans(experiment):
    from scaling import start
    from scaling.checks import loss_needs, make_plan
    axes = grid.experiment_axes(experiment)
    for index, point in ([(i, p) for i, p in enumerate(grid.points(axes))] or [(None, {})]):
        cfg = compose_run([f"experiment={experiment}", *([f"grid.index={index}"] if index is not None else []),
                           *FILES.get(experiment, [])])
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
