"""Backbone loading: the packaged SmolLM2 (cut to the CPU ladder), LoRA, and clear errors."""

import pytest
import torch

from scaling.backbone import load_backbone
from scaling.config import LoraConfig, ModelConfig


def test_smollm2_loads_offline_and_cuts_layers():
    bb = load_backbone(ModelConfig(name="smollm2-135m", num_layers=2))
    assert bb.hidden_size == 576 and bb.vocab_size == 49152
    assert len(bb.body.base_model.model.layers) == 2
    trainable = [n for n, p in bb.body.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    out = bb.body(input_ids=torch.tensor([[1, 2, 3]]), attention_mask=torch.ones(1, 3, dtype=torch.long))
    assert out.last_hidden_state.shape == (1, 3, 576)


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
