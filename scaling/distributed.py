"""The one owner of cross-device concerns: gathering representations with gradients.

Under DDP every rank computes its local loss against the *global* batch of documents; the
all-gather keeps the autograd graph (``torch.distributed.nn.all_gather``), so gradients flow
back to the rank that produced each row. DDP averages gradients over ranks, which matches
one process averaging the per-query losses of the whole batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world_size); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_with_grad(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(N, D) local rows -> ((W*N, D) rows of every rank in rank order, this rank's first row)."""
    rank, size = world()
    if size == 1:
        return x, 0
    from torch.distributed.nn.functional import all_gather
    parts = all_gather(x.contiguous())
    return torch.cat(parts, dim=0), rank * x.shape[0]
