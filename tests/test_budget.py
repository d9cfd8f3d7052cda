"""Budget arithmetic: parameter counts match real models, steps = floor(budget / per step)."""

import dataclasses
import json
import math
import subprocess
import sys

import pytest

from scaling import budget, sizes
from tests.conftest import ROOT


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
    assert p.max_steps == 10 and p.flops_per_step == pytest.approx(per_step)
    assert p.tokens_per_step == 8 * 32 + 16 * 128
    fixed = budget.plan(arch, 32, 128, 2, 8, 16, ["q_proj"], steps=7)
    assert fixed.total_flops == pytest.approx(7 * per_step)
    with pytest.raises(ValueError, match="buys no step"):
        budget.plan(arch, 32, 128, 2, 8, 16, ["q_proj"], budget_flops=per_step / 2)


def test_plan_counts_the_queries_a_run_sees():
    """queries_seen = steps x global batch, so a grid's kd point (a larger batch, fewer steps at one
    FLOP budget) and its cl point compare by the data they see."""
    arch = sizes.arch_for("smollm2-135m", 4)
    fixed = budget.plan(arch, 32, 128, 2, budget.Batch(4, 3, 2), 16, ["q_proj"], steps=165)
    assert fixed.global_batch == 24 and fixed.max_steps == 165
    assert fixed.queries_seen == 3960 and fixed.as_dict()["queries_seen"] == 3960
    assert ", 3,960 queries seen | 24 queries (2 devices x 3 x 4) x (1 + 1 docs) per step" in fixed.describe()
    # at one FLOP budget a larger batch with a smaller group buys fewer steps
    per = budget.plan(arch, 32, 128, 17, 8, 16, ["q_proj"], steps=1).flops_per_step
    cl = budget.plan(arch, 32, 128, 17, 8, 16, ["q_proj"], budget_flops=50 * per)
    kd = budget.plan(arch, 32, 128, 2, 32, 16, ["q_proj"], budget_flops=50 * per)
    for p in (cl, kd):
        assert p.as_dict()["queries_seen"] == p.max_steps * p.global_batch > 0
        assert f"{p.max_steps * p.global_batch:,} queries seen" in p.describe()
    assert cl.queries_seen == 400 and kd.queries_seen != cl.queries_seen
    assert json.loads(json.dumps(kd.as_dict()))["queries_seen"] == kd.queries_seen  # budget.json keeps it


def test_full_finetune_costs_six_n_and_lora_four_n():
    arch = sizes.arch_for("1b")
    n = arch.layers * budget.layer_params(arch)
    attn = 3 * 4 * arch.layers * arch.heads * arch.hd * 64
    assert budget.train_flops_per_token(arch, 64, None) == pytest.approx(6 * n + attn)
    lora = budget.train_flops_per_token(arch, 64, 16, ["q_proj", "v_proj"])
    assert lora == pytest.approx(4 * n + attn + 6 * budget.lora_params(arch, 16, ["q_proj", "v_proj"]))
    assert math.isclose(budget.forward_flops_per_token(arch, 64), 2 * n + attn / 3)


def test_flop_formula_on_a_hand_computed_architecture():
    """hidden 8, 2 layers, 2 heads of 4, 1 kv head, MLP 16: q 8x8 + o 8x8 + k 8x4 + v 8x4 = 192,
    gated MLP 3 x 8 x 16 = 384, so 576 weights a layer, 1152 in all."""
    arch = sizes.Arch(hidden=8, layers=2, heads=2, kv_heads=1, intermediate=16, vocab=100)
    assert budget.layer_params(arch) == 576
    # forward at length 10: 2 x 1152 weights + 4 x 2 layers x 2 heads x 4 dims x 10 positions
    assert budget.forward_flops_per_token(arch, 10) == 2304 + 640
    assert budget.train_flops_per_token(arch, 10, None) == 6 * 1152 + 3 * 640
    # LoRA r 2 on q (8 -> 8) and v (8 -> 4): 2 x (16 + 12) x 2 layers = 112 adapter weights
    assert budget.lora_params(arch, 2, ["q_proj", "v_proj"]) == 112
    assert budget.train_flops_per_token(arch, 10, 2, ["q_proj", "v_proj"]) == 4 * 1152 + 6 * 112 + 3 * 640
    # a head projecting onto the 100-word vocabulary: 2 x 8 x 100 more forward, 2x that trained under LoRA
    assert budget.train_flops_per_token(arch, 10, 2, ["q_proj"], head_extra=1600) == \
        budget.train_flops_per_token(arch, 10, 2, ["q_proj"]) + 2 * 1600
    p = budget.plan(arch, 4, 10, 3, 2, None, steps=5)
    assert p.tokens_per_step == 2 * 4 + 2 * 3 * 10
    assert p.flops_per_step == 8 * budget.train_flops_per_token(arch, 4, None) + 60 * budget.train_flops_per_token(arch, 10, None)
    assert p.flops_per_token_forward == pytest.approx(
        (8 * budget.forward_flops_per_token(arch, 4) + 60 * budget.forward_flops_per_token(arch, 10)) / 68)


def test_batch_resolution():
    assert budget.resolve_batch(32, 1, None, 2).global_batch == 64  # per-device batch fixed
    b = budget.resolve_batch(8, 1, 64, 2)  # global fixed: 32 per device, 4 forwards of 8
    assert (b.micro, b.accumulate, b.world, b.global_batch) == (8, 4, 2, 64)
    assert budget.resolve_batch(32, 1, 16, 4) == budget.Batch(4, 1, 4)
    with pytest.raises(ValueError, match="does not divide over 3 devices"):
        budget.resolve_batch(8, 1, 64, 3)
    with pytest.raises(ValueError, match="micro-batches of trainer.batch_size=12"):
        budget.resolve_batch(12, 1, 32, 1)
    with pytest.raises(ValueError, match="derived"):
        budget.resolve_batch(8, 2, 32, 1)


def _plan(overrides, world=1):
    from scaling.budget import plan_run
    from scaling.config import parse
    from scaling.checks import make_plan
    from tests.conftest import compose
    cfg = parse(compose(overrides))
    if world == 1:
        return make_plan(cfg)
    from scaling.backbone import describe, read_hf_config
    from scaling.heads import head_flops
    arch, counts = describe(read_hf_config(cfg.model, cfg.cache_dir))
    return plan_run(cfg, arch, counts, head_flops(cfg.paradigm.head, arch.hidden, arch.vocab), world)


def test_world_size_lora_and_heads_in_the_plan():
    """Two devices with a fixed per-device batch take twice the global batch: half the steps for
    the same budget; a fixed global batch keeps the steps. LoRA is cheaper than full training, a
    full-vocabulary sparse head dearer than dense pooling."""
    base = ["size=tiny", "budget.flops=1e12", "paradigm=dense", "trainer.global_batch=null"]
    one, two = _plan(base), _plan(base, world=2)
    assert two.world_size == 2 and two.global_batch == 2 * one.global_batch
    assert two.flops_per_step == pytest.approx(2 * one.flops_per_step)
    assert two.max_steps == one.max_steps // 2
    fixed = _plan(base + ["trainer.global_batch=32", "trainer.batch_size=8"], world=2)
    assert (fixed.max_steps, fixed.global_batch, fixed.micro_batch, fixed.accumulate) == (one.max_steps, 32, 8, 2)
    full = _plan(base + ["model.lora.enabled=false"])
    assert full.flops_per_step > one.flops_per_step and full.params_trainable == full.params_total
    assert one.params_trainable == budget.lora_params(sizes.arch_for("tiny"), 4, one_targets())
    sparse = _plan(base + ["paradigm=sparse", "paradigm.head.lexical=false"])
    assert sparse.flops_per_step > one.flops_per_step and sparse.max_steps < one.max_steps
    lexical = _plan(base + ["paradigm=sparse"])
    assert one.flops_per_step < lexical.flops_per_step < sparse.flops_per_step


def one_targets():
    from scaling.config import ModelConfig
    return ModelConfig().lora.targets


def test_meta_counts_match_the_loaded_model():
    """describe() instantiates the body on the meta device; its counts are the real model's."""
    from scaling.backbone import describe, load_backbone, read_hf_config
    from scaling.config import ModelConfig
    cfg = ModelConfig(name="tiny", lora=dataclasses.replace(ModelConfig().lora, enabled=False), num_layers=1)
    bb = load_backbone(cfg)
    arch, counts = describe(read_hf_config(cfg))
    assert arch.layers == 1 and arch == describe(bb.hf_config)[0]
    real = sum(p.numel() for p in bb.body.parameters())
    embedding = bb.body.model.embed_tokens.weight.numel()
    assert (counts.total, counts.embedding) == (real, embedding)
    assert counts.nonembedding == pytest.approx(budget.layer_params(arch), rel=0.01)  # + norms


def test_dry_run_prints_the_plan_and_touches_nothing(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "recipes" / "run.py"), "paradigm=sparse", "loss=cl",
                          "size=8b", "budget.flops=1e19", "data.negatives=random", "dry_run=true", f"cache_dir={tmp_path / 'cache'}",
                          f"run_dir={tmp_path / 'r'}"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    plan = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("params_total", "params_nonembedding", "params_trainable", "world_size", "global_batch",
                "tokens_per_step", "flops_per_token_forward", "flops_per_step", "budget_flops", "max_steps"):
        assert key in plan, key
    # Llama-3.1-8B: 8.03B with its untied LM head (which the sparse head computes), 7.50B without
    assert plan["params_total"] == 8_030_261_248 and plan["params_without_lm_head"] == 7_504_924_672
    assert plan["params_lm_head"] == 4096 * 128256
    assert "8030.3M params (7504.9M without the LM head)" in out.stdout
    assert plan["params_nonembedding"] == pytest.approx(6.98e9, rel=0.01)
    assert plan["budget_flops"] == 1e19 and plan["max_steps"] == int(1e19 // plan["flops_per_step"])
    assert plan["world_size"] == 1
    assert list(tmp_path.iterdir()) == []  # no run folder, no cache


def test_teacher_scoring_is_reported_not_charged(tmp_path):
    """A distillation run reports what scoring its teacher's pairs cost: pairs x max_len x the
    cross-encoder's forward FLOPs per token (from the prepared teacher's config), never in its plan."""
    from transformers import BertConfig

    from scaling.config import parse
    from scaling.prepare import paths, teacher_scoring
    from tests.conftest import compose
    cfg = parse(compose(["loss=kd", f"cache_dir={tmp_path}", "teacher.max_len=64"]))
    assert teacher_scoring(cfg, None) is None
    scores = tmp_path / "scores.tsv"
    scores.write_text("q1\td1\t2.5\nq1\td2\t-1.0\nq2\td3\t0.5\n")
    # no teacher config on disk: the pairs are counted, the FLOPs unknown
    assert teacher_scoring(cfg, scores) == {"pairs": 3, "max_len": 64, "flops": None, "teacher": str(scores)}
    model = paths(cfg).teacher / "model"
    model.mkdir(parents=True)
    BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64).save_pretrained(model)
    got = teacher_scoring(cfg, scores)
    # a BERT layer: q, k, v, o (4 x 32 x 32) + a two-matrix MLP (2 x 32 x 64) = 8192 weights
    per_token = 2 * 2 * 8192 + 4 * 2 * 32 * 64
    assert got["pairs"] == 3 and got["flops"] == 3 * 64 * per_token
    assert got["flops"] == budget.scoring_flops(sizes.Arch(32, 2, 4, 4, 64, 30522, gated_mlp=False), 3, 64)
