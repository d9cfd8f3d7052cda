"""Head ABC and its registry: hidden states (B, L, H) + mask (B, L) -> representations (B, dim).

Each head is registered under the name of its typed config (``scaling.parts``), built from it by
``from_config``, and declares its ``kind`` ("dense" | "sparse"), which picks the index exporter
downstream; registration refuses a head without one, so a new sparse head cannot silently export
to FAISS. ``planned_flops`` tells the budget what the head adds to the backbone's forward.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

import torch
from torch import nn

from scaling.parts import HEAD_CONFIGS, HeadConfig
from scaling.registry import registrar

HEADS: dict[str, type["Head"]] = {}
KINDS = ("dense", "sparse")
"""Head kinds, one index exporter each (scaling/index/export.py)."""


def _require(name: str, cls: type) -> None:
    """A head needs a typed config of its name and a kind (no default: it picks the index)."""
    if name not in HEAD_CONFIGS:
        raise TypeError(f"head {name!r} has no typed config: add one to scaling/parts.py with "
                        f"@head_config({name!r})")
    if getattr(cls, "kind", None) not in KINDS:
        raise TypeError(f"head {name!r} must declare kind = one of {', '.join(KINDS)} (it picks the index)")


register = registrar(HEADS, _require)


def drop_first(mask: torch.Tensor) -> torch.Tensor:
    """(B, L) 0/1 mask -> the same without each row's first real position (either padding side)."""
    first = mask.float().argmax(dim=1)  # (B,)
    out = mask.clone()
    out[torch.arange(mask.shape[0], device=mask.device), first] = 0
    return out


class Head(nn.Module, ABC):
    kind: str
    """"dense" | "sparse": set by every head (no default)."""
    name: str = ""

    def __init__(self, skip_sink: bool = False, skip_prefix: bool = False):
        super().__init__()
        self.skip_sink, self.skip_prefix = skip_sink, skip_prefix

    def pool_mask(self, mask: torch.Tensor, content: torch.Tensor | None = None) -> torch.Tensor:
        """The (B, L) positions to pool: the attention ``mask``, without the lead (prefix and start
        tokens; ``content`` is the mask without them, see scaling.data.collate.Tokenize) when
        ``skip_prefix``, and without the first real position (the attention sink) when ``skip_sink``."""
        pooled = mask
        if self.skip_prefix:
            if content is None:
                raise ValueError("skip_prefix needs the tokeniser's content_mask (scaling.data.collate.Tokenize)")
            pooled = content
        return pooled * drop_first(mask) if self.skip_sink else pooled

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor, ids: torch.Tensor | None = None,
                content: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states (B, L, H), attention ``mask``, token ``ids`` and ``content`` mask (each
        (B, L)) -> (B, dim) representations, pooled over ``pool_mask``. The model still
        reads the positions left out; only the head ignores their outputs."""
        return self.pool(hidden, self.pool_mask(mask, content), ids)

    @abstractmethod
    def pool(self, hidden: torch.Tensor, mask: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L, H) hidden states, (B, L) mask of the positions to pool, (B, L) ids -> (B, dim)."""

    @classmethod
    @abstractmethod
    def from_config(cls, cfg: HeadConfig, backbone) -> "Head":
        """The head from its typed config and the loaded backbone."""

    @classmethod
    def planned_flops(cls, cfg: HeadConfig, hidden: int, vocab: int, transform: bool) -> Callable[[int], float]:
        """Forward FLOPs per token the head adds beyond the backbone, as a function of the text's
        length, from its config and the backbone's numbers alone (``dry_run`` loads no model):
        0 for pooling. ``transform``: the LM head has a hidden x hidden transform (masked LMs)."""
        return lambda seq_len: 0.0

    @classmethod
    def recomputes(cls, cfg: HeadConfig) -> bool:
        """True when training re-runs the head's forward in the backward (to keep memory bounded):
        the plan reports that forward as recompute, not charged."""
        return False

    def postprocess(self, reps: torch.Tensor, role: str) -> torch.Tensor:
        """Encode-time transform of (B, dim) representations; role is "query" or "doc"."""
        return reps

    def batch_stats(self, q: torch.Tensor, d: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-step statistics worth logging (e.g. sparsity); none by default."""
        return {}


def head_flops(cfg: HeadConfig, hidden: int, vocab: int, transform: bool = False) -> Callable[[int], float]:
    """The planned extra forward FLOPs per token of the head ``cfg`` names (see Head.planned_flops)."""
    if cfg.name not in HEADS:
        raise KeyError(f"unknown head {cfg.name!r}; known: {', '.join(HEADS)}")
    return HEADS[cfg.name].planned_flops(cfg, hidden, vocab, transform)


def head_recomputes(cfg: HeadConfig) -> bool:
    return HEADS[cfg.name].recomputes(cfg)


def build_head(cfg: HeadConfig, backbone) -> Head:
    """Instantiate the head named by ``cfg.name`` from its config and the loaded backbone."""
    if cfg.name not in HEADS:
        raise KeyError(f"unknown head {cfg.name!r}; known: {', '.join(HEADS)}")
    return HEADS[cfg.name].from_config(cfg, backbone)
