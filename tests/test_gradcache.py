"""Gradient caching: chunked encoding without graphs gives the gradients of the same chunks encoded
with their graphs kept, with LoRA dropout on (the re-encoding repeats the first pass's random
state), and of one full-batch forward with dropout off; under DDP (gloo) it keeps the exact
cross-device negatives; the plan gives a device its whole share as one micro-batch."""

import pytest
import torch

from scaling import checkpoint
from scaling.config import parse
from scaling.checks import make_plan
from scaling.gradcache import encode_chunked, rows
from scaling.module import RetrieverModule
from tests.conftest import compose

B, LQ, LD, NEG = 4, 8, 12, 2


def _batch(vocab, seed=0):
    g = torch.Generator().manual_seed(seed)

    def tokens(n, length):
        ids = torch.randint(0, vocab, (n, length), generator=g)
        mask = torch.ones(n, length, dtype=torch.long)
        mask[::3, -3:] = 0  # some padding
        return {"input_ids": ids, "attention_mask": mask, "content_mask": mask.clone()}
    return {"q": tokens(B, LQ), "d": tokens(B * (1 + NEG), LD)}


def _model(tmp_path, *overrides):
    cfg = parse(compose(["size=tiny", "budget=steps", f"data.n_negatives={NEG}", f"cache_dir={tmp_path}",
                         "paradigm=dense", "trainer.global_batch=null", *overrides]))
    torch.manual_seed(0)
    backbone, head, loss = checkpoint.build(cfg)
    for name, p in backbone.body.named_parameters():  # LoRA B starts at zero: move it so gradients flow
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.02)
    return RetrieverModule(backbone.body, head, loss, max_steps=10), backbone.vocab_size, cfg


def _grads(model, batch, chunk, seed, keep_graphs=False):
    """The trained parameters' gradients of one step: gradient caching in chunks of ``chunk``
    rows, or (``keep_graphs``) the same chunks encoded plainly, every graph kept."""
    model.zero_grad(set_to_none=True)
    model.train()
    torch.manual_seed(seed)
    if keep_graphs:
        encode = model.encode
        model.encode = lambda t: torch.cat([encode(rows(t, i, i + chunk))
                                            for i in range(0, t["input_ids"].shape[0], chunk)])
        try:
            total, _ = model.loss(model.step_inputs(batch))
        finally:
            del model.encode
    else:
        model.grad_cache_chunk = chunk
        total, _ = model.loss(model.step_inputs(batch))
        model.grad_cache_chunk = None
    total.backward()
    return total.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def _close(a, b, rel=1e-5):
    assert a.keys() == b.keys()
    assert max(float(v.abs().max()) for v in b.values()) > 0  # something to compare
    for k in a:
        scale = b[k].abs().max().clamp_min(1e-12)
        assert (a[k] - b[k]).abs().max() / scale <= rel, k


HEADS = {"dense": [], "sparse": ["paradigm=sparse", "paradigm.head.lexical=false", "paradigm.head.fold=false"]}
"""The sparse head over the whole vocabulary: the lexical one scores random token ids 0 (no shared
terms), which leaves no gradient to compare."""


@pytest.mark.parametrize("head", sorted(HEADS))
def test_grad_cache_equals_the_graphs_kept_with_lora_dropout_on(head, tmp_path):
    model, vocab, cfg = _model(tmp_path, *HEADS[head], "model.lora.dropout=0.1")
    assert cfg.model.lora.enabled and cfg.model.lora.dropout > 0
    batch = _batch(vocab)
    loss_c, cached = _grads(model, batch, chunk=3, seed=1)
    loss_k, kept = _grads(model, batch, chunk=3, seed=1, keep_graphs=True)
    assert torch.allclose(loss_c, loss_k, rtol=1e-6)
    _close(cached, kept)
    # dropout is on and matters: another seed moves the gradients
    _, other = _grads(model, batch, chunk=3, seed=2)
    assert any((other[k] - cached[k]).abs().max() > 1e-4 * cached[k].abs().max() for k in cached)


def test_grad_cache_equals_one_full_batch_forward_without_dropout(tmp_path):
    model, vocab, _ = _model(tmp_path, "model.lora.dropout=0.0")
    batch = _batch(vocab)
    _, cached = _grads(model, batch, chunk=2, seed=0)
    model.zero_grad(set_to_none=True)
    total, _ = model.loss(model.step_inputs(batch))
    total.backward()
    _close(cached, {n: p.grad for n, p in model.named_parameters() if p.requires_grad})


def test_encode_chunked_is_a_plain_call_when_off_or_without_autograd():
    calls = []

    def encode(t):
        calls.append(t["input_ids"].shape[0])
        return t["input_ids"].float()
    tokens = {"input_ids": torch.arange(10).view(5, 2), "attention_mask": torch.ones(5, 2), "content_mask": None}
    assert torch.equal(encode_chunked(encode, tokens, None), tokens["input_ids"].float()) and calls == [5]
    with torch.no_grad():
        encode_chunked(encode, tokens, 2)
    assert calls == [5, 5]
    out = encode_chunked(encode, tokens, 2)
    assert calls == [5, 5, 2, 2, 1] and torch.equal(out, tokens["input_ids"].float())


def test_plan_takes_the_whole_share_in_one_micro_batch():
    base = ["size=tiny", "budget=steps", "trainer.global_batch=32", "trainer.batch_size=4"]
    plain = make_plan(parse(compose(base)))
    cached = make_plan(parse(compose(base + ["trainer.grad_cache_chunk=8"])))
    assert (plain.micro_batch, plain.accumulate) == (4, 8) and (cached.micro_batch, cached.accumulate) == (32, 1)
    assert cached.flops_per_step == plain.flops_per_step  # the same training step is charged
    # the re-encoding is reported, not charged: one more forward per step
    forward = plain.flops_per_token_forward * plain.tokens_per_step
    assert cached.recompute_flops_per_step == pytest.approx(plain.recompute_flops_per_step + forward)
