"""Train and evaluate one grid point (or a Hydra multirun grid with -m).

    python recipes/run.py                                  # the built-in default (dense, cl, pycode)
    python recipes/run.py paradigm=dense loss=cl size=tiny budget=steps run_dir=runs/smoke
    python recipes/run.py -m size=tiny,smollm2-135m        # a grid, one job per combination
    python recipes/run.py --help                           # groups, options and the composed config

Writes RUN_DIR/result.json: {"config", "metrics", "baseline_metrics", "checkpoint", "budget"}.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scaling.config import ConfigError, from_hydra  # noqa: E402


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(conf: DictConfig) -> None:
    cfg = from_hydra(conf)
    from scaling.data.formats import FormatError
    from scaling.experiment import RunExistsError, run
    from scaling.index.encode import StoreMismatch
    try:
        run(cfg)
    except (ConfigError, RunExistsError, FormatError, FileNotFoundError, StoreMismatch) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
