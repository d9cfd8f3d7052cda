"""Backbone loading: the packaged SmolLM2 (cut to the CPU ladder), LoRA, and clear errors."""

import pytest
import torch

from scaling.backbone import load_backbone
from scaling.config import LoraConfig, ModelConfig


def test_smollm2_loads_offline_and_cuts_layers():
    bb = load_backbone(ModelConfig(name="smollm2-135m", num_layers=2))
    assert bb.hidden_size == 576 and bb.vocab_size == 49152
    assert len(bb.body.model.base_model.model.layers) == 2
    trainable = [n for n, p in bb.body.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    out = bb.body(torch.tensor([[1, 2, 3]]), torch.ones(1, 3, dtype=torch.long))
    assert out.shape == (1, 3, 576)


def test_full_finetune_trains_every_body_weight():
    bb = load_backbone(ModelConfig(name="tiny", lora=LoraConfig(enabled=False)))
    assert all(p.requires_grad for p in bb.body.parameters())


@pytest.mark.parametrize("overrides,match", [
    ({"name": "8b", "path": "/nowhere/llama"}, "/nowhere/llama"),
    ({"name": "3b"}, "model.download=true"),
])
def test_missing_weights_say_how_to_supply_them(overrides, match):
    with pytest.raises(FileNotFoundError, match=match):
        load_backbone(ModelConfig(**overrides))


def _encode(bb, texts, side="right"):
    from scaling.data.collate import Tokenize
    batch = Tokenize(bb.tokenizer, 32, padding_side=side)(texts)
    with torch.no_grad():
        return bb.body(batch["input_ids"], batch["attention_mask"]), batch["attention_mask"]


def test_bidirectional_attention_sees_later_tokens_and_ignores_padding():
    causal = load_backbone(ModelConfig(name="tiny"))
    both = load_backbone(ModelConfig(name="tiny", bidirectional=True))
    a, b = "the first words then one ending", "the first words then another different ending"
    h_causal, _ = _encode(causal, [a, b])
    h_both, _ = _encode(both, [a, b])
    # the first token cannot see what follows under the causal mask, and does when bidirectional
    torch.testing.assert_close(h_causal[0, 0], h_causal[1, 0])
    assert not torch.allclose(h_both[0, 0], h_both[1, 0], atol=1e-4)
    # padding keys stay invisible: a text alone equals the same text padded in a batch
    alone, _ = _encode(both, [a])
    for side in ("right", "left"):
        padded, mask = _encode(both, [a, b + " and much more text to force padding"], side)
        real = padded[0][mask[0].bool()]
        torch.testing.assert_close(real, alone[0], atol=1e-5, rtol=1e-4)


def test_encoder_only_minilm_loads_through_the_same_code():
    from scaling.heads.dense import DenseHead
    bb = load_backbone(ModelConfig(name="minilm", query_prefix="", doc_prefix="",
                                   lora=LoraConfig(targets=["query", "key", "value"])))
    assert bb.lm_head is None and bb.hidden_size == 384
    texts = ["a cat sits on the mat", "a kitten is lying on a rug", "the stock market crashed today"]
    hidden, mask = _encode(bb, texts)
    reps = DenseHead("mean", normalize=True)(hidden, mask)
    sims = reps @ reps.T
    assert sims[0, 1] > sims[0, 2] + 0.2  # pretrained weights, not random ones


def test_num_layers_cuts_an_encoder_too():
    """model.num_layers on a BERT encoder keeps its first layers, as on a decoder; the budget agrees."""
    from scaling.sizes import arch_for
    bb = load_backbone(ModelConfig(name="minilm", num_layers=2, lora=LoraConfig(enabled=False)))
    assert len(bb.body.model.encoder.layer) == 2 and bb.body.model.config.num_hidden_layers == 2
    assert arch_for("minilm", 2).layers == 2
    hidden, mask = _encode(bb, ["two layers are enough to run"])
    assert hidden.shape[-1] == 384 and torch.isfinite(hidden).all()
