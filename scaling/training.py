"""Lightning wiring: the Trainer, its callbacks, resuming and preemption.

What goes to disk under the run folder: ``ckpt/last.ckpt`` (every ``trainer.checkpoint_every``
steps, on a Slurm warning at the next step boundary (scaling/preemption.py), and when training
ends; trained weights, optimiser, schedule, FLOP ledger, learning curve, the position in the
data stream and the random state: scaling/data/resume.py), written atomically
(scaling/trainstate.py). A rerun resumes from the newest complete checkpoint, so a run stopped
after training (in evaluation) does not train again. The loggers (scaling/tracking.py) write
``logs/`` and/or ``wandb/``, every ``trainer.log_every`` steps (by default every step).

The console gets the progress bar and this project's own lines: Lightning's known-harmless
notices (device report, litlogger tip, deprecations raised inside Lightning) are filtered by
scaling/notices.py.
"""

from __future__ import annotations

from pathlib import Path

from scaling.config import RunConfig


def fit(cfg: RunConfig, module, datamodule, plan, run_dir: Path, extra_callbacks=(),
        logger=False) -> tuple[int, int, bool]:
    """Train for the plan's ``max_steps`` optimiser steps at its accumulation, resuming from the
    newest complete checkpoint. Returns this process's (rank, world size, preempted): preempted
    when a Slurm requeue stopped training early (the requeued job goes on). The Trainer's world
    size must be the one the plan assumed (else a ConfigError names trainer.devices)."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar

    from scaling import preemption, signals, strategies, trainstate
    from scaling.callbacks import FlushLogs
    from scaling.data.resume import DataPosition
    from scaling.schema import ConfigError
    from scaling.notices import quiet_known
    quiet_known()
    t, ckpt_dir = cfg.trainer, run_dir / "ckpt"
    guard = signals.own()
    preempt = preemption.Preemption(guard, ckpt_dir / "last.ckpt")
    callbacks = [*extra_callbacks, DataPosition(datamodule.sampler), preempt, FlushLogs(),
                 ModelCheckpoint(dirpath=str(ckpt_dir), every_n_train_steps=t.checkpoint_every,
                                 save_last=True, save_top_k=0, save_weights_only=False),
                 TQDMProgressBar(refresh_rate=1)]
    trainer = L.Trainer(accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes,
                        strategy=strategies.build(t.strategy, module),
                        precision=t.precision, max_steps=plan.max_steps, max_epochs=-1,
                        accumulate_grad_batches=plan.accumulate, gradient_clip_val=t.grad_clip,
                        log_every_n_steps=t.log_every, logger=logger, callbacks=callbacks,
                        plugins=[trainstate.AtomicCheckpointIO(), *preemption.plugins(guard)],
                        enable_model_summary=False,
                        default_root_dir=str(run_dir), num_sanity_val_steps=0,
                        use_distributed_sampler=False)  # EpochSampler slices ranks itself
    if trainer.world_size != plan.world_size:
        raise ConfigError("trainer.devices", f"the budget planned for {plan.world_size} processes but the "
                          f"Trainer runs {trainer.world_size}: set trainer.devices/num_nodes to match the launch")
    last = trainstate.resume_path(run_dir)
    if last is not None:
        print(f"[train] resuming from {last}", flush=True)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if last is not None else None)
    except preemption.Preempted as e:
        if e.code:  # the checkpoint is saved but the requeue failed: the task ends failed
            raise
    else:  # training's end state, so that a run stopped in evaluation resumes there, not in training
        trainer.save_checkpoint(str(ckpt_dir / "last.ckpt"), weights_only=False)  # explicit: no notice
    return trainer.global_rank, trainer.world_size, preempt.preempted
