"""InfoNCE over in-batch and hard negatives (Luo et al.; GTR; Zeng et al.'s CL).

Each query's positive is row ``d_offset + i*G`` of the gathered documents; every other gathered
document (other queries' positives and all hard negatives) is a negative. With
``bidirectional=true`` the GTR document->query direction is added: each positive against all
gathered queries, and the two cross-entropies are averaged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from scaling.losses.base import LossInputs, LossTerm, register


@register("infonce")
class InfoNCE(LossTerm):
    def __init__(self, temperature: float = 0.02, bidirectional: bool = False):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature, self.bidirectional = temperature, bidirectional

    def forward(self, x: LossInputs) -> torch.Tensor:
        B, G = x.q.shape[0], x.group_size
        ar = torch.arange(B, device=x.scores.device)
        q2d = F.cross_entropy(x.scores / self.temperature, x.d_offset + ar * G)
        if not self.bidirectional:
            return q2d
        positives = x.d.view(B, G, -1)[:, 0]  # (B, D)
        d2q_scores = positives @ x.q_all.T  # (B, W*B)
        d2q = F.cross_entropy(d2q_scores / self.temperature, x.q_offset + ar)
        return (q2d + d2q) / 2
