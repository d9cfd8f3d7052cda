"""Loss record, term ABC, registry and the weighted sum the module calls.

Every term reads one ``LossInputs`` record and returns a scalar; ``loss=cl+kd`` is a config that
lists two weighted terms, so the module never branches on a loss name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import nn

from scaling.registry import registrar

LOSSES: dict[str, type["LossTerm"]] = {}
register = registrar(LOSSES)


@dataclass
class LossInputs:
    """One training step's representations and scores (after the cross-device gather).

    Shapes (B local queries, G = 1 + negatives documents per query, W world size):
      q (B, D); d (B*G, D), grouped [pos, neg_1, ...] per query;
      q_all (W*B, D) and d_all (W*B*G, D) gathered over devices, this rank's rows included;
      scores (B, W*B*G) = q @ d_all.T; q_offset / d_offset: this rank's first row in q_all / d_all;
      teacher (B, G) teacher scores of each query's own candidates, or None.
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

    def own_scores(self) -> torch.Tensor:
        """(B, G) each query's scores against its own candidates, positive first."""
        B, G = self.q.shape[0], self.group_size
        idx = self.d_offset + torch.arange(B * G, device=self.scores.device).view(B, G)  # (B, G)
        return self.scores.gather(1, idx)


class LossTerm(nn.Module, ABC):
    name: str = ""
    needs_teacher: bool = False
    """True for distillation terms: the run must supply teacher scores and negatives."""

    @abstractmethod
    def forward(self, x: LossInputs) -> torch.Tensor:
        """A scalar loss."""


class WeightedLoss(nn.Module):
    """sum_i weight_i * term_i(x); returns the total and each weighted-free term for logging."""

    def __init__(self, terms: list[tuple[str, float, LossTerm]]):
        super().__init__()
        self.labels = [label for label, _, _ in terms]
        self.weights = [w for _, w, _ in terms]
        self.terms = nn.ModuleList([t for _, _, t in terms])

    def forward(self, x: LossInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        parts = {label: term(x) for label, term in zip(self.labels, self.terms)}
        total = sum(w * parts[label] for label, w in zip(self.labels, self.weights))
        return total, parts


def build_loss(term_cfgs: list[dict]) -> WeightedLoss:
    """Build the weighted sum from [{name, weight, **kwargs}, ...]; unknown names/keys fail early."""
    terms = []
    for i, spec in enumerate(term_cfgs):
        spec = dict(spec)
        name = spec.pop("name")
        weight = float(spec.pop("weight", 1.0))
        if name not in LOSSES:
            raise KeyError(f"loss term {i}: unknown name {name!r}; known: {', '.join(LOSSES)}")
        try:
            term = LOSSES[name](**spec)
        except TypeError as e:
            raise TypeError(f"loss term {i} ({name}): {e}") from None
        terms.append((name, weight, term))
    return WeightedLoss(terms)


def needs_teacher(term_cfgs: list[dict]) -> bool:
    """True when any configured term distils from teacher scores."""
    return any(getattr(LOSSES.get(spec["name"]), "needs_teacher", False) for spec in term_cfgs)


def check_data_for(term_cfgs: list[dict], data_cfg, teacher_scores=None, how: str = "") -> None:
    """Fail before any model loads when a term needs teacher scores the run cannot find.

    ``teacher_scores`` is the resolved score file (data.teacher_scores or the prepared one);
    ``how`` says how to build it.
    """
    from pathlib import Path

    from scaling.config import ConfigError
    if not needs_teacher(term_cfgs):
        return
    name = next(s["name"] for s in term_cfgs if getattr(LOSSES.get(s["name"]), "needs_teacher", False))
    path = teacher_scores or data_cfg.teacher_scores
    if not path or not Path(path).expanduser().exists():
        where = f" (none at {path})" if path else ""
        raise ConfigError(f"loss term {name!r} needs teacher scores{where}: set "
                         f"data.teacher_scores=FILE (TSV qid<TAB>docid<TAB>score){how}")
    if data_cfg.n_negatives < 1:
        raise ConfigError(f"loss term {name!r} compares a query's candidates: "
                         "set data.n_negatives to 1 or more")
