"""Dataset loading by ``data.name``: the built-in corpus, BEIR folders or zips, MS MARCO / TREC DL."""

from __future__ import annotations

from pathlib import Path

from scaling.config import DATASETS as NAMES
from scaling.data import beir, builtin, formats, msmarco


def dataset_dir(cfg, cache_dir) -> Path:
    """The folder ``cfg`` reads (building the built-in corpus or extracting a zip when needed)."""
    if cfg.name == "pycode":
        return builtin.build(builtin.default_dir(Path(cache_dir).expanduser()))
    if cfg.name == "beir":
        return beir.dataset_dir(cfg, cache_dir)
    if cfg.name == "msmarco":
        if not cfg.path:
            from scaling.config import ConfigError
            raise ConfigError(f"data=msmarco needs data.path=DIR with the MS MARCO files ({msmarco.WHERE})")
        return Path(cfg.path).expanduser()
    raise KeyError(f"unknown data.name {cfg.name!r}; known: {', '.join(NAMES)}")


def load(cfg, cache_dir, splits=None, root: Path | None = None) -> formats.Dataset:
    """Load and validate the dataset ``cfg`` names (from ``root`` when the caller already holds
    its ``dataset_dir``)."""
    root = root or dataset_dir(cfg, cache_dir)
    if cfg.name == "msmarco":
        return msmarco.load(root, splits)
    name = cfg.name if cfg.name != "beir" else (cfg.beir_name or root.name)
    return formats.load_beir(root, name=name, splits=splits)


def require_splits(dataset: formats.Dataset, splits, key: str) -> None:
    """Fail before any model loads when the configuration names a split the dataset lacks."""
    from scaling.schema import ConfigError
    missing = [s for s in splits if s not in dataset.qrels]
    if missing:
        raise ConfigError(key, f"dataset {dataset.name!r} has no split {missing[0]!r} "
                               f"(it has {', '.join(sorted(dataset.qrels))})")
