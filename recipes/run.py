"""Train and evaluate one grid point (or a Hydra multirun grid with -m).

    python recipes/run.py                                  # the built-in default (dense, cl, pycode)
    python recipes/run.py paradigm=dense loss=cl size=tiny budget=steps run_dir=runs/smoke
    python recipes/run.py -m size=tiny,smollm2-135m        # a grid, one job per combination
    python recipes/run.py --help                           # groups, options and the composed config

Writes RUN_DIR/result.json: {"config", "metrics", "baseline_metrics", "reference_metrics",
"checkpoint", "budget", "timing_s"}. A bad key or value stops it with ``error: <key>: ...``
before any model code is imported.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scaling import signals  # noqa: E402

signals.own()  # from this line on, a Slurm warning signal requeues the task (scaling/signals.py)

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from scaling import cli  # noqa: E402

cli.register()


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(conf: DictConfig) -> None:
    with cli.errors():
        cli.bind_grid(conf)
        cfg = cli.parse_conf(conf)
        from scaling.experiment import run
        run(cfg)


if __name__ == "__main__":
    cli.run(main)
