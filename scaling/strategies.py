"""The Trainer's strategy: Lightning's own names as they are, and ``fsdp`` built with a wrap
policy fit for LoRA.

FSDP flattens the parameters of each wrapped unit into one flat parameter. With LoRA a decoder
layer holds frozen base weights beside trainable adapters: one flat parameter of both either
fails ("requires uniform requires_grad") or, with ``use_orig_params=True``, allocates gradients
as if nothing were frozen. ``lora_wrap_policy`` wraps every decoder layer (the model's
``_no_split_modules``) and, separately, every module whose own parameters all train (LoRA's A and
B projections, a trained head), so that each unit's own parameters are all frozen or all
trained. Activation checkpointing is the backbone's own (``model.gradient_checkpointing``,
non-reentrant in transformers 5, so LoRA gets gradients without enabling input gradients).
"""

from __future__ import annotations

from torch import nn


def layer_classes(model: nn.Module) -> set[type]:
    """The classes of the model's decoder (or encoder) layers, from HF's ``_no_split_modules``."""
    names = set()
    for m in model.modules():
        names.update(getattr(m, "_no_split_modules", None) or [])
    return {type(m) for m in model.modules() if type(m).__name__ in names}


def _trains_alone(module: nn.Module) -> bool:
    own = list(module.parameters(recurse=False))
    return bool(own) and all(p.requires_grad for p in own)


def lora_wrap_policy(layers: set[type]):
    """FSDP's policy callable: wrap decoder layers and every module whose own parameters all train."""
    layers = tuple(layers)

    def policy(module: nn.Module, recurse: bool, nonwrapped_numel: int) -> bool:
        if recurse:
            return True  # look inside everything
        return isinstance(module, layers) or _trains_alone(module)
    return policy


def units(model: nn.Module, policy) -> dict[str, list[str]]:
    """Which unit each parameter lands in under ``policy``, as FSDP groups them: a parameter
    belongs to its nearest wrapped ancestor (the root when none). {unit name: parameter names}."""
    wrapped = {name for name, m in model.named_modules() if name and policy(m, False, 0)}
    out: dict[str, list[str]] = {}
    for pname, _ in model.named_parameters():
        owner = pname.rpartition(".")[0]  # the parameter's module, then its ancestors
        while owner and owner not in wrapped:
            owner = owner.rpartition(".")[0]
        out.setdefault(owner, []).append(pname)
    return out


def build(strategy: str, model: nn.Module):
    """``trainer.strategy`` -> what the Trainer takes: a Lightning name, or an FSDPStrategy."""
    if strategy != "fsdp":
        return strategy
    from lightning.pytorch.strategies import FSDPStrategy
    return FSDPStrategy(auto_wrap_policy=lora_wrap_policy(layer_classes(model)), use_orig_params=True,
                        sharding_strategy="FULL_SHARD", state_dict_type="full")
