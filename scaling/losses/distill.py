"""Distillation from teacher scores of each query's own candidates [pos, neg_1, ...].

- ``kl``: KL(teacher || student) between softmax(teacher / T_t) and softmax(student / T_s)
  over the query's own candidates (Zeng et al.'s KD; RocketQAv2-style listwise).
- ``margin_mse``: mean over negatives of ((s_pos - s_neg) - (t_pos - t_neg))^2
  (Hofstätter et al.; Zeng et al.'s KD-only runs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from scaling.losses.base import LossInputs, LossTerm, register


def _teacher(x: LossInputs, name: str) -> torch.Tensor:
    if x.teacher is None:
        raise ValueError(f"loss term {name!r} needs teacher scores: set data.teacher_scores=FILE "
                         "(TSV qid<TAB>docid<TAB>score)")
    return x.teacher.to(x.scores.dtype)


@register("kl")
class KLDistill(LossTerm):
    def __init__(self, student_temperature: float = 1.0, teacher_temperature: float = 1.0):
        super().__init__()
        self.ts, self.tt = student_temperature, teacher_temperature

    def forward(self, x: LossInputs) -> torch.Tensor:
        student = F.log_softmax(x.own_scores() / self.ts, dim=1)  # (B, G)
        teacher = F.log_softmax(_teacher(x, self.name) / self.tt, dim=1)  # (B, G)
        return F.kl_div(student, teacher, log_target=True, reduction="batchmean")


@register("margin_mse")
class MarginMSE(LossTerm):
    def forward(self, x: LossInputs) -> torch.Tensor:
        s, t = x.own_scores(), _teacher(x, self.name)  # (B, G) each
        student_margin = s[:, :1] - s[:, 1:]  # (B, G-1)
        teacher_margin = t[:, :1] - t[:, 1:]
        return F.mse_loss(student_margin, teacher_margin)
