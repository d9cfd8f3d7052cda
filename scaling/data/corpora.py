"""Dataset loading by ``data.name``: the built-in ``pycode`` corpus or a local BEIR folder."""

from __future__ import annotations

from pathlib import Path

from scaling.data import builtin, formats


def dataset_dir(cfg, cache_dir) -> Path:
    """The BEIR folder for ``cfg`` (building the built-in corpus when needed)."""
    if cfg.name == "pycode":
        return builtin.build(builtin.default_dir(Path(cache_dir).expanduser()))
    if cfg.name == "beir":
        if not cfg.path:
            raise ValueError("data=beir needs data.path=DIR (a BEIR folder: corpus.jsonl, "
                             "queries.jsonl, qrels/<split>.tsv)")
        return Path(cfg.path).expanduser()
    raise KeyError(f"unknown data.name {cfg.name!r}; known: pycode, beir")


def load(cfg, cache_dir, splits=None) -> formats.Dataset:
    """Load and validate the dataset ``cfg`` names."""
    root = dataset_dir(cfg, cache_dir)
    name = cfg.name if cfg.name != "beir" else root.name
    return formats.load_beir(root, name=name, splits=splits)
