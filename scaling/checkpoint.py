"""Build a model for training, save what a run trained, load it again for inference.

``build`` is the one model factory (backbone, head and loss from the config's registries), reading
the backbone from its starting point (scaling/start.py), which it never makes;
``inference_model`` the one inference constructor (no loss, no optimiser settings), used for the
untrained backbone, the zero-shot references and loaded checkpoints alike.

What goes to disk (``save``), in an atomically written folder: ``run_config.json`` (the resolved
run configuration), ``weights.safetensors`` (the trained parameters only: LoRA and any trained
head weights) and ``adapter/`` (the LoRA adapter in peft's format, for use outside this toolkit).
"""

from __future__ import annotations

import json
from pathlib import Path

from scaling.config import RunConfig, to_dict
from scaling.start import read_config  # noqa: F401  (a checkpoint's run configuration)


def _backbone_and_head(cfg: RunConfig):
    from scaling.backbone import load_backbone
    from scaling.heads import build_head
    from scaling.start import model_config
    backbone = load_backbone(model_config(cfg), Path(cfg.cache_dir).expanduser())  # reads, never trains
    return backbone, build_head(cfg.paradigm.head, backbone)


def build(cfg: RunConfig):
    """(backbone, head, loss) from the config's registries; a later stage (``model.init_from``)
    starts from the earlier run's trained weights."""
    from scaling.losses import build_loss
    backbone, head = _backbone_and_head(cfg)
    if cfg.model.init_from:
        from scaling.module import RetrieverModule
        from scaling.start import earlier_dir
        load_trained(RetrieverModule(backbone.body, head), earlier_dir(cfg))
    return backbone, head, build_loss(cfg.terms)


def inference_model(cfg: RunConfig):
    """(module, tokenizer) ready to encode: the backbone (LoRA at its zero-effect init) and head."""
    from scaling.module import RetrieverModule
    backbone, head = _backbone_and_head(cfg)
    return RetrieverModule(backbone.body, head), backbone.tokenizer


def save(out: Path, module, cfg: RunConfig) -> Path:
    """Write run_config.json, weights.safetensors (trained parameters) and adapter/ atomically."""
    from safetensors.torch import save_file

    from scaling.io import atomic_dir, write_json_atomic
    trained = {k: v.detach().cpu().contiguous() for k, v in module.named_parameters() if v.requires_grad}
    with atomic_dir(out) as tmp:
        save_file(trained, str(tmp / "weights.safetensors"))
        if cfg.model.lora.enabled:
            module.body.model.save_pretrained(str(tmp / "adapter"))
        write_json_atomic(tmp / "run_config.json", to_dict(cfg))
    return Path(out)


def load(ckpt_dir: Path, cfg: RunConfig):
    """(module, tokenizer): ``cfg``'s inference model with the checkpoint's trained weights."""
    module, tokenizer = inference_model(cfg)
    load_trained(module, ckpt_dir)
    return module, tokenizer


def load_trained(module, ckpt_dir: Path) -> None:
    """Load a checkpoint's trained parameters into ``module``: every one it trains, no other."""
    from safetensors.torch import load_file
    ckpt_dir = Path(ckpt_dir).expanduser()
    weights = load_file(str(ckpt_dir / "weights.safetensors"))
    _, unexpected = module.load_state_dict(weights, strict=False)
    if unexpected:
        raise KeyError(f"{ckpt_dir}/weights.safetensors has keys the model lacks: {unexpected[:3]}")
    lost = sorted({k for k, v in module.named_parameters() if v.requires_grad} - set(weights))
    if lost:
        raise KeyError(f"{ckpt_dir}/weights.safetensors lacks trained parameters: {lost[:3]}")
