"""BEIR datasets from their published zips: a local ``.zip`` or, when allowed, a download.

``data=beir data.path=DIR`` reads a BEIR folder as is; ``data.path=FILE.zip`` extracts a BEIR
zip once into the cache; ``data.beir_name=scifact`` looks for ``<cache>/downloads/scifact.zip``
and, with ``data.download=true`` on a machine with a network, fetches it from the BEIR mirror.
``eval.beir_root=DIR eval.beir_sets=[...]`` (``eval=beir13``) reads several from one local folder,
each as a zero-shot dataset (``suite``), and never downloads.

What goes to disk: ``<cache>/data/beir/<name>/`` (extracted into a temporary sibling, renamed
into place) and ``<cache>/downloads/<name>.zip`` (downloaded to a temporary file, renamed).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"


def extract(zip_path: Path, dest: Path) -> Path:
    """Extract a BEIR zip (one folder holding corpus.jsonl, queries.jsonl, qrels/) to ``dest``."""
    zip_path, dest = Path(zip_path), Path(dest)
    if (dest / "corpus.jsonl").exists():
        return dest
    if not zipfile.is_zipfile(zip_path):
        raise ValueError(f"{zip_path} is not a zip file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        with zipfile.ZipFile(zip_path) as z:
            z.extractall(tmp)
        found = sorted(p.parent for p in tmp.rglob("corpus.jsonl"))
        if not found:
            raise FileNotFoundError(f"{zip_path} holds no corpus.jsonl (not a BEIR dataset zip)")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(found[0], dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def download(name: str, out: Path) -> Path:
    """Fetch the BEIR zip ``name`` to ``out`` (temp file + rename)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        urllib.request.urlretrieve(URL.format(name=name), tmp)
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out


SUITE_SPLIT = "test"
"""The split a suite's sets are evaluated on (their rows: ``<name>/test``)."""


def suite(root: str | Path, names: list[str]) -> list[dict]:
    """``eval.beir_sets`` under ``eval.beir_root`` as ``eval.zero_shot`` entries, in order:
    ``{name: beir, path: <root>/<name>, beir_name: <name>, ignore_identical_ids: true}`` (the
    folder, else ``<root>/<name>.zip`` beside it; ``beir_name`` names its rows, as an extracted
    zip's folder name would not; a query's own document left out of its ranking on every set, as
    BEIR's evaluator does by default). Reads nothing but the folder's listing; every set that is in
    neither form is named at once."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"eval.beir_root={root} is not a folder (it should hold <name>/ or <name>.zip "
                                f"for each of eval.beir_sets: {', '.join(names)})")
    paths = {n: root / n if (root / n).is_dir() else root / f"{n}.zip" for n in names}
    missing = [n for n, p in paths.items() if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"eval.beir_root={root} lacks {len(missing)} of the {len(names)} BEIR sets of eval.beir_sets: "
            f"{', '.join(missing)} (each a folder {root}/<name>/ with corpus.jsonl, queries.jsonl and "
            f"qrels/{SUITE_SPLIT}.tsv, or {root}/<name>.zip)")
    return [{"name": "beir", "path": str(p), "beir_name": n, "eval_splits": [SUITE_SPLIT],
             "ignore_identical_ids": True} for n, p in paths.items()]


def suite_rows(names: list[str]) -> list[str]:
    """The table rows of a suite's sets: ``<name>/test``."""
    return [f"{n}/{SUITE_SPLIT}" for n in names]


def dataset_dir(cfg, cache: Path, build: bool = True) -> Path | None:
    """The BEIR folder ``cfg`` names: a folder, an extracted zip, or a named (downloaded) dataset.
    ``build=False`` extracts and downloads nothing: None when the folder is not there yet (a
    missing zip, without leave to download it, still raises)."""
    cache = Path(cache).expanduser()
    if cfg.path:
        path = Path(cfg.path).expanduser()
        if path.suffix != ".zip":
            return path
        if not path.exists():
            raise FileNotFoundError(f"data.path={path} does not exist")
        digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
        dest = cache / "data" / "beir" / f"{path.stem}-{digest}"
        if not build:
            return dest if (dest / "corpus.jsonl").exists() else None
        return extract(path, dest)
    if not cfg.beir_name:
        from scaling.config import ConfigError
        raise ConfigError("data=beir needs data.path=DIR (a BEIR folder: corpus.jsonl, queries.jsonl, "
                         "qrels/<split>.tsv) or data.path=FILE.zip or data.beir_name=NAME")
    dest = cache / "data" / "beir" / cfg.beir_name
    if (dest / "corpus.jsonl").exists():
        return dest
    zip_path = cache / "downloads" / f"{cfg.beir_name}.zip"
    if not zip_path.exists():
        if not cfg.download:
            raise FileNotFoundError(
                f"BEIR dataset {cfg.beir_name!r} is not in {zip_path}: set data.download=true on a machine "
                f"with a network (fetches {URL.format(name=cfg.beir_name)}), or put the zip there, "
                "or give data.path=DIR|FILE.zip")
    if not build:
        return None
    if not zip_path.exists():
        download(cfg.beir_name, zip_path)
    return extract(zip_path, dest)
