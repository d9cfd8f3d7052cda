"""A model's starting point: the weights a run's backbone is read from before it trains.

One notion for what used to be three code paths:

- ``packaged``: the size's own weights (a converted package, ``model.path``, a hub id);
- ``mntp``: the same decoder adapted by masked next-token prediction (``model.mntp.steps`` > 0,
  scaling/mntp.py), made from the training corpus and cached under
  ``<cache>/prepared/<dataset>/mntp/<key of the model settings>``.

A starting point is *made* by a preparation step (``prepare``: ``recipes/prepare.py
"steps=[mntp]"``, or a run's own preparation before any model is built) and only *read* when a
model is built (``model_config``): building a model for training or inference never trains one. A
missing starting point is an error naming the command that makes it. ``describe`` is what the
result records (``result["start"]``).

Nothing here writes to disk but ``prepare`` (through scaling/mntp.py, atomically).
"""

from __future__ import annotations

import dataclasses
import json

from scaling.config import ModelConfig, RunConfig


class StartMissing(FileNotFoundError):
    """A starting point that has not been prepared yet."""


def kind(cfg: RunConfig) -> str:
    return "mntp" if cfg.model.mntp.steps > 0 else "packaged"


def ready(cfg: RunConfig) -> bool:
    """True when ``model_config`` can read the starting point without making it."""
    if kind(cfg) == "mntp":
        from scaling.mntp import adapted_dir
        return (adapted_dir(cfg) / "mntp.json").exists()
    return True


def model_config(cfg: RunConfig) -> ModelConfig:
    """The model settings to load: ``cfg.model``, or for an adapted decoder the same model read
    from its prepared folder (saved already cut to its layers). Reads only; raises StartMissing
    with the command that makes it."""
    if kind(cfg) == "packaged":
        return cfg.model
    from scaling.mntp import adapted_dir
    from scaling.prepare import prepare_command
    out = adapted_dir(cfg)
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
    if not ready(cfg):
        from scaling.mntp import adapt, adapted_dir
        if dataset is None:
            from scaling.data import corpora
            dataset = corpora.load(cfg.data, cfg.cache_dir)
        adapt(cfg.model, list(dataset.corpus.values()), adapted_dir(cfg), cfg.cache_dir, log)
    return describe(cfg)


def describe(cfg: RunConfig) -> dict:
    """What the result records: the kind, where its weights are read from, and what made them."""
    out = {"kind": kind(cfg), "model": cfg.model.name, "path": cfg.model.path or cfg.model.hf_id}
    if kind(cfg) == "mntp":
        from scaling.mntp import adapted_dir
        folder = adapted_dir(cfg)
        out["path"] = str(folder)
        if ready(cfg):
            made = json.loads((folder / "mntp.json").read_text())
            out["made_by"] = {"mntp_steps": made["steps"], "last_loss": made["last_loss"],
                              "seconds": made["seconds"], "settings": made["settings"]}
    return out
