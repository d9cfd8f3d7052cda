"""Atomic files and folders, and sizes on disk: generic IO every part writes through.

A writer builds its output in a temporary sibling (file or folder) and renames it into place,
so a reader (or a rerun after a kill) never sees half a file; finished files get the permissions
of a freshly made one (mkstemp's 0600 would hide results from others on a shared cluster).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_dir(final: Path):
    """Yield a temporary sibling folder; when the block succeeds it replaces ``final`` (with the
    permissions of a freshly made folder), else it is removed. Readers never see half a folder."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)
        if final.exists():  # a stale, incomplete earlier attempt, or a replaced result
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def size_on_disk(path: Path) -> int:
    """Bytes under a folder (or of one file)."""
    path = Path(path)
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def write_atomic(path: Path, write, binary: bool = False) -> None:
    """Call ``write(file)`` on a temp file in the same folder, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")) as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; others on a shared cluster read results
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj) -> None:
    """Write JSON through a temp file in the same folder and a rename."""
    def write(f):
        json.dump(obj, f, indent=2, sort_keys=False, default=str)
        f.write("\n")
    write_atomic(path, write)
