"""Pure FLOP accounting: how many optimiser steps a training budget buys.

Convention (Kaplan et al.; nanochat's ``estimate_flops``): a matmul with N weights costs 2N
FLOPs per token forward. Backward costs 2N for the activation gradients plus 2N for the
weight gradients, so full fine-tuning is 6N per token; under LoRA the frozen weights need no
weight gradients, so ~4N (the adapters' own FLOPs are counted on top, at 6x). Attention
scores and values add 4 * layers * heads * head_dim * seq_len per token forward, 3x that with
the backward (no weights there). The input embedding is a lookup: free. A head may add forward
FLOPs per token (the sparse head pays the LM-head projection); it is trained at the same
multiplier as the backbone's frozen part.

The architecture numbers come from the backbone's own HF config (``scaling.backbone.describe``),
and the batch from the resolved world size (``resolve_batch``): a run on N devices plans the
global batch it really takes.

Charged to the run: the model FLOPs above, at every sequence's maximum length (padding counts
as work: an upper bound the ledger compares with the realised tokens). Reported but never
charged: gradient-checkpoint recompute (one more forward of the body: hardware work, not model
work; in the plan as ``recompute_flops_per_step``). Not charged either: teacher scoring and MNTP
adaptation (prepared once, properties of the inputs shared by every run).
Left out: norms, activations, softmax and the loss (lower order).
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
              # BERT-style names, and MPNet's
              "query": (arch.hidden, q_out), "key": (arch.hidden, kv_out), "value": (arch.hidden, kv_out),
              "q": (arch.hidden, q_out), "k": (arch.hidden, kv_out), "v": (arch.hidden, kv_out), "o": (q_out, arch.hidden)}
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


def scoring_flops(arch: Arch, pairs: int, seq_len: int) -> float:
    """Forward FLOPs of a cross-encoder scoring ``pairs`` (query, document) pairs of at most
    ``seq_len`` tokens each: an upper bound (every pair at its maximum length), reported beside a
    distillation run and never charged to it."""
    return float(pairs) * seq_len * forward_flops_per_token(arch, seq_len)


@dataclass(frozen=True)
class Batch:
    """Queries per optimiser step, and how they are split: ``micro`` per device per forward,
    ``accumulate`` forwards per step, on ``world`` devices."""

    micro: int
    accumulate: int
    world: int

    @property
    def global_batch(self) -> int:
        return self.micro * self.accumulate * self.world


def resolve_batch(batch_size: int, accumulate: int, global_batch: int | None, world: int) -> Batch:
    """The batch a run takes on ``world`` devices. Without ``global_batch`` the per-device batch
    is fixed (``batch_size`` x ``accumulate``) and the global one grows with the world size. With
    it the global batch is fixed: each device takes ``global_batch / world`` queries per step, in
    micro-batches of at most ``batch_size`` (accumulating the rest). Raises ValueError when the
    numbers do not divide."""
    if world < 1:
        raise ValueError(f"world size must be >= 1, got {world}")
    if global_batch is None:
        return Batch(batch_size, accumulate, world)
    if accumulate != 1:
        raise ValueError("trainer.accumulate is derived when trainer.global_batch is set: leave it at 1")
    if global_batch % world:
        raise ValueError(f"trainer.global_batch={global_batch} does not divide over {world} devices")
    per_device = global_batch // world
    micro = min(batch_size, per_device)
    if per_device % micro:
        raise ValueError(f"{per_device} queries per device (trainer.global_batch={global_batch} / {world} "
                         f"devices) do not split into micro-batches of trainer.batch_size={batch_size}")
    return Batch(micro, per_device // micro, world)


@dataclass(frozen=True)
class Counts:
    """Parameters of the backbone as instantiated from its config: ``total`` the body's
    (embeddings included), ``lm_head`` the LM head's own weights (0 when tied to the embedding,
    or for an encoder without one: Llama-3.1-8B's untied head is 0.53B of its 8.03B)."""

    total: int
    embedding: int
    lm_head: int = 0

    @property
    def nonembedding(self) -> int:
        return self.total - self.embedding


@dataclass(frozen=True)
class Plan:
    """What the budget buys; printed at start, written to ``budget.json`` beside the checkpoint and
    to ``result.json["budget"]["plan"]``."""

    max_steps: int
    flops_per_step: float
    total_flops: float
    budget_mode: str
    """flops | tokens | steps: which budget key decided ``max_steps``."""
    budget_flops: float | None
    budget_tokens: float | None
    tokens_per_step: int
    query_tokens_per_step: int
    doc_tokens_per_step: int
    flops_per_token_forward: float
    """Forward FLOPs per (planned) token, head included: a step's forward FLOPs / its tokens."""
    global_batch: int
    micro_batch: int
    accumulate: int
    world_size: int
    group_size: int
    query_len: int
    doc_len: int
    params_total: int
    """The whole backbone, its LM head included (what a model card states: 8.03B for Llama-3.1-8B)."""
    params_without_lm_head: int
    """The body alone (embeddings included): what a dense head reads. A sparse head also computes
    the LM head, and its FLOPs are charged in ``flops_per_token_forward``."""
    params_lm_head: int
    """The LM head's own weights: 0 when tied to the input embedding."""
    params_nonembedding: int
    params_matmul: int
    """Weights in the body's matmuls (what the FLOP formula counts)."""
    params_trainable: int
    recompute_flops_per_step: float
    """Gradient-checkpoint recompute (one more forward of the body) and, under gradient caching,
    the re-encoding of every chunk (one more forward of body and head): reported, not charged."""

    @property
    def queries_seen(self) -> int:
        """Query passes the run makes: steps x global batch (a query drawn again counts again), to
        compare grid points that spend one budget on different data shapes (kd's larger batch)."""
        return self.max_steps * self.global_batch

    def as_dict(self) -> dict:
        return {**asdict(self), "queries_seen": self.queries_seen}

    def describe(self) -> str:
        if self.budget_mode == "flops":
            src = f"budget {self.budget_flops:.3e} FLOPs / {self.flops_per_step:.3e} per step"
        elif self.budget_mode == "tokens":
            src = f"budget {self.budget_tokens:.3e} tokens / {self.tokens_per_step} per step"
        else:
            src = f"fixed {self.max_steps} steps x {self.flops_per_step:.3e}"
        split = (f" ({self.world_size} devices x {self.accumulate} x {self.micro_batch})"
                 if self.world_size > 1 or self.accumulate > 1 else "")
        recompute = (f" | +{self.recompute_flops_per_step * self.max_steps:.3e} recompute, not charged"
                     if self.recompute_flops_per_step and self.max_steps else "")
        head = f" ({self.params_without_lm_head / 1e6:.1f}M without the LM head)" if self.params_lm_head else ""
        return (f"[budget] {src} -> {self.max_steps} steps, {self.total_flops:.3e} FLOPs in all, "
                f"{self.queries_seen:,} queries seen | "
                f"{self.global_batch} queries{split} x (1 + {self.group_size - 1} docs) per step, "
                f"{self.tokens_per_step} tokens/step | {self.params_total / 1e6:.1f}M params{head}, "
                f"{self.params_nonembedding / 1e6:.1f}M non-embedding, {self.params_trainable / 1e6:.2f}M "
                f"trained{recompute}")


def plan(arch: Arch, query_len: int, doc_len: int, group_size: int, batch: Batch | int,
         lora_r: int | None, lora_targets=(), head_extra_per_token: float | Callable[[int], float] = 0.0,
         budget_flops: float | None = None, steps: int | None = None, budget_tokens: float | None = None,
         counts: Counts | None = None, recompute: bool = False,
         grad_cache: bool = False, head_recompute: bool = False) -> Plan:
    """Steps for a FLOP or token budget (or FLOPs for fixed steps): max_steps = floor(budget / per step).
    ``batch``: a resolved Batch, or a global batch on one device. ``head_extra_per_token``: the
    head's forward FLOPs per token, a number or a function of the text's length (a lexical sparse
    head projects onto the text's own tokens). ``counts``: the body's parameters as instantiated
    (without them the matmul weights stand in for the non-embedding count). A budget that buys no
    step raises ValueError (a dry run fails on it as the run would). ``grad_cache``:
    every chunk is encoded twice (without, then with a graph), one more forward per step.
    ``head_recompute``: the head's forward runs again in the backward (a checkpointed head)."""
    if sum(x is not None for x in (budget_flops, steps, budget_tokens)) != 1:
        raise ValueError("give exactly one of budget_flops, budget_tokens and steps")
    if isinstance(batch, int):
        batch = Batch(batch, 1, 1)
    extra = head_extra_per_token if callable(head_extra_per_token) else lambda _: head_extra_per_token
    global_batch = batch.global_batch
    q_tok = global_batch * query_len
    d_tok = global_batch * group_size * doc_len
    per_step = (q_tok * train_flops_per_token(arch, query_len, lora_r, lora_targets, extra(query_len))
                + d_tok * train_flops_per_token(arch, doc_len, lora_r, lora_targets, extra(doc_len)))
    forward = (q_tok * forward_flops_per_token(arch, query_len, extra(query_len))
               + d_tok * forward_flops_per_token(arch, doc_len, extra(doc_len)))
    recompute_per_step = (q_tok * forward_flops_per_token(arch, query_len)
                          + d_tok * forward_flops_per_token(arch, doc_len)) if recompute else 0.0
    if grad_cache:
        recompute_per_step += forward
    elif head_recompute:  # (gradient caching re-runs the head already)
        recompute_per_step += q_tok * extra(query_len) + d_tok * extra(doc_len)
    mode = "flops" if budget_flops is not None else "tokens" if budget_tokens is not None else "steps"
    if mode == "flops":
        steps = math.floor(budget_flops / per_step)
        if steps < 1:
            raise ValueError(f"{budget_flops:.3e} FLOPs buys no step: one step costs {per_step:.3e} "
                             f"({q_tok + d_tok} tokens); raise budget.flops or shrink the batch or lengths")
    elif mode == "tokens":
        steps = math.floor(budget_tokens / (q_tok + d_tok))
        if steps < 1:
            raise ValueError(f"{budget_tokens:.3e} tokens buys no step: one step takes {q_tok + d_tok}; "
                             "raise budget.tokens or shrink the batch or lengths")
    matmul = arch.layers * layer_params(arch)
    counts = counts or Counts(matmul, 0)
    trainable = counts.total if lora_r is None else lora_params(arch, lora_r, list(lora_targets))
    return Plan(steps, per_step, steps * per_step, mode, budget_flops, budget_tokens, q_tok + d_tok, q_tok,
                d_tok, forward / (q_tok + d_tok), global_batch, batch.micro, batch.accumulate, batch.world,
                group_size, query_len, doc_len, counts.total + counts.lm_head, counts.total, counts.lm_head,
                counts.nonembedding, matmul, trainable,
                recompute_per_step)


def plan_run(cfg, arch: Arch, counts: Counts | None = None,
             head_extra_per_token: float | Callable[[int], float] = 0.0, world_size: int = 1,
             head_recompute: bool = False) -> Plan:
    """The plan of a run configuration on ``world_size`` devices: ``arch`` and ``counts`` from
    the backbone's HF config (cut to model.num_layers), lengths, group size, batch, LoRA and budget
    from ``cfg``. A budget that buys no step, or a batch that does not divide, is a ConfigError."""
    from scaling.schema import ConfigError
    lora, t, b = cfg.model.lora, cfg.trainer, cfg.budget
    # gradient caching bounds memory by the chunk, so a device takes its whole share in one micro-batch
    cap = t.global_batch if t.grad_cache_chunk and t.global_batch else t.batch_size
    try:
        batch = resolve_batch(cap, t.accumulate, t.global_batch, world_size)
    except ValueError as e:
        raise ConfigError("trainer.global_batch" if t.global_batch else "trainer.batch_size", str(e)) from None
    try:
        return plan(arch, cfg.data.query_len, cfg.data.doc_len, 1 + cfg.data.n_negatives, batch,
                    lora.r if lora.enabled else None, lora.targets, head_extra_per_token,
                    budget_flops=b.flops, steps=b.steps, budget_tokens=b.tokens, counts=counts,
                    recompute=cfg.model.gradient_checkpointing,
                    grad_cache=bool(t.grad_cache_chunk), head_recompute=head_recompute)
    except ValueError as e:
        raise ConfigError(f"budget.{'flops' if b.flops is not None else 'tokens'}", str(e)) from None
