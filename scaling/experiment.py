"""One grid point end to end: plan -> fit -> save -> evaluate -> record. No policy of its own:
run folders are ``rundir``'s, models ``checkpoint``'s, training ``training``'s, the systems on the
table ``evaluation.systems``'.

What goes to disk, under the run folder: ``config.json`` (the resolved configuration, first),
``budget.json`` (the plan), ``ckpt/`` and ``logs/`` (training), ``checkpoint/`` (the trained
weights), ``encoded/``, ``index/`` and ``runs/`` (evaluation), and last ``result.json``, written
atomically, whose presence marks the run finished: the metrics, the references and the untrained
backbone beside them, ``budget`` (the plan, what the FLOP ledger realised, what was not charged),
``curve`` (``eval.every_n_steps``), ``grid`` (the grid point) and ``trained_in`` (the grid point
whose training this one shared, when they differ only in evaluation: scaling/grid.py). ``running.json`` marks a folder
a process is working in (scaling/grid.py reads it for a grid's progress).

Under a multi-process launch every rank uses the launch's one run folder; the leader alone
evaluates the references and the untrained backbone before training and writes the result; after
training each rank encodes its share of the corpus and rank 0 evaluates.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from scaling import checks, grid, launch, rundir, tracking
from scaling.config import EvaluateConfig, RunConfig, to_dict
from scaling.io import write_json_atomic


def dry_run(cfg: RunConfig) -> dict:
    """Check the run as the real one would (scaling/checks.py: the same errors, so a dry run
    approves only what would run) and print its plan, the last stdout line one JSON object.
    Loads no weights and no corpus, and writes nothing."""
    inputs = checks.run_inputs(cfg, build=False)
    plan = inputs.plan
    print(f"[dry_run] {cfg.paradigm.name} {cfg.loss.name} {cfg.model.name}"
          f"{'' if cfg.model.num_layers is None else f' (first {cfg.model.num_layers} layers)'}", flush=True)
    print(plan.describe(), flush=True)
    if inputs.teacher is not None:
        print(f"[dry_run] teacher scores: {inputs.teacher_path} ({sum(map(len, inputs.teacher.values()))} pairs, "
              f"{len(inputs.teacher)} queries)", flush=True)
    for what in inputs.unchecked:
        print(f"[dry_run] not checked: {what}", flush=True)
    out = plan.as_dict()
    print(json.dumps(out), flush=True)
    return out


def run(cfg: RunConfig) -> dict:
    """Train and evaluate one configuration; returns (and writes) the result record ({} on ranks
    other than 0, and when eval.shard leaves the evaluation to another job). In a grid a finished
    point is skipped (its record returned)."""
    if cfg.dry_run:
        return dry_run(cfg)
    if cfg.grid.name:
        grid.write_manifest(cfg.grid.root, cfg.grid.name, cfg.grid.axes, cfg.grid.brings)
        print(grid.describe_status(cfg.grid.name, grid.status(cfg.grid.root, cfg.grid.name, cfg.grid.axes)),
              flush=True)
        done = Path(cfg.run_dir) / "result.json"
        if done.exists() and not cfg.overwrite:
            print(f"[grid] {grid.name(cfg.grid.point)} is finished ({done}); skipping", flush=True)
            result = json.loads(done.read_text())
            if cfg.logger.name == "wandb":  # e.g. a sweep over points another launcher ran: log them
                from scaling.evaluation import systems
                with tracking.open_tracker(cfg, Path(cfg.run_dir)) as tracker:
                    tracker.plan(result["budget"]["plan"])
                    tracker.result(result, systems.result_columns(result))
            return result
    t0 = time.time()
    from scaling import signals
    from scaling.cli import USER_ERRORS
    signals.own()  # a Slurm warning from here on requeues (scaling/signals.py)
    leader = launch.is_leader()
    record = to_dict(cfg) if leader else None  # what the leader checks the folder against
    # a folder holding another configuration's unfinished run is refused before any work
    from scaling.analysis.records import rung_name
    size = rung_name(cfg.model.name, cfg.model.num_layers)  # as the command line names it: smollm2-l1
    size = size if " " not in size else f"{cfg.model.name}-l{cfg.model.num_layers}"
    run_dir = rundir.claim(cfg.run_dir, f"{cfg.paradigm.name}-{cfg.loss.name}-{size}", cfg.overwrite, record)
    from scaling.data import corpora
    inputs = checks.run_inputs(cfg)  # every check, before any folder, model, corpus or reference work
    dataset = corpora.load(cfg.data, cfg.cache_dir, root=inputs.data_dir)
    parts = [corpora.load(m, cfg.cache_dir, root=root) for m, root in zip(cfg.data.mixture, inputs.mixture)]
    train_data = dataset
    if parts:  # training reads every dataset of the mixture, under prefixed ids
        from scaling.data import mixture
        train_data = mixture.merge(dataset, parts)
    files = [d.teacher_scores or d.negatives_file for d in (cfg.data, *cfg.data.mixture)
             if d.teacher_scores or d.negatives == "file"]
    if inputs.items is not None and files:  # a file from elsewhere may name other passages
        from scaling.data.groups import in_corpus  # (a mixture's groups are checked in the merged corpus)
        inputs.items = in_corpus(inputs.items, train_data.corpus, cfg.data.n_negatives, ", ".join(files))
    rundir.create(run_dir, cfg.overwrite, record)  # a run replaced with overwrite=true goes here
    marker = grid.mark_running(run_dir) if leader else None
    try:
        with tracking.open_tracker(cfg, run_dir) as tracker:
            return _run(cfg, run_dir, dataset, train_data, parts, inputs, t0, tracker)
    except BaseException as e:  # a requeue (Preempted, or submitit's exit) needs no hint: the task comes back
        if leader and not isinstance(e, USER_ERRORS) and not signals.requeued():
            print(rundir.resume_hint(run_dir, e), flush=True)
        raise
    finally:
        if marker is not None:
            marker.stop()


def _run(cfg: RunConfig, run_dir: Path, dataset, train_data, parts, inputs, t0: float, tracker) -> dict:
    """``train_data``: what training reads: ``dataset``, or with a mixture every dataset merged;
    ``parts``: the mixture's datasets, loaded once (evaluated on too)."""
    import torch

    from scaling import checkpoint, prepare, training
    from scaling.callbacks import FlopLedger, LearningCurve
    from scaling.data.datamodule import GroupDataModule
    from scaling.evaluation import format_table, systems
    from scaling.module import RetrieverModule
    leader = launch.is_leader()
    print(f"[run] {run_dir}", flush=True)
    if leader:
        write_json_atomic(run_dir / "config.json", to_dict(cfg))
    threads = cfg.trainer.threads or int(os.environ.get("SLURM_CPUS_PER_TASK") or 0)
    if threads:
        torch.set_num_threads(threads)
    import lightning as L
    L.seed_everything(cfg.seed, verbose=False)

    from scaling import start
    started = start.prepare(cfg, dataset)  # make the starting point if missing; building only reads it
    if started["kind"] != "packaged":
        print(f"[start] {start.line(started)}", flush=True)
    backbone, head, loss = checkpoint.build(cfg)
    plan = inputs.plan                                                                # plan
    print(plan.describe(), flush=True)
    module = RetrieverModule(backbone.body, head, loss, cfg.trainer.lr, cfg.trainer.warmup_ratio,
                             cfg.trainer.weight_decay, plan.max_steps, cfg.trainer.grad_cache_chunk)
    references, untrained = {}, {}
    planned = plan.as_dict()
    tracker.plan(planned)
    sets = eval_sets(cfg, dataset, inputs.data_dir, inputs.zero_shot, list(zip(inputs.mixture, parts)))
    if leader:
        write_json_atomic(run_dir / "budget.json", planned)
        references = systems.references_on(sets)
        if cfg.eval.untrained:
            untrained = systems.each(sets, lambda *s: systems.metrics("untrained", *s, (module, backbone.tokenizer)))
    in_batch = None
    if checks.needs_scorer(cfg):  # the teacher scores every (query, document) pair of each batch
        from teachers.teacher import Teacher
        from teachers.crossencoder import load as load_ce
        model_dir = cfg.teacher.model or str(prepare.paths(cfg).teacher / "model")
        in_batch = Teacher(cfg, dataset, lambda: load_ce(model_dir, cfg.teacher.download))
        in_batch.warm([item[0] for item in inputs.items])
    dm = GroupDataModule(train_data, backbone.tokenizer, cfg.data, cfg.model, plan.micro_batch, cfg.seed,
                         cfg.trainer.num_workers, inputs.teacher, inputs.items, plan.accumulate,
                         scorer=in_batch.scorer() if in_batch else None)
    ledger, callbacks = FlopLedger(plan), []
    if cfg.eval.every_n_steps:
        from scaling.evaluation.encoder import evaluate_encoder
        callbacks.append(LearningCurve(cfg.eval.every_n_steps, lambda m: evaluate_encoder(
            m, backbone.tokenizer, cfg, dataset, [cfg.eval.curve_split], progress=False), plan.flops_per_step))
    trained_in = grid.share_training(run_dir, to_dict(cfg)) if cfg.grid.name else None
    t_train = time.time()
    with rundir.handed_down(run_dir):                                                 # fit
        rank, world, preempted = training.fit(cfg, module, dm, plan, run_dir, [ledger, *callbacks], tracker.logger)
    t_train = time.time() - t_train
    if preempted:  # the requeued job resumes from the checkpoint just saved and evaluates
        tracker.preempted = True
        print(f"[run] preempted at step {ledger.steps}: requeued; {run_dir} resumes there", flush=True)
        return {}
    ckpt = run_dir / "checkpoint"
    if rank == 0:                                                                     # save
        checkpoint.save(ckpt, module, cfg)
    print("[eval] trained model", flush=True)                                         # evaluate
    t_eval = time.time()
    metrics = systems.each(sets, lambda c, ds, _, sp: systems.trained(
        c, ds, sp, (module, backbone.tokenizer), run_dir, (rank, world) if world > 1 else None))
    t_eval = time.time() - t_eval
    if rank != 0:
        return {}
    if metrics is None:  # eval.shard: the other shards finish with recipes/evaluate.py
        print(f"[run] trained {ckpt}; evaluate the remaining shards with `python recipes/evaluate.py "
              f"checkpoint={ckpt} run_dir={run_dir} eval.shard=...`", flush=True)
        return {}
    budget = {"plan": planned, "realised": ledger.summary(),
              "not_charged": {"recompute_flops": plan.recompute_flops_per_step * ledger.steps,
                              "mntp_steps": cfg.model.mntp.steps,
                              "teacher_scoring": prepare.teacher_scoring(cfg, inputs.teacher_path, inputs.teacher and
                                                              sum(map(len, inputs.teacher.values()))),
                              "teacher_in_batch": prepare.in_batch_cost(cfg, in_batch.pairs_scored if in_batch else None)}}
    result = {"config": to_dict(cfg), "metrics": metrics, "baseline_metrics": untrained,   # record
              "teacher": prepare.teacher_summary(cfg, inputs.teacher_path, dataset.name),
              "reference_metrics": references, "checkpoint": str(ckpt), "budget": budget,
              "start": started, "trained_in": trained_in, "curve": callbacks[0].points if callbacks else [],
              "grid": {"experiment": cfg.grid.name, "name": grid.name(cfg.grid.point), "point": cfg.grid.point}
              if cfg.grid.name else None,
              "timing_s": {"train": round(t_train, 1), "eval": round(t_eval, 1),
                           "total": round(time.time() - t0, 1)}}
    columns = systems.result_columns(result)
    marks, legend = _significance(cfg.eval, columns, result)
    columns = _beir_mean(cfg.eval, result, columns)
    write_json_atomic(run_dir / "result.json", result)
    tracker.result(result, columns)
    print(format_table(columns, marks) + legend, flush=True)
    print(f"[run] wrote {run_dir / 'result.json'} ({result['timing_s']['total']:.0f} s)", flush=True)
    return result


def eval_sets(cfg, dataset, data_dir: Path, zero_shot: list[tuple], mixture: list[tuple] = ()) -> list[tuple]:
    """(run config, dataset, its folder, splits) of every evaluated dataset: the run's own, each
    of ``data.mixture`` (trained on too: ``mixture`` holds their (folder, loaded dataset)), then
    each of ``zero_shot`` ((data config, folder): ``eval.zero_shot``'s, then ``eval.beir_sets``'),
    loaded here (the run's configuration with that dataset's)."""
    import dataclasses

    from scaling.data import corpora
    loaded = [(m, root, ds) for m, (root, ds) in zip(cfg.data.mixture, mixture)] + \
        [(z, root, corpora.load(z, cfg.cache_dir, root=root)) for z, root in zero_shot]
    return [(cfg, dataset, data_dir, list(cfg.data.eval_splits))] + \
        [(dataclasses.replace(cfg, data=d), ds, root, list(d.eval_splits)) for d, root, ds in loaded]


def _significance(e, columns: dict, result: dict) -> tuple[dict, str]:
    """Marks for the printed table against ``eval.compare_to``'s column, and the legend under it;
    the comparisons go into ``result["significance"]``."""
    from scaling.analysis import marks, significance
    from scaling.evaluation import systems
    if not e.compare_to:
        return {}, ""
    label = systems.SYSTEMS[e.compare_to].label
    found, rows = marks.column_comparisons(columns, label, e.alpha)
    if not rows:
        return {}, ""
    result["significance"] = {"baseline": e.compare_to, "alpha": e.alpha, "comparisons": rows}
    return found, "\n" + significance.legend(label, e.alpha)


def _beir_mean(e, result: dict, columns: dict) -> dict:
    """With ``eval.beir_sets``: the plain mean of each of ``eval.measures`` over exactly their rows
    (``<name>/test``), per system as the result holds its metrics, into ``result["beir_mean"]``
    (with the row label and the rows averaged); returns the table ``columns`` with that row added
    to each column holding every set. Without, ``columns`` as they are."""
    from scaling.data.beir import suite_rows
    from scaling.evaluation.metrics import plain_mean
    if not e.beir_sets:
        return columns
    rows = suite_rows(e.beir_sets)
    label = f"beir{len(rows)}/mean"

    def mean(metrics):  # {} for a system not on the table; None where it lacks a set
        return plain_mean(metrics, rows, e.measures) if metrics else {}
    result["beir_mean"] = {"row": label, "rows": rows, "metrics": mean(result["metrics"]),
                           "reference_metrics": {k: mean(v) for k, v in result["reference_metrics"].items()},
                           "baseline_metrics": mean(result["baseline_metrics"])}
    means = {c: mean(col) for c, col in columns.items()}
    return {c: {**col, label: means[c]} if means[c] else col for c, col in columns.items()}


def evaluate(cfg: EvaluateConfig) -> dict:
    """recipes/evaluate.py: a checkpoint and/or reference systems on any dataset's splits ->
    RUN_DIR/result.json. Without a checkpoint only the references are evaluated, and with exactly
    one its numbers are also ``metrics``."""
    import dataclasses

    from scaling import checkpoint
    from scaling.data import corpora
    from scaling.evaluation import format_table, systems
    # the run's own configuration (a checkpoint's), with this call's data, evaluation and folders
    base, data_dir, zero_shot = checks.evaluate_inputs(cfg)  # the checkpoint and the datasets' files, before any work
    rcfg = dataclasses.replace(base, data=cfg.data, eval=cfg.eval, cache_dir=cfg.cache_dir,
                               run_dir=cfg.run_dir, overwrite=cfg.overwrite)
    sets = eval_sets(rcfg, corpora.load(rcfg.data, rcfg.cache_dir, root=data_dir), data_dir, zero_shot)
    run_dir = rundir.prepare(cfg.run_dir, "evaluate", cfg.overwrite)
    print(f"[evaluate] {cfg.checkpoint or ', '.join(cfg.eval.baselines)} -> {run_dir}", flush=True)
    metrics, untrained, budget, record = {}, {}, {}, to_dict(rcfg)
    if cfg.checkpoint:
        model = checkpoint.load(cfg.checkpoint, rcfg)
        metrics = systems.each(sets, lambda c, ds, _, sp: systems.trained(c, ds, sp, model, run_dir))
        if metrics is None:
            return {}
        del model
        budget_path = Path(cfg.checkpoint).expanduser().parent / "budget.json"
        budget = json.loads(budget_path.read_text()) if budget_path.exists() else {}
    else:  # no model was trained or loaded: only what the references depend on
        record = {k: record[k] for k in ("data", "eval", "cache_dir", "run_dir")}
    references = systems.references_on(sets)
    if cfg.checkpoint and rcfg.eval.untrained:  # a fresh model, not the loaded checkpoint
        untrained = systems.each(sets, lambda *s: systems.metrics("untrained", *s))
    if not cfg.checkpoint and len(references) == 1:
        metrics = next(iter(references.values()))
    result = {"config": record, "metrics": metrics, "baseline_metrics": untrained, "reference_metrics": references,
              "checkpoint": str(Path(cfg.checkpoint).expanduser()) if cfg.checkpoint else None, "budget": budget}
    columns = systems.columns(references, untrained, **({"checkpoint": metrics} if cfg.checkpoint else {}))
    marks, legend = _significance(rcfg.eval, columns, result)
    columns = _beir_mean(rcfg.eval, result, columns)
    write_json_atomic(run_dir / "result.json", result)
    print(format_table(columns, marks) + legend, flush=True)
    print(f"[evaluate] wrote {run_dir / 'result.json'}", flush=True)
    return result
