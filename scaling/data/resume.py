"""Exact resume: the data stream's position and the process's random state live in checkpoints.

A resumed run must see what the unbroken run would have seen, at any step of any epoch. Three
things decide that, and a checkpoint restores all of them rather than an epoch hook (Lightning
skips ``on_train_epoch_start`` when it restarts mid-epoch):

- the order: ``EpochSampler`` draws epoch e's order from (seed, e) and holds one counter,
  ``trained``, the micro-batches trained since the run began; each epoch's iterator starts at
  ``divmod(trained, batches per epoch)``, so whatever Lightning's own epoch bookkeeping does on
  a restart (mid-epoch, or at an epoch's end) the stream goes on where it stopped;
- the per-epoch draws (sampled negatives, the positive among several): the sampler yields
  ``(epoch, index)`` keys and the dataset seeds each group from (seed, epoch, index), which also
  holds in DataLoader workers (no attribute of the dataset to keep in sync);
- the global random state (dropout; anything else drawing from torch, Python or NumPy):
  ``DataPosition`` saves torch's CPU (and CUDA) generators, Python's and NumPy's in every checkpoint
  and restores them just before the first batch after a resume, the moment the unbroken run had
  that state. The DataLoader draws its workers' base seed from its own generator, not the global
  one, so starting an epoch's iterator moves no global state.

Under DDP each rank takes its slice of the same global order (Lightning's own sampler
replacement must be off: ``use_distributed_sampler=False``). Every rank seeds alike and draws
alike, so the leader's saved random state is every rank's.
"""

from __future__ import annotations

import random
import warnings

import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, Sampler


def _rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


# Lightning warns that a mid-epoch checkpoint's dataloader "is not resumable": it cannot see that
# DataPosition (below) saves and restores the sampler's place, so the warning is wrong here.
warnings.filterwarnings("ignore", message=r".*dataloader is not resumable.*")


class EpochSampler(Sampler):
    """(epoch, index) keys of epoch e in a (seed, e)-seeded order, whole optimiser steps only,
    from wherever ``trained`` micro-batches left the stream."""

    def __init__(self, n: int, batch_size: int, seed: int = 0, accumulate: int = 1):
        """An epoch holds whole optimiser steps (``accumulate`` batches each), so no step is short."""
        self.n, self.batch_size, self.seed, self.accumulate = n, batch_size, seed, accumulate
        self.trained = 0
        if self.batches_per_epoch() < 1:
            raise ValueError(f"{n} training groups make no whole step of {batch_size} x {accumulate} "
                             f"per device on {_rank_world()[1]} device(s)")

    def _per_rank(self) -> int:
        step = self.batch_size * self.accumulate
        return self.n // (step * _rank_world()[1]) * step

    def batches_per_epoch(self) -> int:
        return self._per_rank() // self.batch_size

    def order(self, epoch: int) -> list[int]:
        """This rank's indices of ``epoch``: its slice of one global (seed, epoch) permutation."""
        rank, world = _rank_world()
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
        return perm[:self._per_rank() * world][rank::world].tolist()

    def __len__(self):
        return self._per_rank()

    def __iter__(self):
        epoch, done = divmod(self.trained, self.batches_per_epoch())
        for i in self.order(epoch)[done * self.batch_size:]:
            yield epoch, i


def draw(seed: int, key) -> tuple[int, random.Random]:
    """A dataset item's index and its own generator from the sampler's ``(epoch, index)`` key (a
    bare index is epoch 0): the draws of item i in epoch e are a function of (seed, e, i)."""
    epoch, i = key if isinstance(key, tuple) else (0, key)
    return i, random.Random(f"{seed}/{epoch}/{i}")


def loader(dataset, sampler: EpochSampler, collate_fn, num_workers: int = 0) -> DataLoader:
    """The training DataLoader over ``sampler``'s stream: whole batches, and a generator of its own
    for the workers' base seed, so starting an epoch's iterator moves no global random state."""
    return DataLoader(dataset, batch_size=sampler.batch_size, sampler=sampler, drop_last=True,
                      collate_fn=collate_fn, num_workers=num_workers,
                      generator=torch.Generator().manual_seed(sampler.seed))


def random_state() -> dict:
    """Every global generator a training step may draw from."""
    import numpy as np
    name, keys, pos, has_gauss, gauss = np.random.get_state()  # keys as a tensor: weights_only loads it
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss))}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict) -> None:
    import numpy as np
    torch.set_rng_state(state["torch"])
    random.setstate(tuple(state["python"][:1]) + (tuple(state["python"][1]),) + tuple(state["python"][2:]))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class DataPosition(Callback):
    """Counts trained micro-batches into the sampler; saves it and the random state in every
    checkpoint; on resume restores both (the random state at the first batch)."""

    def __init__(self, sampler: EpochSampler):
        self.sampler = sampler
        self._restore = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self._restore is not None:
            set_random_state(self._restore)
            self._restore = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.sampler.trained += 1

    def state_dict(self):
        return {"trained": self.sampler.trained, "random": random_state()}

    def load_state_dict(self, state):
        if "trained" in state:
            self.sampler.trained = state["trained"]
        else:  # a checkpoint from before the counter: (epoch, batches trained in it)
            self.sampler.trained = state["epoch"] * self.sampler.batches_per_epoch() + state["batches"]
        self._restore = state.get("random")
        epoch, done = divmod(self.sampler.trained, self.sampler.batches_per_epoch())
        print(f"[train] resuming the data stream at epoch {epoch}, batch {done} "
              f"({self.sampler.trained} micro-batches trained)", flush=True)
