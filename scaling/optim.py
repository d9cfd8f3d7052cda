"""The optimiser and learning-rate schedule of every training run, in plain torch (no Lightning):
AdamW, a linear warm-up over ``int(warmup_ratio x max_steps)`` steps (at least one) whose first
step already takes ``lr / warmup``, then a linear decay to 0 at ``max_steps``. ``RetrieverModule``
trains with it, and benchmarks/vs_sentence_transformers.py hands the very same pair to
sentence-transformers' trainer."""

from __future__ import annotations

import torch


def adamw_schedule(params, lr: float, weight_decay: float, warmup_ratio: float, max_steps: int):
    """(AdamW over the parameters that require gradients, its LambdaLR stepped once per step)."""
    opt = torch.optim.AdamW([p for p in params if p.requires_grad], lr=lr, weight_decay=weight_decay)
    warmup = max(1, int(warmup_ratio * max_steps))
    total = max(max_steps, warmup + 1)

    def factor(step):  # linear warm-up, then linear decay to 0 at max_steps
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / (total - warmup))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)
