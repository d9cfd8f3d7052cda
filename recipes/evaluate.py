"""Evaluate a trained checkpoint, beside reference systems, on a dataset's splits.

    python recipes/evaluate.py checkpoint=RUN/checkpoint data=beir data.path=DIR run_dir=OUT
    python recipes/evaluate.py checkpoint=RUN/checkpoint baseline=bm25     # BM25 beside it
    python recipes/evaluate.py baseline=minilm data=msmarco data.path=DIR   # a reference system alone
    python recipes/evaluate.py checkpoint=C run_dir=OUT eval.shard=auto     # one of a Slurm array's shards

Writes OUT/result.json of the same shape as run.py's: metrics, the reference systems' as
reference_metrics (``baseline=``, else this call's eval.baselines, default bm25, minilm and
splade; not the ones the checkpoint's run showed), and the untrained backbone's as
baseline_metrics unless eval.untrained=false. With eval.shard each job encodes its
blocks of the corpus into OUT/encoded/ and exits; the job that completes the corpus evaluates.
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
from scaling.config import EvaluateConfig  # noqa: E402

cli.register()


@hydra.main(config_path="conf", config_name="evaluate", version_base="1.3")
def main(conf: DictConfig) -> None:
    with cli.errors():
        cfg = cli.parse_conf(conf, EvaluateConfig)
        from scaling.experiment import evaluate
        evaluate(cfg)


if __name__ == "__main__":
    cli.run(main)
