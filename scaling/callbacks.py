"""Training callbacks beyond Lightning's own: the FLOP ledger, the learning curve, log flushing.

``FlopLedger`` charges the plan's FLOPs per optimiser step, counts the tokens the batches really
held (padding left out) against the planned ones, logs both every step as ``ledger/*``, stops
training once the next step would pass the budget, and keeps its sums in every checkpoint, so a
resumed run continues its books. ``summary()`` is what ``result.json["budget"]["realised"]`` holds.

``LearningCurve`` evaluates the model on ``eval.curve_split`` every ``eval.every_n_steps`` steps
(leader only, in a temporary folder: nothing but the metrics is kept), for data-efficiency curves.

``FlushLogs`` makes the loggers write what they hold whenever a checkpoint is saved, so a run
killed after a checkpoint has every step up to it on disk (the resumed run logs the rest).
"""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import Callback

from scaling.budget import Plan


class FlopLedger(Callback):
    def __init__(self, plan: Plan):
        self.plan = plan
        self.steps, self.tokens, self.batches = 0, 0, 0

    def _tokens(self, batch) -> int:
        """Real (non-pad) query and document tokens of one micro-batch."""
        return int(batch["q"]["attention_mask"].sum()) + int(batch["d"]["attention_mask"].sum())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        tokens = torch.tensor(float(self._tokens(batch)))
        if trainer.world_size > 1:  # every rank's share of the step
            tokens = trainer.strategy.reduce(tokens.to(pl_module.device), reduce_op="sum").cpu()
        self.tokens += int(tokens.item())
        self.batches += 1
        if trainer.global_step == self.steps:  # inside an accumulation window: no step yet
            return
        self.steps = trainer.global_step
        planned_tokens = self.steps * self.plan.tokens_per_step
        pl_module.log_dict({"ledger/flops": float(self.steps * self.plan.flops_per_step),
                            "ledger/tokens": float(self.tokens),
                            "ledger/tokens_planned": float(planned_tokens),
                            "ledger/real_share": self.tokens / max(planned_tokens, 1)},
                           on_step=True, on_epoch=False, batch_size=1, rank_zero_only=True)
        budget = self.plan.budget_flops
        if budget is not None and (self.steps + 1) * self.plan.flops_per_step > budget * (1 + 1e-9):
            trainer.should_stop = True

    def summary(self) -> dict:
        """Steps taken, FLOPs charged, real tokens and their share of the planned ones."""
        planned = self.steps * self.plan.tokens_per_step
        return {"steps": self.steps, "flops": self.steps * self.plan.flops_per_step,
                "tokens": self.tokens, "tokens_planned": planned,
                "real_share": round(self.tokens / planned, 4) if planned else None,
                "within_budget": self.plan.budget_flops is None
                or self.steps * self.plan.flops_per_step <= self.plan.budget_flops * (1 + 1e-9)}

    def state_dict(self):
        return {"steps": self.steps, "tokens": self.tokens, "batches": self.batches}

    def load_state_dict(self, state):
        self.steps, self.tokens, self.batches = state["steps"], state["tokens"], state["batches"]


class LearningCurve(Callback):
    """Every ``every`` optimiser steps: ``evaluate(module) -> {"<dataset>/<split>": metrics}``
    on the leader; the points (step, FLOPs charged, metrics) go to ``points`` and the checkpoint."""

    def __init__(self, every: int, evaluate, flops_per_step: float):
        self.every, self.evaluate, self.flops_per_step = every, evaluate, flops_per_step
        self.points: list[dict] = []
        self.last = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if step == self.last or step % self.every:  # no new step (accumulating), or not a multiple
            return
        self.last = step
        if trainer.is_global_zero:
            from scaling.evaluation.metrics import numbers
            metrics = {split: numbers(m) for split, m in self.evaluate(pl_module).items()}  # no per-query values
            self.points.append({"step": step, "flops": step * self.flops_per_step, "metrics": metrics})
            first = next(iter(metrics.values()), {})
            shown = ", ".join(f"{k} {v:.4f}" for k, v in first.items() if "@" in k)
            print(f"\n[curve] step {step}: {shown}", flush=True)
        trainer.strategy.barrier("learning-curve")

    def state_dict(self):
        return {"points": self.points, "last": self.last}

    def load_state_dict(self, state):
        self.points, self.last = list(state["points"]), state["last"]


class FlushLogs(Callback):
    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        for logger in trainer.loggers:
            logger.save()
