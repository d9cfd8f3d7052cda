"""One grid point end to end: plan the budget, train, export the checkpoint, evaluate.

What goes to disk, under ``run_dir``:
  config.yaml-equivalent ``config.json`` (resolved, written first), ``budget.json`` (the plan),
  ``ckpt/last.ckpt`` (resumable Lightning checkpoint, trainable weights only),
  ``checkpoint/`` (what ``recipes/evaluate.py`` rebuilds the model from: ``run_config.json``,
  ``weights.safetensors`` with the trained parameters, and ``adapter/`` in peft's format),
  ``runs/<dataset>_<split>.trec`` (the trained model's run files), ``logs/`` (per-step CSV),
  and last ``result.json`` (written atomically; its presence marks the run finished).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import time
from pathlib import Path

from scaling.config import RunConfig, to_dict
from scaling.data.formats import write_json_atomic


class RunExistsError(FileExistsError):
    pass


def cache_path(cfg: RunConfig) -> Path:
    return Path(cfg.cache_dir).expanduser()


def prepare_run_dir(cfg: RunConfig) -> Path:
    """The run folder: a fresh one under runs/ when unset; a finished one only with overwrite."""
    if cfg.run_dir is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        name = f"{stamp}-{cfg.paradigm.name}-{cfg.loss.name}-{cfg.model.name}"
        run_dir = Path("runs") / name
        n = 1
        while run_dir.exists():
            run_dir, n = Path("runs") / f"{name}-{n}", n + 1
    else:
        run_dir = Path(cfg.run_dir).expanduser()
    if (run_dir / "result.json").exists() and not cfg.overwrite:
        raise RunExistsError(f"{run_dir} holds a finished run (result.json); choose another "
                             "run_dir or pass overwrite=true to replace it")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def build_model(cfg: RunConfig):
    """(backbone, head, loss) from the config's registries."""
    from scaling.backbone import load_backbone
    from scaling.heads import build_head
    from scaling.losses import build_loss
    backbone = load_backbone(cfg.model, cache_path(cfg))
    head = build_head(cfg.paradigm.head, backbone)
    loss = build_loss(list(cfg.loss.terms) + list(cfg.paradigm.terms))
    return backbone, head, loss


def make_plan(cfg: RunConfig, head, world_size: int = 1):
    from scaling import budget, sizes
    arch = sizes.arch_for(cfg.model.name, cfg.model.num_layers)
    lora = cfg.model.lora
    return budget.plan(arch, cfg.data.query_len, cfg.data.doc_len, 1 + cfg.data.n_negatives,
                       cfg.trainer.batch_size * cfg.trainer.accumulate * world_size,
                       lora.r if lora.enabled else None, lora.targets,
                       head.extra_flops_per_token(), cfg.budget.flops, cfg.budget.steps)


# ---------------------------------------------------------------- evaluation

def evaluate_encoder(module, tokenizer, cfg: RunConfig, dataset, splits, run_dir=None,
                     shard: tuple[int, int] | None = None, progress: bool = True) -> dict[str, dict[str, float]] | None:
    """Encode the corpus into the head kind's index (FAISS or Lucene impact; under
    ``run_dir/index/<dataset>`` when given), search each split's queries through it, score:
    {"<dataset>/<split>": {measure: value, plus the index's size, build time, latency, QPS}}.

    With a ``run_dir`` the corpus vectors go to ``run_dir/encoded/<dataset>`` block by block
    (``eval.shard``, or ``shard`` = (rank, world) after DDP training, splits the blocks across jobs;
    a rerun skips finished blocks). Returns None where this job's part is done but the evaluation
    is another's: array tasks leave it to whichever completes the corpus, ranks to rank 0.
    """
    import shutil
    import tempfile

    from scaling.data.collate import tokenizers_for
    from scaling.evaluation import score_run
    from scaling.index import encode
    from scaling.index.export import build_exporter
    from scaling.index.search import write_trec_run
    e = cfg.eval
    was_training, device = module.training, next(module.parameters()).device
    module.eval()
    target = encode.pick_device(e.device)
    module.to(target)
    q_tok, d_tok = tokenizers_for(tokenizer, cfg.model, cfg.paradigm.head, e.query_len or cfg.data.query_len,
                                  e.doc_len or cfg.data.doc_len, e.query_instruction)
    exporter = build_exporter(module.head.kind, e, tokenizer, module.head)
    out: dict | None = {}
    with tempfile.TemporaryDirectory(prefix="scaling-index-") as tmp:
        root = Path(run_dir) if run_dir is not None else Path(tmp)
        docs = _encode_corpus(module, cfg, d_tok, dataset, exporter.rows, root / "encoded" / dataset.name,
                              target, shard, run_dir is None, progress)
        if docs is None:
            out = None
        else:
            index_dir = root / "index" / dataset.name
            shutil.rmtree(index_dir, ignore_errors=True)  # derived from the store: always rebuilt
            built = exporter.build(docs, list(dataset.corpus), index_dir)
            q_fn = encode.encoder_fn(module, "query", target, e.precision)
            for split in splits:
                queries = dataset.split_queries(split)
                q = encode.encode_texts(q_fn, q_tok, list(queries.values()), e.batch_size,
                                        f"encode {split} queries", progress, rows=exporter.rows)
                run, stats = exporter.search(q, list(queries), e.k)
                if run_dir is not None:
                    write_trec_run(run, Path(run_dir) / "runs" / f"{dataset.name}_{split}.trec")
                out[f"{dataset.name}/{split}"] = {**score_run(run, dataset.qrels[split], e.measures),
                                                  **built, **stats}
    module.to(device)
    module.train(was_training)
    return out


def _encode_corpus(module, cfg: RunConfig, d_tok, dataset, rows, store: Path, device, shard, private: bool,
                   progress: bool):
    """A callable iterating the corpus's row blocks from ``store`` (in corpus order), after encoding
    this job's missing blocks; None when the rest is another job's (see evaluate_encoder). A
    ``private`` store is one process's own, never shared: ``shard`` and eval.shard don't apply."""
    import shutil

    from scaling.distributed import launched_by_rank, resolve_shard
    from scaling.index import encode
    e, docids = cfg.eval, list(dataset.corpus)
    if private:
        shard, by_rank = (0, 1), False
    else:
        by_rank = shard is not None or launched_by_rank()
        shard = shard or (resolve_shard(e.shard) if e.shard else (0, 1))
    meta = {"weights": None if private else encode.weights_digest(module),  # a private store is never reused
            "model": dataclasses.asdict(cfg.model), "head": dataclasses.asdict(cfg.paradigm.head),
            "doc_len": d_tok.max_len, "precision": e.precision,
            "docids": hashlib.sha1("\n".join(docids).encode()).hexdigest()[:16]}
    texts = [dataset.corpus[d] for d in docids]

    def encode_mine():
        return encode.encode_blocks(encode.encoder_fn(module, "doc", device, e.precision), d_tok, texts, store,
                                    rows, e.block, shard, meta, e.batch_size, f"encode {dataset.name} corpus",
                                    progress)
    try:
        missing = encode_mine()
    except encode.StoreMismatch:
        if not cfg.overwrite:
            raise
        shutil.rmtree(store)  # overwrite=true replaces the run, its stale vectors included
        missing = encode_mine()
    if by_rank and shard[0] != 0:
        return None
    if missing and by_rank:
        encode.wait_for_blocks(store, rows, len(docids), e.block)
    elif missing:
        print(f"[eval] {len(missing)} corpus blocks of {dataset.name} are still to be encoded by other "
              f"shards (eval.shard); the shard that completes the corpus builds the index", flush=True)
        return None
    return lambda: encode.iter_blocks(store, rows, len(docids), e.block)


def baseline_key(cfg: RunConfig, dataset_dir: Path, splits) -> str:
    """Hash of everything the untrained backbone's numbers depend on (not the training)."""
    model = dataclasses.asdict(cfg.model)
    model.pop("lora")
    parts = {"model": model, "head": dataclasses.asdict(cfg.paradigm.head),
             "eval": cfg.eval.result_settings(), "data": [str(Path(dataset_dir).resolve()),
             cfg.data.query_len, cfg.data.doc_len], "splits": list(splits)}
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def baseline_metrics(module, tokenizer, cfg, dataset, dataset_dir, splits):
    """Untrained-backbone metrics (LoRA B = 0, so step 0 is the backbone), cached by config."""
    path = cache_path(cfg) / "baselines" / f"{baseline_key(cfg, dataset_dir, splits)}.json"
    if path.exists():
        print(f"[eval] untrained backbone: cached {path}", flush=True)
        return json.loads(path.read_text())
    print("[eval] untrained backbone (step 0)", flush=True)
    metrics = evaluate_encoder(module, tokenizer, cfg, dataset, splits)
    write_json_atomic(path, metrics)
    return metrics


# ---------------------------------------------------------------- checkpoint

def save_checkpoint(out: Path, module, cfg: RunConfig) -> Path:
    """Write what evaluate.py needs: run_config.json, weights.safetensors (trained params), adapter/."""
    from safetensors.torch import save_file

    from scaling.data.formats import atomic_dir
    trained = {k: v.detach().cpu().contiguous() for k, v in module.named_parameters()
               if v.requires_grad}
    with atomic_dir(out) as tmp:
        save_file(trained, str(tmp / "weights.safetensors"))
        if cfg.model.lora.enabled:
            module.body.model.save_pretrained(str(tmp / "adapter"))
        write_json_atomic(tmp / "run_config.json", to_dict(cfg))
    return Path(out)


def load_checkpoint(ckpt_dir: Path, cache_dir: str | None = None):
    """Rebuild (cfg, module, tokenizer) from a checkpoint folder written by save_checkpoint."""
    from safetensors.torch import load_file

    from scaling.config import parse
    from scaling.module import RetrieverModule
    ckpt_dir = Path(ckpt_dir).expanduser()
    cfg_path = ckpt_dir / "run_config.json"
    if not cfg_path.exists():
        raise FileNotFoundError(f"{cfg_path} is missing: {ckpt_dir} is not a checkpoint folder "
                                "(expected run_config.json and weights.safetensors)")
    cfg = parse(json.loads(cfg_path.read_text()))
    if cache_dir is not None:
        cfg.cache_dir = cache_dir
    backbone, head, loss = build_model(cfg)
    module = RetrieverModule(backbone.body, head, loss)
    weights = load_file(str(ckpt_dir / "weights.safetensors"))
    missing, unexpected = module.load_state_dict(weights, strict=False)
    if unexpected:
        raise KeyError(f"{ckpt_dir}/weights.safetensors has keys the model lacks: {unexpected[:3]}")
    trained = {k for k, v in module.named_parameters() if v.requires_grad}
    lost = sorted(trained - set(weights))
    if lost:
        raise KeyError(f"{ckpt_dir}/weights.safetensors lacks trained parameters: {lost[:3]}")
    return cfg, module, backbone.tokenizer


# ---------------------------------------------------------------- training

def _logger(cfg: RunConfig, run_dir: Path):
    if cfg.logger.name == "none":
        return False
    if cfg.logger.name == "wandb":
        from lightning.pytorch.loggers import WandbLogger
        return WandbLogger(project=cfg.logger.project, save_dir=str(run_dir), offline=cfg.logger.mode == "offline",
                           name=run_dir.name, config=to_dict(cfg))
    from lightning.pytorch.loggers import CSVLogger
    return CSVLogger(save_dir=str(run_dir), name="logs", version="")


def train(cfg: RunConfig, module, datamodule, plan, run_dir: Path) -> tuple[int, int]:
    """Fit for exactly plan.steps optimiser steps; resume from ckpt/last.ckpt when present.
    Returns this process's (rank, world size)."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
    t = cfg.trainer
    ckpt_dir = run_dir / "ckpt"
    from scaling.data.resume import DataPosition
    callbacks = [DataPosition(datamodule.sampler),
                 ModelCheckpoint(dirpath=str(ckpt_dir), every_n_train_steps=t.checkpoint_every,
                                 save_last=True, save_top_k=0, save_weights_only=False),
                 TQDMProgressBar(refresh_rate=1)]
    trainer = L.Trainer(accelerator=t.accelerator, devices=t.devices, strategy=t.strategy,
                        precision=t.precision, max_steps=plan.steps, max_epochs=-1,
                        accumulate_grad_batches=t.accumulate, gradient_clip_val=t.grad_clip,
                        log_every_n_steps=t.log_every, logger=_logger(cfg, run_dir),
                        callbacks=callbacks, enable_model_summary=False,
                        default_root_dir=str(run_dir), num_sanity_val_steps=0,
                        use_distributed_sampler=False)  # EpochSampler slices ranks itself
    last = ckpt_dir / "last.ckpt"
    if last.exists():
        print(f"[train] resuming from {last}", flush=True)
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if last.exists() else None)
    return trainer.global_rank, trainer.world_size


def table_columns(references: dict, baseline: dict) -> dict:
    """The reference systems and the untrained backbone, in table order."""
    from scaling.baselines import LABELS
    columns = {LABELS[name]: m for name, m in references.items()}
    if baseline:
        columns["untrained (step 0)"] = baseline
    return columns


def run(cfg: RunConfig) -> dict:
    """Train and evaluate one configuration; returns (and writes) the result record."""
    import torch

    from scaling import prepare
    from scaling.data import corpora
    from scaling.data.datamodule import GroupDataModule
    from scaling.evaluation import format_table
    from scaling.losses import check_data_for, needs_teacher
    from scaling.module import RetrieverModule
    t0 = time.time()
    terms = list(cfg.loss.terms) + list(cfg.paradigm.terms)
    teacher_scores = prepare.teacher_scores_path(cfg) if needs_teacher(terms) else None
    check_data_for(terms, cfg.data, teacher_scores,
                   f", or build them: `{prepare.prepare_command(cfg, 'teacher')}` with this run's teacher= options")
    pools = prepare.load_negative_pools(cfg) if cfg.data.negatives == "bm25" and not teacher_scores else None
    run_dir = prepare_run_dir(cfg)
    print(f"[run] {run_dir}", flush=True)
    write_json_atomic(run_dir / "config.json", to_dict(cfg))
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    import lightning as L
    L.seed_everything(cfg.seed, verbose=False)

    data_dir = corpora.dataset_dir(cfg.data, cache_path(cfg))
    dataset = corpora.load(cfg.data, cache_path(cfg))
    splits = cfg.data.eval_splits
    backbone, head, loss = build_model(cfg)
    plan = make_plan(cfg, head)
    print(plan.describe(), flush=True)
    write_json_atomic(run_dir / "budget.json", plan.as_dict())
    module = RetrieverModule(backbone.body, head, loss, cfg.trainer.lr, cfg.trainer.warmup_ratio,
                             cfg.trainer.weight_decay, plan.steps)

    from scaling.baselines import reference_metrics
    references = reference_metrics(cfg, dataset, data_dir, splits)
    baseline = {}
    if cfg.eval.untrained:
        baseline = baseline_metrics(module, backbone.tokenizer, cfg, dataset, data_dir, splits)
    dm = GroupDataModule(dataset, backbone.tokenizer, cfg.data, cfg.model, cfg.paradigm.head,
                         cfg.trainer.batch_size, cfg.seed, cfg.trainer.num_workers, teacher_scores, pools)
    t_train = time.time()
    rank, world = train(cfg, module, dm, plan, run_dir)
    t_train = time.time() - t_train
    ckpt = run_dir / "checkpoint"
    if rank == 0:
        save_checkpoint(ckpt, module, cfg)
    print("[eval] trained model", flush=True)
    t_eval = time.time()
    # after DDP training every rank encodes its share of the corpus; rank 0 waits and evaluates
    metrics = evaluate_encoder(module, backbone.tokenizer, cfg, dataset, splits, run_dir,
                               (rank, world) if world > 1 else None)
    t_eval = time.time() - t_eval
    if rank != 0:
        return {}
    if metrics is None:  # eval.shard: the other shards finish with recipes/evaluate.py
        print(f"[run] trained {ckpt}; evaluate the remaining shards with `python recipes/evaluate.py "
              f"checkpoint={ckpt} run_dir={run_dir} eval.shard=...`", flush=True)
        return {}
    result = {"config": to_dict(cfg), "metrics": metrics, "baseline_metrics": baseline,
              "reference_metrics": references, "checkpoint": str(ckpt), "budget": plan.as_dict(),
              "timing_s": {"train": round(t_train, 1), "eval": round(t_eval, 1),
                           "total": round(time.time() - t0, 1)}}
    write_json_atomic(run_dir / "result.json", result)
    columns = table_columns(references, baseline)
    columns[f"trained ({plan.steps} steps)"] = metrics
    print(format_table(columns), flush=True)
    print(f"[run] wrote {run_dir / 'result.json'} ({result['timing_s']['total']:.0f} s)", flush=True)
    return result


def reference_names(value) -> list[str] | None:
    """evaluate.py's ``baseline=``: bm25 | minilm | [bm25,minilm] | none -> a list; unset -> None."""
    if value is None:
        return None
    names = [value] if isinstance(value, str) else list(value)
    return [n for part in names for n in str(part).split(",") if n and n != "none"]


def evaluate_checkpoint(conf: dict) -> dict:
    """recipes/evaluate.py: a checkpoint (and/or reference systems) on any dataset's splits ->
    RUN_DIR/result.json. ``baseline=`` picks the reference systems (replacing eval.baselines);
    without a checkpoint only they are evaluated, and with exactly one its numbers are ``metrics``."""
    from scaling.config import BudgetConfig, ConfigError, DataConfig, EvalConfig, build
    from scaling.data import corpora
    from scaling.evaluation import format_table
    names = reference_names(conf.get("baseline"))
    checkpoint = conf.get("checkpoint")
    if checkpoint is None and not names:
        raise ConfigError("checkpoint: give checkpoint=RUN_DIR/checkpoint, or baseline=bm25|minilm "
                          "to evaluate a reference system alone")
    eval_conf = dict(conf["eval"], **({"baselines": names} if names is not None else {}))
    data_cfg = build(DataConfig, conf["data"], "data.")
    eval_cfg = build(EvalConfig, eval_conf, "eval.")
    if checkpoint is not None:
        cfg, module, tokenizer = load_checkpoint(checkpoint, conf.get("cache_dir") or None)
    else:
        # no training: the budget is a placeholder, and the record below leaves it out
        cfg, module = RunConfig(budget=BudgetConfig(name="none", steps=1),
                                cache_dir=conf.get("cache_dir") or RunConfig.cache_dir), None
    cfg = dataclasses.replace(cfg, data=data_cfg, eval=eval_cfg, run_dir=conf.get("run_dir"),
                              overwrite=bool(conf.get("overwrite", False)))
    run_dir = prepare_run_dir(cfg)
    print(f"[evaluate] {checkpoint or ', '.join(names)} -> {run_dir}", flush=True)
    data_dir = corpora.dataset_dir(cfg.data, cache_path(cfg))
    dataset = corpora.load(cfg.data, cache_path(cfg))
    splits = cfg.data.eval_splits
    metrics, baseline = {}, {}
    if module is not None:
        metrics = evaluate_encoder(module, tokenizer, cfg, dataset, splits, run_dir)
        if metrics is None:
            return {}
        del module
    from scaling.baselines import reference_metrics
    references = reference_metrics(cfg, dataset, data_dir, splits)
    if checkpoint is not None and cfg.eval.untrained:  # a fresh model, not the loaded checkpoint
        from scaling.module import RetrieverModule
        backbone, head, loss = build_model(cfg)
        untrained = RetrieverModule(backbone.body, head, loss, 1e-4, 0.0, 0.0, 1)
        baseline = baseline_metrics(untrained, tokenizer, cfg, dataset, data_dir, splits)
        del untrained, backbone
    if checkpoint is None and len(references) == 1:
        metrics = next(iter(references.values()))
    record, budget = to_dict(cfg), {}
    if checkpoint is None:  # no model was trained or loaded: only what the references depend on
        record = {k: record[k] for k in ("data", "eval", "cache_dir", "run_dir")}
    else:
        checkpoint = str(Path(checkpoint).expanduser())
        budget_path = Path(checkpoint).parent / "budget.json"
        budget = json.loads(budget_path.read_text()) if budget_path.exists() else {}
    result = {"config": record, "metrics": metrics, "baseline_metrics": baseline,
              "reference_metrics": references, "checkpoint": checkpoint, "budget": budget}
    write_json_atomic(run_dir / "result.json", result)
    columns = table_columns(references, baseline)
    if checkpoint is not None:
        columns["checkpoint"] = metrics
    print(format_table(columns), flush=True)
    print(f"[evaluate] wrote {run_dir / 'result.json'}", flush=True)
    return result
