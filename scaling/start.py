"""A model's starting point: the weights a run's backbone is read from before it trains.

One notion for what used to be three code paths:

- ``packaged``: the size's own weights (a converted package, ``model.path``, a hub id);
- ``mntp``: the same decoder adapted by masked next-token prediction (``model.mntp.steps`` > 0,
  scaling/mntp.py), made from the training corpus and cached under
  ``<cache>/prepared/<dataset>/mntp/<key of the model settings>``;
- ``checkpoint``: an earlier training stage (``model.init_from`` = its run folder): the same base
  (packaged or adapted) with that run's trained LoRA and head weights loaded before training. The
  earlier run's model and head settings must be this run's; it is made by training it.

A starting point is *made* by a preparation step (scaling/prepare.py's ``mntp`` step, through
``recipes/prepare.py "steps=[mntp]"`` or this module's ``prepare`` before a run builds its model) and only *read* when a
model is built (``model_config``): building a model for training or inference never trains one. A
missing starting point is an error naming the command that makes it. ``describe`` is what the
result records (``result["start"]``).

Nothing here writes to disk but ``prepare`` (through the mntp step, atomically).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from scaling.config import ConfigError, ModelConfig, RunConfig, parse


ADDED_SPARSE_KEYS = {"skip_prefix": False, "lexical": False, "fold": False}
"""Sparse-head keys added after checkpoints were already written, with the value those were
trained with (the keys now default to True: a missing key must not read as today's default)."""


def read_config(ckpt_dir: Path) -> RunConfig:
    """The run configuration a checkpoint folder was trained with."""
    path = Path(ckpt_dir).expanduser() / "run_config.json"
    if not path.exists():
        inner = path.parent / "checkpoint" / "run_config.json"
        hint = (f"; {path.parent} is a run folder: give checkpoint={path.parent / 'checkpoint'}"
                if inner.exists() else "")
        raise FileNotFoundError(f"checkpoint={path.parent} is not a checkpoint folder (no run_config.json "
                                f"and weights.safetensors){hint}")
    data = json.loads(path.read_text())
    head = data.get("paradigm", {}).get("head") or {}
    if head.get("name") == "sparse":
        for key, value in ADDED_SPARSE_KEYS.items():
            head.setdefault(key, value)
    return parse(data)


class StartMissing(FileNotFoundError):
    """A starting point that has not been prepared yet."""


def kind(cfg: RunConfig) -> str:
    if cfg.model.init_from:
        return "checkpoint"
    return "mntp" if cfg.model.mntp.steps > 0 else "packaged"


def _base(cfg: RunConfig) -> RunConfig:
    """The run without its earlier stage: the base weights both stages share."""
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, init_from=None))


def ready(cfg: RunConfig) -> bool:
    """True when ``model_config`` (and ``build``) can read the starting point without making it."""
    if cfg.model.init_from:
        return ready(_base(cfg)) and (earlier_dir(cfg) / "weights.safetensors").exists()
    if kind(cfg) == "mntp":
        from scaling.prepare import mntp_dir
        return (mntp_dir(cfg) / "mntp.json").exists()
    return True


def earlier_dir(cfg: RunConfig) -> Path:
    """The earlier stage's checkpoint folder (``init_from`` names it or the run folder holding it)."""
    path = Path(cfg.model.init_from).expanduser()
    return path / "checkpoint" if (path / "checkpoint").is_dir() else path


# keys an earlier stage may set differently: they do not change the weights' shapes or meaning
STAGE_MAY_DIFFER = ("init_from", "lora.dropout", "gradient_checkpointing", "dtype")


def check(cfg: RunConfig, build: bool = True) -> str | None:
    """Before any work: an earlier stage must be a finished run of the same model and head. A dry
    run (``build=False``) may plan a later stage before the earlier one has run: it returns what
    it could not check instead of failing."""
    if not cfg.model.init_from:
        return None
    folder = earlier_dir(cfg)
    if not (folder / "weights.safetensors").exists():
        if not build:
            return f"the earlier stage model.init_from={cfg.model.init_from} (not trained yet)"
        raise ConfigError("model.init_from", f"{cfg.model.init_from} holds no trained weights (a finished run "
                                             "folder or its checkpoint/): train that stage first")
    from scaling.rundir import _flat_json

    def shape(c: RunConfig) -> dict:  # {dotted key: value} of what fixes the weights' architecture
        return _flat_json({"model": dataclasses.asdict(c.model), "paradigm": {"head": dataclasses.asdict(c.paradigm.head)}})
    mine, theirs = shape(cfg), shape(read_config(folder))
    differ = [k for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)
              and not any(k.startswith(f"model.{p}") for p in STAGE_MAY_DIFFER)]
    if differ:
        shown = "; ".join(f"{k}: {theirs.get(k)!r} there, {mine.get(k)!r} here" for k in differ[:4])
        raise ConfigError("model.init_from", f"{folder} was trained with another model or head ({shown}): "
                                             "a later stage keeps the earlier one's architecture")
    return None


def model_config(cfg: RunConfig) -> ModelConfig:
    """The model settings to load: ``cfg.model``, or for an adapted decoder the same model read
    from its prepared folder (saved already cut to its layers). Reads only; raises StartMissing
    with the command that makes it."""
    if cfg.model.init_from:  # the earlier stage's base; its trained weights are loaded by build
        if not ready(cfg):
            raise StartMissing(f"model.init_from={cfg.model.init_from}: no trained weights there; train that "
                               "stage first")
        return model_config(_base(cfg))
    if kind(cfg) == "packaged":
        return cfg.model
    from scaling.prepare import mntp_dir, prepare_command
    out = mntp_dir(cfg)
    if not ready(cfg):
        m = cfg.model
        how = (f"{prepare_command(cfg, 'mntp')} size={m.name} model.bidirectional={str(m.bidirectional).lower()} "
               f"model.mntp.steps={m.mntp.steps}" + (f" model.num_layers={m.num_layers}" if m.num_layers else ""))
        raise StartMissing(f"model.mntp.steps={m.mntp.steps}: the MNTP-adapted backbone {out} is not "
                           f"prepared; run `{how}` with any other model.* settings of the run "
                           "(a training run prepares it itself before building its model)")
    return dataclasses.replace(cfg.model, path=str(out), num_layers=None)


def prepare(cfg: RunConfig, dataset=None, log=print) -> dict:
    """Make the starting point when it is missing (an MNTP adaptation on the training corpus,
    ``dataset`` or loaded here); returns ``describe(cfg)``."""
    check(cfg)
    if not ready(_base(cfg)):
        from scaling.prepare import prepare_mntp
        if dataset is None:
            from scaling.data import corpora
            dataset = corpora.load(cfg.data, cfg.cache_dir)
        prepare_mntp(cfg, dataset, log)
    return describe(cfg)


def describe(cfg: RunConfig) -> dict:
    """What the result records: the kind, where its weights are read from, and what made them;
    for a later stage, the earlier one's description, budget (its realised FLOPs and steps) and
    the FLOPs of every stage before this one (``flops_before``)."""
    if cfg.model.init_from:
        folder = earlier_dir(cfg)
        before = read_config(folder)
        result = folder.parent / "result.json"
        realised = json.loads(result.read_text())["budget"]["realised"] if result.exists() else {}
        earlier = describe(before)
        flops = realised.get("flops")
        return {"kind": "checkpoint", "model": cfg.model.name, "path": str(folder), "from": earlier,
                "stage": {"data": before.data.name, "loss": before.loss.name, "flops": flops,
                          "steps": realised.get("steps")},
                "flops_before": None if flops is None or earlier.get("flops_before", 0) is None
                else flops + earlier.get("flops_before", 0)}
    out = {"kind": kind(cfg), "model": cfg.model.name, "path": cfg.model.path or cfg.model.hf_id}
    if kind(cfg) == "mntp":
        from scaling.prepare import mntp_dir
        folder = mntp_dir(cfg)
        out["path"] = str(folder)
        if ready(cfg):
            made = json.loads((folder / "mntp.json").read_text())
            out["made_by"] = {"mntp_steps": made["steps"], "last_loss": made["last_loss"],
                              "seconds": made["seconds"], "settings": made["settings"]}
    return out


def line(described: dict) -> str:
    """One line for the log: where the weights come from and what the stages before cost."""
    if described["kind"] == "checkpoint":
        stage, before = described["stage"], described["flops_before"]
        flops = f"{stage['flops']:.3e} FLOPs, {stage['steps']} steps" if stage["flops"] is not None else "budget unknown"
        total = f"; {before:.3e} FLOPs in all stages before this one" if before is not None else ""
        return f"from {described['path']} ({stage['loss']} on {stage['data']}: {flops}{total}; not in this run's budget)"
    made = described.get("made_by", {})
    return f"{described['kind']} {described['path']} ({made.get('mntp_steps')} MNTP steps, not in the budget)"
