"""Distillation from teacher scores of each query's own candidates [pos, neg_1, ...].

- ``kl``: KL(teacher || student) between softmax(teacher / T_t) and softmax(student / T_s)
  over the query's own candidates (Zeng et al.'s KD; RocketQAv2-style listwise), or with
  ``in_batch`` over every document of this device's batch (teacher scores from a scorer).
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
    """``in_batch``: distil over this device's B*G documents, so the student is also taught how far
    the other queries' documents lie, not only its own candidates. With W > 1 devices the other
    ranks' documents (in the scores for InfoNCE) are not distilled: the teacher scored only this
    device's batch."""

    def __init__(self, student_temperature: float = 1.0, teacher_temperature: float = 1.0,
                 in_batch: bool = False):
        super().__init__()
        self.ts, self.tt, self.in_batch = student_temperature, teacher_temperature, in_batch

    def forward(self, x: LossInputs) -> torch.Tensor:
        if self.in_batch:
            n = x.q.shape[0] * x.group_size
            s = x.scores[:, x.d_offset:x.d_offset + n]  # (B, B*G) this device's documents
            t = _teacher_all(x, self.name)  # (B, B*G)
        else:
            s, t = x.own_scores(), _teacher(x, self.name)  # (B, G) each
        student = F.log_softmax(s / self.ts, dim=1)
        teacher = F.log_softmax(t / self.tt, dim=1)
        return F.kl_div(student, teacher, log_target=True, reduction="batchmean")


def _teacher_all(x: LossInputs, name: str) -> torch.Tensor:
    if x.teacher_all is None:
        raise ValueError(f"loss term {name!r} with in_batch=true needs teacher scores of every "
                         "(query, document) pair of the batch: give the data module a scorer "
                         "(GroupDataModule(scorer=...)), or set in_batch=false to distil each "
                         "query's own candidates from data.teacher_scores")
    return x.teacher_all.to(x.scores.dtype)


@register("margin_mse")
class MarginMSE(LossTerm):
    def forward(self, x: LossInputs) -> torch.Tensor:
        s, t = x.own_scores(), _teacher(x, self.name)  # (B, G) each
        student_margin = s[:, :1] - s[:, 1:]  # (B, G-1)
        teacher_margin = t[:, :1] - t[:, 1:]
        return F.mse_loss(student_margin, teacher_margin)
