"""One grid point end to end: plan -> fit -> save -> evaluate -> record. No policy of its own:
run folders are ``rundir``'s, models ``checkpoint``'s, training ``training``'s, the systems on the
table ``evaluation.systems``'.

What goes to disk, under the run folder: ``config.json`` (the resolved configuration, first),
``budget.json`` (the plan), ``ckpt/`` and ``logs/`` (training), ``checkpoint/`` (the trained
weights), ``encoded/``, ``index/`` and ``runs/`` (evaluation), and last ``result.json``, written
atomically, whose presence marks the run finished.

Under a multi-process launch every rank uses the launch's one run folder; the leader alone
evaluates the references and the untrained backbone before training and writes the result; after
training each rank encodes its share of the corpus and rank 0 evaluates.
"""

from __future__ import annotations

import time
from pathlib import Path

from scaling import launch, rundir
from scaling.config import EvaluateConfig, RunConfig, to_dict
from scaling.io import write_json_atomic


def run(cfg: RunConfig) -> dict:
    """Train and evaluate one configuration; returns (and writes) the result record ({} on ranks
    other than 0, and when eval.shard leaves the evaluation to another job)."""
    import torch

    from scaling import checkpoint, prepare, training
    from scaling.budget import plan_run
    from scaling.data import corpora
    from scaling.data.datamodule import GroupDataModule
    from scaling.evaluation import format_table, systems
    from scaling.module import RetrieverModule
    t0, leader = time.time(), launch.is_leader()
    teacher_scores, pools = prepare.training_inputs(cfg)  # inputs and splits fail before any model loads
    data_dir = corpora.dataset_dir(cfg.data, cfg.cache_dir)
    dataset = corpora.load(cfg.data, cfg.cache_dir, root=data_dir)
    splits = cfg.data.eval_splits
    corpora.require_splits(dataset, splits, "data.eval_splits")
    corpora.require_splits(dataset, [cfg.data.train_split], "data.train_split")
    run_dir = rundir.prepare(cfg.run_dir, f"{cfg.paradigm.name}-{cfg.loss.name}-{cfg.model.name}", cfg.overwrite)
    print(f"[run] {run_dir}", flush=True)
    if leader:
        write_json_atomic(run_dir / "config.json", to_dict(cfg))
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    import lightning as L
    L.seed_everything(cfg.seed, verbose=False)

    backbone, head, loss = checkpoint.build(cfg)                                      # plan
    plan = plan_run(cfg, head.extra_flops_per_token)
    print(plan.describe(), flush=True)
    module = RetrieverModule(backbone.body, head, loss, cfg.trainer.lr, cfg.trainer.warmup_ratio,
                             cfg.trainer.weight_decay, plan.steps)
    references, untrained = {}, {}
    if leader:
        write_json_atomic(run_dir / "budget.json", plan.as_dict())
        references = systems.references(cfg, dataset, data_dir, splits)
        if cfg.eval.untrained:
            untrained = systems.metrics("untrained", cfg, dataset, data_dir, splits, (module, backbone.tokenizer))
    dm = GroupDataModule(dataset, backbone.tokenizer, cfg.data, cfg.model, cfg.trainer.batch_size, cfg.seed,
                         cfg.trainer.num_workers, teacher_scores, pools)
    t_train = time.time()
    with rundir.handed_down(run_dir):                                                 # fit
        rank, world = training.fit(cfg, module, dm, plan.steps, run_dir)
    t_train = time.time() - t_train
    ckpt = run_dir / "checkpoint"
    if rank == 0:                                                                     # save
        checkpoint.save(ckpt, module, cfg)
    print("[eval] trained model", flush=True)                                         # evaluate
    t_eval = time.time()
    metrics = systems.trained(cfg, dataset, splits, (module, backbone.tokenizer), run_dir,
                              (rank, world) if world > 1 else None)
    t_eval = time.time() - t_eval
    if rank != 0:
        return {}
    if metrics is None:  # eval.shard: the other shards finish with recipes/evaluate.py
        print(f"[run] trained {ckpt}; evaluate the remaining shards with `python recipes/evaluate.py "
              f"checkpoint={ckpt} run_dir={run_dir} eval.shard=...`", flush=True)
        return {}
    result = {"config": to_dict(cfg), "metrics": metrics, "baseline_metrics": untrained,   # record
              "reference_metrics": references, "checkpoint": str(ckpt), "budget": plan.as_dict(),
              "timing_s": {"train": round(t_train, 1), "eval": round(t_eval, 1),
                           "total": round(time.time() - t0, 1)}}
    write_json_atomic(run_dir / "result.json", result)
    print(format_table(systems.columns(references, untrained, **{f"trained ({plan.steps} steps)": metrics})),
          flush=True)
    print(f"[run] wrote {run_dir / 'result.json'} ({result['timing_s']['total']:.0f} s)", flush=True)
    return result


def evaluate(cfg: EvaluateConfig) -> dict:
    """recipes/evaluate.py: a checkpoint and/or reference systems on any dataset's splits ->
    RUN_DIR/result.json. Without a checkpoint only the references are evaluated, and with exactly
    one its numbers are also ``metrics``."""
    import dataclasses
    import json

    from scaling import checkpoint
    from scaling.data import corpora
    from scaling.evaluation import format_table, systems
    # the run's own configuration (a checkpoint's), with this call's data, evaluation and folders
    base = checkpoint.read_config(cfg.checkpoint) if cfg.checkpoint else RunConfig()
    rcfg = dataclasses.replace(base, data=cfg.data, eval=cfg.eval, cache_dir=cfg.cache_dir,
                               run_dir=cfg.run_dir, overwrite=cfg.overwrite)
    data_dir = corpora.dataset_dir(rcfg.data, rcfg.cache_dir)
    dataset = corpora.load(rcfg.data, rcfg.cache_dir, root=data_dir)
    splits = rcfg.data.eval_splits
    corpora.require_splits(dataset, splits, "data.eval_splits")
    run_dir = rundir.prepare(cfg.run_dir, "evaluate", cfg.overwrite)
    print(f"[evaluate] {cfg.checkpoint or ', '.join(cfg.eval.baselines)} -> {run_dir}", flush=True)
    metrics, untrained, budget, record = {}, {}, {}, to_dict(rcfg)
    if cfg.checkpoint:
        model = checkpoint.load(cfg.checkpoint, rcfg)
        metrics = systems.trained(rcfg, dataset, splits, model, run_dir)
        if metrics is None:
            return {}
        del model
        budget_path = Path(cfg.checkpoint).expanduser().parent / "budget.json"
        budget = json.loads(budget_path.read_text()) if budget_path.exists() else {}
    else:  # no model was trained or loaded: only what the references depend on
        record = {k: record[k] for k in ("data", "eval", "cache_dir", "run_dir")}
    references = systems.references(rcfg, dataset, data_dir, splits)
    if cfg.checkpoint and rcfg.eval.untrained:  # a fresh model, not the loaded checkpoint
        untrained = systems.metrics("untrained", rcfg, dataset, data_dir, splits)
    if not cfg.checkpoint and len(references) == 1:
        metrics = next(iter(references.values()))
    result = {"config": record, "metrics": metrics, "baseline_metrics": untrained, "reference_metrics": references,
              "checkpoint": str(Path(cfg.checkpoint).expanduser()) if cfg.checkpoint else None, "budget": budget}
    write_json_atomic(run_dir / "result.json", result)
    print(format_table(systems.columns(references, untrained, **({"checkpoint": metrics} if cfg.checkpoint else {}))),
          flush=True)
    print(f"[evaluate] wrote {run_dir / 'result.json'}", flush=True)
    return result
