"""Prepare what a run needs, each step cached and skipped when done.

    python recipes/prepare.py                      # built-in corpus + SmolLM2 conversion
    python recipes/prepare.py data=beir data.path=DIR size=tiny

Steps: (1) the dataset (the built-in corpus is built once under cache_dir; a BEIR folder is
validated), (2) the backbone's local weights (the packaged SmolLM2 is converted once).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scaling.config import from_hydra  # noqa: E402


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(conf: DictConfig) -> None:
    cfg = from_hydra(conf)
    from scaling import sizes
    from scaling.data import corpora
    cache = Path(cfg.cache_dir).expanduser()
    t = time.time()
    data = corpora.load(cfg.data, cache)
    print(f"[prepare] dataset {data.name}: {len(data.corpus)} documents, {len(data.queries)} "
          f"queries, splits {{{', '.join(f'{s}: {len(q)}' for s, q in data.qrels.items())}}} "
          f"({time.time() - t:.1f} s)", flush=True)
    if sizes.get(cfg.model.name).source == "smollm2" and cfg.model.path is None:
        from scaling.backbone import smollm2_dir
        t = time.time()
        path = smollm2_dir(cache)
        print(f"[prepare] model smollm2-135m: {path} ({time.time() - t:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
