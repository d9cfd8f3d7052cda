"""Strategies: trainer=ddp and trainer=fsdp compose; FSDP's wrap policy puts frozen and trained
parameters in separate units for every head, where wrapping decoder layers alone would mix them."""

import pytest

from scaling import checkpoint, strategies
from scaling.config import parse
from scaling.module import RetrieverModule
from tests.conftest import compose


def _module(tmp_path, *overrides):
    cfg = parse(compose(["size=tiny", f"cache_dir={tmp_path}", "paradigm=dense", *overrides]))
    backbone, head, loss = checkpoint.build(cfg)
    return RetrieverModule(backbone.body, head, loss)


def _mixed(model, policy) -> list[str]:
    """Units whose own parameters are partly frozen, partly trained."""
    params = dict(model.named_parameters())
    return [unit for unit, names in strategies.units(model, policy).items()
            if len({params[n].requires_grad for n in names}) > 1]


@pytest.mark.parametrize("overrides", [[], ["paradigm=sparse"], ["paradigm=sparse", "paradigm.head.lexical=false",
                                                                 "paradigm.head.fold=false"]],
                         ids=["dense", "sparse-lexical", "sparse-vocabulary"])
def test_wrap_policy_keeps_every_unit_uniformly_frozen_or_trained(overrides, tmp_path):
    model = _module(tmp_path, *overrides)
    layers = strategies.layer_classes(model)
    assert {c.__name__ for c in layers} == {"LlamaDecoderLayer"}
    policy = strategies.lora_wrap_policy(layers)
    assert _mixed(model, policy) == []
    units = strategies.units(model, policy)
    n_layers = sum(isinstance(m, tuple(layers)) for m in model.modules())
    assert sum(any(".lora_" in n for n in names) for names in units.values()) >= n_layers  # adapters apart
    assert any(u.endswith(("layers.0", "layers.1")) for u in units)  # the decoder layers are units
    # wrapping the decoder layers alone (the usual transformer policy) mixes LoRA into frozen layers
    layers_only = lambda m, recurse, n: recurse or isinstance(m, tuple(layers))
    assert _mixed(model, layers_only)


def test_full_fine_tuning_wraps_layers_and_stays_uniform(tmp_path):
    model = _module(tmp_path, "model.lora.enabled=false")
    assert _mixed(model, strategies.lora_wrap_policy(strategies.layer_classes(model))) == []


def test_trainer_choices_compose_and_fsdp_builds_its_strategy(tmp_path):
    from lightning.pytorch.strategies import FSDPStrategy
    ddp = parse(compose(["trainer=ddp"])).trainer
    fsdp = parse(compose(["trainer=fsdp"])).trainer
    assert (ddp.name, ddp.strategy, ddp.precision) == ("ddp", "ddp", "bf16-mixed")
    assert (fsdp.name, fsdp.strategy, fsdp.accelerator) == ("fsdp", "fsdp", "gpu")
    model = _module(tmp_path)
    assert strategies.build("ddp", model) == "ddp"
    built = strategies.build("fsdp", model)
    assert isinstance(built, FSDPStrategy) and built.kwargs["use_orig_params"]
    policy = built.kwargs["auto_wrap_policy"]
    assert _mixed(model, policy) == []
