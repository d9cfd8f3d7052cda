"""RetrieverModule: encode -> gather -> score -> weighted loss. No paradigm or loss branches.

The head decides what a representation is (dense vector or vocabulary weights); the loss terms
decide what to optimise; this module only wires them and owns the optimiser schedule.
"""

from __future__ import annotations

import lightning as L
import torch

from scaling.distributed import gather_with_grad
from scaling.gradcache import encode_chunked
from scaling.losses.base import LossInputs, WeightedLoss
from scaling.optim import adamw_schedule


class RetrieverModule(L.LightningModule):
    def __init__(self, body, head, loss: WeightedLoss | None = None, lr: float = 3e-4,
                 warmup_ratio: float = 0.1, weight_decay: float = 0.0, max_steps: int = 1,
                 grad_cache_chunk: int | None = None):
        """``loss`` and the optimiser settings matter only for training; ``RetrieverModule(body,
        head)`` is an encoder (scaling.checkpoint.inference_model). ``grad_cache_chunk``: encode
        training batches in chunks of that many rows by gradient caching (scaling/gradcache.py)."""
        super().__init__()
        self.body, self.head, self.loss = body, head, loss
        self.lr, self.warmup_ratio, self.weight_decay = lr, warmup_ratio, weight_decay
        self.max_steps, self.grad_cache_chunk = max_steps, grad_cache_chunk
        self.strict_loading = False  # checkpoints hold trained weights only, see on_save_checkpoint

    def encode(self, tokens: dict) -> torch.Tensor:
        """{"input_ids", "attention_mask", "content_mask"} (B, L) -> representations (B, dim)."""
        ids, mask = tokens["input_ids"], tokens["attention_mask"]
        hidden = self.body(ids, mask)  # (B, L, H)
        return self.head(hidden, mask, ids, tokens.get("content_mask"))

    def step_inputs(self, batch, teacher=None) -> LossInputs:
        q = encode_chunked(self.encode, batch["q"], self.grad_cache_chunk)  # (B, D)
        d = encode_chunked(self.encode, batch["d"], self.grad_cache_chunk)  # (B*G, D)
        group = d.shape[0] // q.shape[0]
        q_all, q_off = gather_with_grad(q)
        d_all, d_off = gather_with_grad(d)
        scores = q @ d_all.T  # (B, W*B*G)
        return LossInputs(q, d, q_all, d_all, scores, group, q_off, d_off,
                          teacher=batch.get("teacher", teacher), step=self.global_step,
                          max_steps=self.max_steps, teacher_all=batch.get("teacher_all"))

    def training_step(self, batch, batch_idx):
        x = self.step_inputs(batch)
        total, parts = self.loss(x)
        bs = x.q.shape[0]
        self.log("train/loss", total, prog_bar=True, batch_size=bs)
        for label, value in parts.items():
            self.log(f"train/{label}", value, batch_size=bs)
        with torch.no_grad():
            for label, value in self.head.batch_stats(x.q, x.d).items():
                self.log(f"train/{label}", value, batch_size=bs)
        return total

    def on_train_start(self):
        """Every submodule in training mode: ``from_pretrained`` returns a body in eval mode and
        Lightning keeps each submodule's mode through ``fit``, so without this a pretrained
        encoder's own dropout (MiniLM's, MPNet's 0.1) stayed off, or came on only after an
        evaluation of the untrained model had reset the modes: a run's training depended on
        whether that evaluation was cached."""
        self.train()

    def on_save_checkpoint(self, checkpoint):
        """Keep only trained parameters: the frozen backbone is rebuilt from config on load."""
        keep = {k for k, p in self.named_parameters() if p.requires_grad}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}

    def configure_optimizers(self):
        opt, sched = adamw_schedule(self.parameters(), self.lr, self.weight_decay, self.warmup_ratio, self.max_steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
