"""Pure FLOP accounting: how many optimiser steps a training-FLOP budget buys.

Convention (Kaplan et al.; nanochat's ``estimate_flops``): a matmul with N weights costs 2N
FLOPs per token forward. Backward costs 2N for the activation gradients plus 2N for the
weight gradients, so full fine-tuning is 6N per token; under LoRA the frozen weights need no
weight gradients, so ~4N (the adapters' own FLOPs are counted on top, at 6x). Attention
scores and values add 4 * layers * hidden * seq_len per token forward, 3x that with the
backward (no weights there). The input embedding is a lookup: free. A head may add forward
FLOPs per token (the sparse head pays the LM-head projection); it is trained at the same
multiplier as the backbone's frozen part.

Left out, on purpose: gradient-checkpoint recompute (hardware work, not model work, see
``hardware_flops``), norms, activations, softmax and the loss (lower order). Padding counts
as work: the plan assumes every sequence at its maximum length, an upper bound the ledger
compares with the realised tokens.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

from scaling.sizes import Arch


def layer_params(arch: Arch) -> int:
    """Weights in one layer's matmuls: q, k, v, o and the MLP (gated: 3 matrices; BERT: 2)."""
    attn = arch.hidden * arch.heads * arch.hd * 2 + arch.hidden * arch.kv_heads * arch.hd * 2
    mlp = (3 if arch.gated_mlp else 2) * arch.hidden * arch.intermediate
    return attn + mlp


def lora_params(arch: Arch, r: int, targets: list[str]) -> int:
    """Adapter weights: r * (in + out) for every targeted projection in every layer."""
    q_out, kv_out = arch.heads * arch.hd, arch.kv_heads * arch.hd
    shapes = {"q_proj": (arch.hidden, q_out), "k_proj": (arch.hidden, kv_out),
              "v_proj": (arch.hidden, kv_out), "o_proj": (q_out, arch.hidden),
              "gate_proj": (arch.hidden, arch.intermediate), "up_proj": (arch.hidden, arch.intermediate),
              "down_proj": (arch.intermediate, arch.hidden),
              # BERT-style names
              "query": (arch.hidden, q_out), "key": (arch.hidden, kv_out), "value": (arch.hidden, kv_out)}
    return arch.layers * sum(r * (i + o) for t, (i, o) in shapes.items() if t in targets)


def forward_flops_per_token(arch: Arch, seq_len: int, head_extra: float = 0.0) -> float:
    """Forward FLOPs for one token of a sequence of ``seq_len`` tokens."""
    weights = 2 * arch.layers * layer_params(arch)
    attention = 4 * arch.layers * arch.heads * arch.hd * seq_len
    return weights + attention + head_extra


def train_flops_per_token(arch: Arch, seq_len: int, lora_r: int | None, lora_targets=(),
                          head_extra: float = 0.0) -> float:
    """Forward + backward FLOPs per token: 6N full, 4N + 6*adapter under LoRA (see module doc)."""
    n = arch.layers * layer_params(arch)
    attention = 3 * 4 * arch.layers * arch.heads * arch.hd * seq_len
    if lora_r is None:
        weights = 6 * n
        head = 3 * head_extra
    else:
        weights = 4 * n + 6 * lora_params(arch, lora_r, list(lora_targets))
        head = 2 * head_extra
    return weights + attention + head


@dataclass(frozen=True)
class Plan:
    """What the budget buys; printed at start and written to ``budget.json`` beside the checkpoint."""

    steps: int
    flops_per_step: float
    total_flops: float
    budget_flops: float | None
    tokens_per_step: int
    query_tokens_per_step: int
    doc_tokens_per_step: int
    global_batch: int
    group_size: int
    backbone_params: int
    trainable_params: int

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        src = (f"budget {self.budget_flops:.3e} FLOPs / {self.flops_per_step:.3e} per step"
               if self.budget_flops else f"fixed {self.steps} steps x {self.flops_per_step:.3e}")
        return (f"[budget] {src} -> {self.steps} steps, {self.total_flops:.3e} FLOPs in all | "
                f"{self.global_batch} queries x (1 + {self.group_size - 1} docs) per step, "
                f"{self.tokens_per_step} tokens/step | backbone {self.backbone_params / 1e6:.1f}M "
                f"non-embedding params, {self.trainable_params / 1e6:.2f}M trained")


def plan(arch: Arch, query_len: int, doc_len: int, group_size: int, global_batch: int,
         lora_r: int | None, lora_targets=(), head_extra_per_token: float | Callable[[int], float] = 0.0,
         budget_flops: float | None = None, steps: int | None = None) -> Plan:
    """Steps for a FLOP budget (or FLOPs for fixed steps): max_steps = floor(budget / per_step).
    ``head_extra_per_token``: the head's forward FLOPs per token, a number or a function of the
    text's length (a lexical sparse head projects onto the text's own tokens)."""
    if (budget_flops is None) == (steps is None):
        raise ValueError("give exactly one of budget_flops and steps")
    extra = head_extra_per_token if callable(head_extra_per_token) else lambda _: head_extra_per_token
    q_tok = global_batch * query_len
    d_tok = global_batch * group_size * doc_len
    per_step = (q_tok * train_flops_per_token(arch, query_len, lora_r, lora_targets, extra(query_len))
                + d_tok * train_flops_per_token(arch, doc_len, lora_r, lora_targets, extra(doc_len)))
    if steps is None:
        steps = math.floor(budget_flops / per_step)
        if steps < 1:
            raise ValueError(f"budget {budget_flops:.3e} FLOPs buys no step "
                             f"(one step costs {per_step:.3e})")
    backbone = arch.layers * layer_params(arch)
    trainable = backbone if lora_r is None else lora_params(arch, lora_r, list(lora_targets))
    return Plan(steps, per_step, steps * per_step, budget_flops, q_tok + d_tok, q_tok, d_tok,
                global_batch, group_size, backbone, trainable)


def plan_run(cfg, head_extra_per_token: float | Callable[[int], float] = 0.0, world_size: int = 1) -> Plan:
    """The plan of a run configuration: its size preset's architecture (cut to model.num_layers),
    lengths, group size, batch and LoRA settings. A budget that buys no step is a ConfigError."""
    from scaling import sizes
    from scaling.schema import ConfigError
    lora = cfg.model.lora
    try:
        return plan(sizes.arch_for(cfg.model.name, cfg.model.num_layers), cfg.data.query_len,
                    cfg.data.doc_len, 1 + cfg.data.n_negatives,
                    cfg.trainer.batch_size * cfg.trainer.accumulate * world_size,
                    lora.r if lora.enabled else None, lora.targets, head_extra_per_token,
                    cfg.budget.flops, cfg.budget.steps)
    except ValueError as e:
        raise ConfigError("budget.flops", str(e)) from None
