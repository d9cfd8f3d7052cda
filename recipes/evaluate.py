"""Evaluate a trained checkpoint, beside reference systems, on a dataset's splits.

    python recipes/evaluate.py checkpoint=RUN/checkpoint data=beir data.path=DIR run_dir=OUT
    python recipes/evaluate.py checkpoint=RUN/checkpoint baseline=bm25     # BM25 beside it
    python recipes/evaluate.py baseline=minilm data=msmarco                 # a reference system alone
    python recipes/evaluate.py checkpoint=C run_dir=OUT eval.shard=auto     # one of a Slurm array's shards

Writes OUT/result.json of the same shape as run.py's: metrics, the reference systems'
(``baseline=``, default eval.baselines = [bm25, minilm]) as reference_metrics, and the untrained
backbone's as baseline_metrics unless eval.untrained=false. With eval.shard each job encodes its
blocks of the corpus into OUT/encoded/ and exits; the job that completes the corpus evaluates.
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
    from scaling.data.formats import FormatError
    from scaling.experiment import RunExistsError, evaluate_checkpoint
    from scaling.index.encode import StoreMismatch
    try:
        evaluate_checkpoint(OmegaConf.to_container(conf, resolve=True, throw_on_missing=True))
    except (ConfigError, RunExistsError, FormatError, FileNotFoundError, StoreMismatch) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
