"""The one owner of cross-device concerns: gathering representations with gradients.

Under DDP every rank computes its local loss against the *global* batch of documents; the
all-gather keeps the autograd graph (``torch.distributed.nn.all_gather``), so gradients flow
back to the rank that produced each row. DDP averages gradients over ranks, which matches
one process averaging the per-query losses of the whole batch.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world_size); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def parse_shard(spec: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n."""
    try:
        i, n = (int(x) for x in str(spec).split("/"))
    except ValueError:
        raise ValueError(f"shard must look like 'i/n' (e.g. 0/4), got {spec!r}") from None
    if not 0 <= i < n:
        raise ValueError(f"shard {spec!r}: need 0 <= i < n")
    return i, n


def resolve_shard(spec: str | None, env=os.environ) -> tuple[int, int]:
    """Which slice of a split job this process does: an explicit 'i/n'; for None or 'auto' the Slurm
    array task (id - min, count), else the launcher's RANK/WORLD_SIZE (torchrun), else (0, 1)."""
    if spec is not None and spec != "auto":
        return parse_shard(spec)
    if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        first = int(env.get("SLURM_ARRAY_TASK_MIN", 0))
        return parse_shard(f"{int(env['SLURM_ARRAY_TASK_ID']) - first}/{env['SLURM_ARRAY_TASK_COUNT']}")
    if "RANK" in env and "WORLD_SIZE" in env:
        return parse_shard(f"{env['RANK']}/{env['WORLD_SIZE']}")
    return 0, 1


def launched_by_rank(env=os.environ) -> bool:
    """True when the shard comes from a launcher's ranks (all alive at once), not array tasks."""
    return "RANK" in env and "WORLD_SIZE" in env and "SLURM_ARRAY_TASK_ID" not in env


def gather_with_grad(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(N, D) local rows -> ((W*N, D) rows of every rank in rank order, this rank's first row)."""
    rank, size = world()
    if size == 1:
        return x, 0
    from torch.distributed.nn.functional import all_gather
    parts = all_gather(x.contiguous())
    return torch.cat(parts, dim=0), rank * x.shape[0]
