"""FLOPS regulariser for sparse representations (Paria et al.; SPLADE; Zeng et al.).

FLOPS(W) = sum_v (mean_i |w_iv|)^2 over the batch's rows, applied to queries and documents
with separate weights (Zeng et al.: 0.05 and 0.04) and ramped up quadratically,
lambda(t) = lambda * min(1, t / (warmup_fraction * max_steps))^2, so early training learns
what to match before it learns to be sparse.
"""

from __future__ import annotations

import torch

from scaling.losses.base import LossInputs, LossTerm, register


def flops(reps: torch.Tensor) -> torch.Tensor:
    """(N, V) weights -> sum_v (mean_i |w_iv|)^2."""
    return (reps.abs().mean(dim=0) ** 2).sum()


@register("flops")
class FlopsRegularizer(LossTerm):
    def __init__(self, query_weight: float = 0.05, doc_weight: float = 0.04,
                 warmup_fraction: float = 1 / 3):
        super().__init__()
        self.qw, self.dw, self.warmup = query_weight, doc_weight, warmup_fraction

    def ramp(self, step: int, max_steps: int) -> float:
        horizon = self.warmup * max_steps
        return 1.0 if horizon <= 0 else min(1.0, step / horizon) ** 2

    def forward(self, x: LossInputs) -> torch.Tensor:
        return self.ramp(x.step, x.max_steps) * (self.qw * flops(x.q) + self.dw * flops(x.d))
