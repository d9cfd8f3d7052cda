"""Prepare what runs read, each step cached and skipped when done.

    python recipes/prepare.py                                  # every step on the built-in corpus
    python recipes/prepare.py steps=[data,model,bm25]          # what `make run` needs (fast)
    python recipes/prepare.py data=beir data.path=DIR teacher=hf teacher.model=/models/ce
    sbatch --array=0-7 ... python recipes/prepare.py steps=[teacher]     # 8 scoring shards

Steps: data (build/validate the dataset), model (convert the packaged SmolLM2), bm25 (Lucene
index, BM25 run, hard-negative groups), pools (the bi-encoder runs a mixed candidate pool reads),
teacher_model (the teacher: a cross-encoder fine-tuned or loaded, BM25, the packaged bi-encoders or
a fusion of them, and its report card), teacher (its scores for the training candidates; the
cross-encoder's part sharded by teacher.shard=i/n or SLURM_ARRAY_TASK_ID/COUNT, merged and fused
by the last shard). Outputs live under
<cache_dir>/prepared/<dataset>/ (see scaling/prepare.py).
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
from scaling.config import PrepareConfig  # noqa: E402

cli.register()


@hydra.main(config_path="conf", config_name="prepare", version_base="1.3")
def main(conf: DictConfig) -> None:
    with cli.errors():
        cfg = cli.parse_conf(conf, PrepareConfig)
        from scaling.prepare import prepare
        prepare(cfg.run_config(), cfg.steps, log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    cli.run(main)
