"""Resumable training state on disk: checkpoints written atomically, and the one to resume from.

Every Lightning checkpoint of a run (``ckpt/last.ckpt``: periodic, on a Slurm warning, at the
end of training) goes through ``AtomicCheckpointIO``: ``scaling.io.write_atomic`` (a hidden
temporary sibling, then a rename) with an fsync before the rename, so a kill mid-write leaves the
previous checkpoint whole and never a truncated one under the real name. ``resume_path`` picks the
newest checkpoint that opens as a complete torch zip archive (a truncated file has no central
directory) and says why it skips any other; it also reads ``hpc_ckpt_N.ckpt``, the requeue
checkpoints of runs made when Lightning's SLURM handler owned the requeue.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from lightning.pytorch.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save through scaling.io.write_atomic, synced to disk before the rename."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        import torch

        from scaling.io import write_atomic
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")

        def write(f):
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        write_atomic(Path(path), write, binary=True)


def complete(path: Path) -> bool:
    """True when ``path`` is a whole torch checkpoint archive (its zip directory reads)."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(name.endswith("data.pkl") for name in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def candidates(run_dir: Path) -> list[Path]:
    """Resumable checkpoints of a run: ckpt/*.ckpt and the requeue checkpoints hpc_ckpt_*.ckpt."""
    run_dir = Path(run_dir)
    return sorted([*(run_dir / "ckpt").glob("*.ckpt"), *run_dir.glob("hpc_ckpt_*.ckpt")])


def resume_path(run_dir: Path, quiet: bool = False) -> Path | None:
    """The newest complete checkpoint (by modification time), or None to start afresh. Leftover
    temporary files of an interrupted save are removed; incomplete checkpoints are skipped, loudly
    (unless ``quiet``)."""
    run_dir = Path(run_dir)
    for tmp in [*(run_dir / "ckpt").glob(".*.ckpt.*"), *run_dir.glob(".hpc_ckpt_*.ckpt.*")]:  # write_atomic's
        tmp.unlink(missing_ok=True)
    good = []
    for path in candidates(run_dir):
        if complete(path):
            good.append(path)
        elif not quiet:
            print(f"[train] skipping {path}: not a complete checkpoint (interrupted write?)", flush=True)
    return max(good, key=lambda p: (p.stat().st_mtime_ns, p.name)) if good else None
