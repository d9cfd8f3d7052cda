"""Head ABC and its registry: hidden states (B, L, H) + mask (B, L) -> representations (B, dim).

``kind`` ("dense" | "sparse") picks the index exporter downstream; ``extra_flops_per_token``
tells the budget what the head adds to the backbone's forward pass.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from scaling.registry import registrar

HEADS: dict[str, type["Head"]] = {}
register = registrar(HEADS)


class Head(nn.Module, ABC):
    kind: str = "dense"
    name: str = ""

    @abstractmethod
    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L, H) hidden states and (B, L) 0/1 mask -> (B, dim) representations."""

    def extra_flops_per_token(self) -> float:
        """Forward FLOPs per token the head adds beyond the backbone (0 for pooling)."""
        return 0.0

    def postprocess(self, reps: torch.Tensor, role: str) -> torch.Tensor:
        """Encode-time transform of (B, dim) representations; role is "query" or "doc"."""
        return reps

    def batch_stats(self, q: torch.Tensor, d: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-step statistics worth logging (e.g. sparsity); none by default."""
        return {}


def build_head(cfg, backbone) -> Head:
    """Instantiate the head named by ``cfg.name`` from its config and the loaded backbone."""
    if cfg.name not in HEADS:
        raise KeyError(f"unknown head {cfg.name!r}; known: {', '.join(HEADS)}")
    return HEADS[cfg.name].from_config(cfg, backbone)
