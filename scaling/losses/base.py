"""Loss record, term ABC, registry and the weighted sum the module calls.

Every term reads one ``LossInputs`` record and returns a scalar; ``loss=cl+kd`` is a config that
lists two weighted terms, so the module never branches on a loss name. Each term class is
registered under the name of its typed config (``scaling.parts``) and built from its fields.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import nn

from scaling.parts import TERM_CONFIGS, TermConfig
from scaling.registry import registrar

LOSSES: dict[str, type["LossTerm"]] = {}


def _require(name: str, cls: type) -> None:
    if name not in TERM_CONFIGS:
        raise TypeError(f"loss term {name!r} has no typed config: add one to scaling/parts.py "
                        f"with @term_config({name!r})")


register = registrar(LOSSES, _require)


@dataclass
class LossInputs:
    """One training step's representations and scores (after the cross-device gather).

    Shapes (B local queries, G = 1 + negatives documents per query, W world size):
      q (B, D); d (B*G, D), grouped [pos, neg_1, ...] per query;
      q_all (W*B, D) and d_all (W*B*G, D) gathered over devices, this rank's rows included;
      scores (B, W*B*G) = q @ d_all.T; q_offset / d_offset: this rank's first row in q_all / d_all;
      teacher (B, G) teacher scores of each query's own candidates, or None;
      teacher_all (B, B*G) teacher scores of each local query against every document of this
        device's batch, in the batch's document order (its own group included), or None: what
        in-batch distillation (``kl`` with ``in_batch``) reads, from a scorer of any pair.
    """

    q: torch.Tensor
    d: torch.Tensor
    q_all: torch.Tensor
    d_all: torch.Tensor
    scores: torch.Tensor
    group_size: int
    q_offset: int
    d_offset: int
    teacher: torch.Tensor | None = None
    step: int = 0
    max_steps: int = 1
    teacher_all: torch.Tensor | None = None

    def own_scores(self) -> torch.Tensor:
        """(B, G) each query's scores against its own candidates, positive first."""
        B, G = self.q.shape[0], self.group_size
        idx = self.d_offset + torch.arange(B * G, device=self.scores.device).view(B, G)  # (B, G)
        return self.scores.gather(1, idx)


class LossTerm(nn.Module, ABC):
    name: str = ""

    @abstractmethod
    def forward(self, x: LossInputs) -> torch.Tensor:
        """A scalar loss."""


class WeightedLoss(nn.Module):
    """sum_i weight_i * term_i(x); returns the total and each unweighted term for logging.

    Terms are labelled by name; a name used twice gets its position (``kl.0``, ``kl.1``), so each
    term keeps its own weight and its own log column.
    """

    def __init__(self, terms: list[tuple[str, float, LossTerm]]):
        super().__init__()
        names = [label for label, _, _ in terms]
        self.labels = [n if names.count(n) == 1 else f"{n}.{i}" for i, n in enumerate(names)]
        self.weights = [w for _, w, _ in terms]
        self.terms = nn.ModuleList([t for _, _, t in terms])

    def forward(self, x: LossInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        parts = {label: term(x) for label, term in zip(self.labels, self.terms)}
        total = sum(w * parts[label] for label, w in zip(self.labels, self.weights))
        return total, parts


def build_loss(terms: list[TermConfig]) -> WeightedLoss:
    """The weighted sum of typed term configs (parsed, so names and keys are already checked)."""
    return WeightedLoss([(t.name, t.weight, LOSSES[t.name](**t.kwargs())) for t in terms])
