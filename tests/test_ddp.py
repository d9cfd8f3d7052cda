"""Cross-device negatives: a 2-process gloo DDP step equals one process with the whole batch,
with and without gradient caching (each rank encoding its rows one at a time without graphs).

Each rank encodes half the queries and documents; documents and queries are all-gathered with
gradients (scaling.distributed), so each query still sees every document of the global batch.
DDP averages gradients over ranks, which must equal the single-process gradient of the mean loss.
"""

import os
import time
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from scaling.heads.dense import DenseHead
from scaling.losses import build_loss
from scaling.parts import InfoNCEConfig
from scaling.module import RetrieverModule

TERMS = [InfoNCEConfig(temperature=0.1, bidirectional=True, weight=1.0)]


class ToyBody(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.proj = nn.Embedding(30, 8), nn.Linear(8, 8)

    def forward(self, input_ids, attention_mask):
        return self.proj(self.emb(input_ids))  # (B, L, H)


class StepLoss(nn.Module):
    """What Lightning's training_step computes, as a plain module DDP can wrap."""

    def __init__(self, grad_cache_chunk=None):
        super().__init__()
        self.m = RetrieverModule(ToyBody(), DenseHead("mean", normalize=True), build_loss(TERMS),
                                 grad_cache_chunk=grad_cache_chunk)

    def forward(self, batch):
        return self.m.loss(self.m.step_inputs(batch))[0]


def _batch(lo, hi, G=2):
    g = torch.Generator().manual_seed(7)
    q = torch.randint(0, 30, (4, 5), generator=g)
    d = torch.randint(0, 30, (4 * G, 6), generator=g)
    ones = lambda t: torch.ones_like(t)
    return {"q": {"input_ids": q[lo:hi], "attention_mask": ones(q[lo:hi])},
            "d": {"input_ids": d[lo * G:hi * G], "attention_mask": ones(d[lo * G:hi * G])}}


def _worker(rank, world, init_file, out_dir, chunk):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=120))
    model = nn.parallel.DistributedDataParallel(StepLoss(chunk))
    loss = model(_batch(rank * 2, rank * 2 + 2))
    loss.backward()
    grads = {k: p.grad for k, p in model.module.named_parameters()}
    torch.save({"loss": loss.detach(), "grads": grads}, os.path.join(out_dir, f"rank{rank}.pt"))
    # DDP's reducer must go before its process group: destroyed after it, gloo's teardown can
    # hang forever (seen on a 2-core machine, about one run in three).
    del model, loss, grads
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("chunk", [None, 1], ids=["plain", "grad-cache"])
def test_two_process_gloo_step_matches_single_process(chunk, tmp_path):
    ctx = mp.start_processes(_worker, args=(2, str(tmp_path / "init"), str(tmp_path), chunk), nprocs=2,
                             join=False, start_method="spawn")
    deadline = time.monotonic() + 300
    while not ctx.join(timeout=5):  # raises if a rank failed
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("the two gloo ranks did not finish within 300 s")
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    single = StepLoss()
    loss = single(_batch(0, 4))
    loss.backward()
    mean_loss = (ranks[0]["loss"] + ranks[1]["loss"]) / 2
    torch.testing.assert_close(mean_loss, loss.detach())
    for name, p in single.named_parameters():
        for r in ranks:  # DDP leaves the averaged gradient on every rank
            torch.testing.assert_close(r["grads"][name], p.grad, atol=1e-6, rtol=1e-5)
