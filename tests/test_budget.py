"""Budget arithmetic: parameter counts match real models, steps = floor(budget / per step)."""

import math

import pytest

from scaling import budget, sizes


def test_layer_and_lora_params_match_a_real_model():
    from scaling.backbone import load_backbone
    from scaling.config import ModelConfig
    bb = load_backbone(ModelConfig(name="tiny"))
    arch = sizes.arch_for("tiny")
    real_layers = sum(p.numel() for n, p in bb.body.named_parameters()
                      if ".layers." in n and "proj" in n and "lora" not in n)
    assert real_layers == arch.layers * budget.layer_params(arch)
    real_lora = sum(p.numel() for n, p in bb.body.named_parameters() if "lora_" in n)
    assert real_lora == budget.lora_params(arch, 16, ModelConfig().lora.targets)


@pytest.mark.parametrize("name,billions", [("1b", 0.97), ("3b", 2.8), ("8b", 6.98)])
def test_published_sizes(name, billions):
    """Non-embedding parameters of the Llama presets (1.24B/3.21B/8.03B with embeddings)."""
    arch = sizes.arch_for(name)
    assert arch.layers * budget.layer_params(arch) / 1e9 == pytest.approx(billions, rel=0.03)


def test_plan_steps_and_flops():
    arch = sizes.arch_for("smollm2-135m", 4)
    per_q = budget.train_flops_per_token(arch, 32, 16, ["q_proj"])
    per_d = budget.train_flops_per_token(arch, 128, 16, ["q_proj"])
    per_step = 8 * 32 * per_q + 8 * 2 * 128 * per_d
    p = budget.plan(arch, 32, 128, 2, 8, 16, ["q_proj"], budget_flops=10.5 * per_step)
    assert p.steps == 10 and p.flops_per_step == pytest.approx(per_step)
    assert p.tokens_per_step == 8 * 32 + 16 * 128
    fixed = budget.plan(arch, 32, 128, 2, 8, 16, ["q_proj"], steps=7)
    assert fixed.total_flops == pytest.approx(7 * per_step)
    with pytest.raises(ValueError, match="buys no step"):
        budget.plan(arch, 32, 128, 2, 8, 16, ["q_proj"], budget_flops=per_step / 2)


def test_full_finetune_costs_six_n_and_lora_four_n():
    arch = sizes.arch_for("1b")
    n = arch.layers * budget.layer_params(arch)
    attn = 3 * 4 * arch.layers * arch.heads * arch.hd * 64
    assert budget.train_flops_per_token(arch, 64, None) == pytest.approx(6 * n + attn)
    lora = budget.train_flops_per_token(arch, 64, 16, ["q_proj", "v_proj"])
    assert lora == pytest.approx(4 * n + attn + 6 * budget.lora_params(arch, 16, ["q_proj", "v_proj"]))
    assert math.isclose(budget.forward_flops_per_token(arch, 64), 2 * n + attn / 3)
