"""Lightning wiring: the Trainer, its logger and callbacks, and resuming from the last checkpoint.

What goes to disk under the run folder: ``ckpt/last.ckpt`` (and one every
``trainer.checkpoint_every`` steps; trained weights, optimiser and the position in the epoch) and
``logs/metrics.csv`` (``logger=csv``) or ``wandb/`` (``logger=wandb``).
"""

from __future__ import annotations

from pathlib import Path

from scaling.config import RunConfig, to_dict


def make_logger(cfg: RunConfig, run_dir: Path):
    if cfg.logger.name == "none":
        return False
    if cfg.logger.name == "wandb":
        from lightning.pytorch.loggers import WandbLogger
        return WandbLogger(project=cfg.logger.project, save_dir=str(run_dir), offline=cfg.logger.mode == "offline",
                           name=run_dir.name, config=to_dict(cfg))
    from lightning.pytorch.loggers import CSVLogger
    return CSVLogger(save_dir=str(run_dir), name="logs", version="")


def fit(cfg: RunConfig, module, datamodule, plan, run_dir: Path, extra_callbacks=()) -> tuple[int, int]:
    """Train for the plan's ``max_steps`` optimiser steps at its accumulation, resuming from
    ckpt/last.ckpt when present. Returns this process's (rank, world size). The Trainer's world
    size must be the one the plan assumed (else a ConfigError names trainer.devices)."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar

    from scaling.data.resume import DataPosition
    from scaling.schema import ConfigError
    t, ckpt_dir = cfg.trainer, run_dir / "ckpt"
    callbacks = [*extra_callbacks, DataPosition(datamodule.sampler),
                 ModelCheckpoint(dirpath=str(ckpt_dir), every_n_train_steps=t.checkpoint_every,
                                 save_last=True, save_top_k=0, save_weights_only=False),
                 TQDMProgressBar(refresh_rate=1)]
    trainer = L.Trainer(accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes, strategy=t.strategy,
                        precision=t.precision, max_steps=plan.max_steps, max_epochs=-1,
                        accumulate_grad_batches=plan.accumulate, gradient_clip_val=t.grad_clip,
                        log_every_n_steps=t.log_every, logger=make_logger(cfg, run_dir),
                        callbacks=callbacks, enable_model_summary=False,
                        default_root_dir=str(run_dir), num_sanity_val_steps=0,
                        use_distributed_sampler=False)  # EpochSampler slices ranks itself
    if trainer.world_size != plan.world_size:
        raise ConfigError("trainer.devices", f"the budget planned for {plan.world_size} processes but the "
                          f"Trainer runs {trainer.world_size}: set trainer.devices/num_nodes to match the launch")
    last = ckpt_dir / "last.ckpt"
    if last.exists():
        print(f"[train] resuming from {last}", flush=True)
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if last.exists() else None)
    return trainer.global_rank, trainer.world_size
