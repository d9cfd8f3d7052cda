"""Evaluate a trained checkpoint on a dataset's splits.

    python recipes/evaluate.py checkpoint=RUN/checkpoint data=beir data.path=DIR run_dir=OUT

Writes OUT/result.json of the same shape as run.py's (metrics, and the untrained backbone's
numbers as baseline_metrics unless eval.baseline=false).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scaling.config import ConfigError  # noqa: E402


@hydra.main(config_path="conf", config_name="evaluate", version_base="1.3")
def main(conf: DictConfig) -> None:
    from scaling.experiment import evaluate_checkpoint
    from scaling.data.formats import FormatError
    from scaling.experiment import RunExistsError
    try:
        evaluate_checkpoint(OmegaConf.to_container(conf, resolve=True, throw_on_missing=True))
    except (ConfigError, RunExistsError, FormatError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
