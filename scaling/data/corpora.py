"""Dataset loading by ``data.name``: the built-in corpus, BEIR folders or zips, MS MARCO / TREC DL."""

from __future__ import annotations

from pathlib import Path

from scaling.config import DATASETS as NAMES
from scaling.data import beir, builtin, formats, msmarco, pkgdesc


def dataset_dir(cfg, cache_dir, build: bool = True) -> Path | None:
    """The folder ``cfg`` reads (building the built-in corpus or extracting a zip when needed).
    ``build=False`` builds and extracts nothing: None when the folder is not there yet."""
    if cfg.name in BUILT_IN:
        folder, make = _built_in(cfg, Path(cache_dir).expanduser())
        if not build:
            return folder if (folder / formats.COMPLETE_MARKER).exists() else None
        return make()
    if cfg.name == "beir":
        return beir.dataset_dir(cfg, cache_dir, build)
    if cfg.name == "msmarco":
        if not cfg.path:
            from scaling.config import ConfigError
            raise ConfigError(f"data=msmarco needs data.path=DIR with the MS MARCO files ({msmarco.WHERE})")
        return Path(cfg.path).expanduser()
    raise KeyError(f"unknown data.name {cfg.name!r}; known: {', '.join(NAMES)}")


BUILT_IN = ("pycode", "pyclass", "pkgdesc")
"""Corpora built here from files every machine of this kind has, with fixed splits (builtin.SPLITS)."""


def _built_in(cfg, cache: Path):
    """(folder, build it) of a built-in corpus."""
    if cfg.name in builtin.UNITS:
        folder = builtin.default_dir(cache, cfg.name)
        return folder, lambda: builtin.build(folder, name=cfg.name)
    source = pkgdesc_source(cfg)
    folder = pkgdesc.default_dir(cache, source)
    return folder, lambda: pkgdesc.build(folder, source)


def pkgdesc_source(cfg) -> Path:
    """The package database ``data=pkgdesc`` reads: ``data.path`` or dpkg's own."""
    return Path(cfg.path).expanduser() if cfg.path else pkgdesc.SOURCE


def load(cfg, cache_dir, splits=None, root: Path | None = None) -> formats.Dataset:
    """Load and validate the dataset ``cfg`` names (from ``root`` when the caller already holds
    its ``dataset_dir``)."""
    root = root or dataset_dir(cfg, cache_dir)
    if cfg.name == "msmarco":
        return msmarco.load(root, splits)
    name = cfg.name if cfg.name != "beir" else (cfg.beir_name or root.name)
    return formats.load_beir(root, name=name, splits=splits)


def check_source(cfg, cache_dir) -> None:
    """Fail, naming the real cause, when the dataset's source is not there: a missing data.path
    folder or zip, a BEIR name with neither its zip nor leave to download it. Builds nothing."""
    if cfg.name == "pkgdesc":
        return pkgdesc.check_source(pkgdesc_source(cfg))
    if cfg.name in builtin.UNITS or (cfg.name == "beir" and not cfg.path):
        return  # a named BEIR set: dataset_dir raises when it is neither extracted, zipped nor downloadable
    path = Path(cfg.path).expanduser()
    if not path.exists():
        what = msmarco.FILES_HINT if cfg.name == "msmarco" else BEIR_FILES
        raise FileNotFoundError(f"data.path={path} does not exist (data={cfg.name} reads {what})")
    if cfg.name == "msmarco" and not path.is_dir():
        raise FileNotFoundError(f"data.path={path} is not a folder (data=msmarco reads {msmarco.FILES_HINT})")


BEIR_FILES = "a folder with corpus.jsonl, queries.jsonl and qrels/<split>.tsv, or a BEIR .zip"


def split_files(cfg, root: Path, split: str) -> list[Path]:
    """The files a split of ``cfg``'s dataset in ``root`` is read from (queries, qrels)."""
    if cfg.name == "msmarco":
        if split not in msmarco.SPLITS:
            raise KeyError(split)
        return [root / f for f in msmarco.SPLITS[split]]
    return [root / "queries.jsonl", root / "qrels" / f"{split}.tsv"]


def check_splits(cfg, root: Path, wanted: dict[str, list[str]]) -> None:
    """Fail before any corpus loads when a file the run reads is missing from ``root``: the
    corpus, or a split that ``wanted`` ({config key: [split, ...]}) names, with the splits the
    dataset has."""
    from scaling.schema import ConfigError
    root = Path(root)
    corpus = root / ("collection.tsv" if cfg.name == "msmarco" else "corpus.jsonl")
    if not corpus.exists():
        hint = msmarco.FILES_HINT if cfg.name == "msmarco" else BEIR_FILES
        raise FileNotFoundError(f"{corpus} is missing (data={cfg.name} reads {hint})")
    for key, splits in wanted.items():
        for split in splits:
            try:
                missing = [f for f in split_files(cfg, root, split) if not f.exists()]
            except KeyError:
                raise ConfigError(key, f"dataset {cfg.name!r} has no split {split!r} "
                                       f"(known: {', '.join(msmarco.SPLITS)})") from None
            if missing:
                have = available_splits(cfg, root)
                raise ConfigError(key, f"split {split!r} needs {missing[0]}, which is missing "
                                       f"(the dataset has {', '.join(have) if have else 'no split'})")


def available_splits(cfg, root: Path) -> list[str]:
    """The splits whose files are present in ``root``."""
    if cfg.name == "msmarco":
        return [s for s in msmarco.SPLITS if all(f.exists() for f in split_files(cfg, root, s))]
    return sorted(p.stem for p in (Path(root) / "qrels").glob("*.tsv"))


def read_split_qrels(cfg, root: Path, split: str) -> dict[str, dict[str, int]]:
    """One split's judgements alone, without the corpus or the queries (what the checks before
    a run count teacher scores and hard negatives against)."""
    if cfg.name == "msmarco":
        return msmarco.read_trec_qrels(split_files(cfg, root, split)[1])
    return formats.read_qrels(split_files(cfg, root, split)[1])
