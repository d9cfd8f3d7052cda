"""Mid-epoch resume: a seeded sampler that can skip what a killed run already trained on.

A plain shuffled DataLoader restarts its epoch when a run resumes from a checkpoint, so the
resumed run sees the epoch's first batches twice and its last ones never. ``EpochSampler``
draws each epoch's order from (seed, epoch) and can start ``batches`` into it; the
``DataPosition`` callback counts trained batches and stores (epoch, batches) in every Lightning
checkpoint, then hands them back to the sampler on resume. Under DDP each rank takes its
slice of the same global order (Lightning's own sampler replacement must be off:
``use_distributed_sampler=False``).
"""

from __future__ import annotations

import warnings

import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import Sampler


def _rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


# Lightning warns that a mid-epoch checkpoint's dataloader "is not resumable": it cannot see that
# DataPosition (below) saves and restores the sampler's place, so the warning is wrong here.
warnings.filterwarnings("ignore", message=r".*dataloader is not resumable.*")

class EpochSampler(Sampler):
    """Indices of epoch e in a (seed, e)-seeded order, whole batches only, from batch ``skip`` on."""

    def __init__(self, n: int, batch_size: int, seed: int = 0, dataset=None, accumulate: int = 1):
        """``dataset.epoch`` (when given) is set at each epoch start: per-epoch negative draws
        (with num_workers=0; with workers the LightningModule sets it before they start). An
        epoch holds whole optimiser steps (``accumulate`` batches each), so no step is short."""
        self.n, self.batch_size, self.seed, self.dataset = n, batch_size, seed, dataset
        self.accumulate = accumulate
        self.epoch, self.skip = 0, 0

    def resume(self, epoch: int, batches: int) -> None:
        self.epoch, self.skip = epoch, batches

    def _per_rank(self) -> int:
        step = self.batch_size * self.accumulate
        return self.n // (step * _rank_world()[1]) * step

    def __len__(self):
        return self._per_rank()

    def __iter__(self):
        rank, world = _rank_world()
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch))
        mine = order[:self._per_rank() * world][rank::world].tolist()  # same global order, rank slice
        start, self.skip = self.skip * self.batch_size, 0
        if self.dataset is not None:
            self.dataset.epoch = self.epoch
        self.epoch += 1
        yield from mine[start:]


class DataPosition(Callback):
    """Saves (epoch, trained batches in it) in checkpoints; restores the sampler's position."""

    def __init__(self, sampler: EpochSampler):
        self.sampler, self.epoch, self.batches = sampler, 0, 0

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch != self.epoch:  # a new epoch (a resumed one keeps its count)
            self.epoch, self.batches = trainer.current_epoch, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches += 1

    def state_dict(self):
        return {"epoch": self.epoch, "batches": self.batches}

    def load_state_dict(self, state):
        self.epoch, self.batches = state["epoch"], state["batches"]
        self.sampler.resume(self.epoch, self.batches)
