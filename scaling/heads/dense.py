"""Dense head: pool the hidden states into one vector, optionally L2-normalised.

Poolings (registry ``POOLINGS``):
- ``eos``: the last non-pad token (Luo et al.; pair with ``model.append_eos=true``), found from
  the mask so it is right under left and right padding alike;
- ``mean``: mean over non-pad tokens (GTR);
- ``cls``: the first non-pad token (BERT-style encoders);
- ``normalized_mean``: mean of per-token L2-normalised states (Zeng et al.).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from scaling.heads.base import Head, register


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """(B, L) mask -> (B,) index of each row's last 1, whatever side the padding is on."""
    L = mask.shape[1]
    return L - 1 - mask.flip(1).float().argmax(dim=1)


def first_token_index(mask: torch.Tensor) -> torch.Tensor:
    """(B, L) mask -> (B,) index of each row's first 1."""
    return mask.float().argmax(dim=1)


def _gather(hidden: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]  # (B, H)


def _mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)  # (B, H)


POOLINGS = {
    "eos": lambda h, m: _gather(h, last_token_index(m)),
    "cls": lambda h, m: _gather(h, first_token_index(m)),
    "mean": _mean,
    "normalized_mean": lambda h, m: _mean(F.normalize(h, dim=-1), m),
}


@register("dense")
class DenseHead(Head):
    kind = "dense"

    def __init__(self, pooling: str = "mean", normalize: bool = False, skip_sink: bool = False,
                 skip_prefix: bool = False):
        super().__init__(skip_sink, skip_prefix)
        if pooling not in POOLINGS:
            raise KeyError(f"unknown pooling {pooling!r}; known: {', '.join(POOLINGS)}")
        self.pooling, self.normalize = pooling, normalize

    @classmethod
    def from_config(cls, cfg, backbone):
        return cls(cfg.pooling, cfg.normalize, cfg.skip_sink, cfg.skip_prefix)

    def pool(self, hidden, mask, ids=None):
        pooled = POOLINGS[self.pooling](hidden, mask)  # (B, H)
        return F.normalize(pooled, dim=-1) if self.normalize else pooled
