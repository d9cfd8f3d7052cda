"""The systems a results table shows: references with no training (``bm25``:
Lucene BM25; ``minilm``: the packaged all-MiniLM-L6-v2 zero-shot; ``mpnet``: the packaged
all-mpnet-base-v2 zero-shot (110M: slow on CPU, so not a default baseline); ``splade``: the packaged
SPLADE-tiny zero-shot, a learned-sparse model through the same Lucene impact export), the ``untrained`` backbone
(LoRA starts with B = 0, so step 0 *is* the backbone) and the ``trained`` encoder.

The first three are ``SYSTEMS``: callables ``(cfg, dataset, data_dir, splits, model=None) ->
{"<dataset>/<split>": metrics}`` with a column label, cached (``cache.cached``) under a key of
everything their numbers depend on; ``model`` is an encoder the caller already holds (the
training module at step 0 for ``untrained``), else the system builds its own. ``trained`` is the
run's own encoder: never cached, its files under the run folder.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from scaling.config import REFERENCE_SYSTEMS, RunConfig
from scaling.evaluation.cache import cached
from scaling.evaluation.encoder import evaluate_encoder
from scaling.evaluation.metrics import scored, search_ranked


@dataclass(frozen=True)
class System:
    label: str
    compute: Callable
    key: Callable[[RunConfig, Path, list], dict]
    """What its numbers depend on (the cache key)."""


def _data_key(cfg: RunConfig, data_dir: Path, splits) -> dict:
    """What a system's numbers depend on in the dataset and the evaluation settings
    (``data.ignore_identical_ids`` only when set, so keys made before it existed still hold)."""
    drop = ["ignore_identical_ids"] if cfg.data.ignore_identical_ids else []
    return {"data": [str(Path(data_dir).resolve()), cfg.data.query_len, cfg.data.doc_len, *drop],
            "eval": {**cfg.eval.result_settings(), "query_instruction": cfg.query_instruction()},
            "splits": list(splits)}


def bm25(cfg: RunConfig, dataset, data_dir, splits, model=None) -> dict:
    """Lucene BM25 on the prepared index (built here when missing), searched one query at a time
    in a child JVM process so its latency is measured like an exported encoder's."""
    from scaling import prepare
    from scaling.index import bm25 as lucene_bm25
    from scaling.index import lucene, searcher
    from scaling.index.export import latency_stats
    from scaling.io import size_on_disk
    t = time.perf_counter()
    index = prepare.bm25_index(cfg, dataset, log=lambda m: None)
    built = {"index_MB": size_on_disk(index) / 1e6, "build_s": time.perf_counter() - t}
    out = {}
    for split in splits:
        queries = {q: lucene.clean_text(lucene_bm25.split_identifiers(t) if cfg.data.bm25.split_identifiers else t)
                   for q, t in dataset.split_queries(split).items()}
        run, lat = search_ranked(
            lambda depth: searcher.search({"kind": "bm25", "index": str(index), "k": depth, "k1": cfg.data.bm25.k1,
                                           "b": cfg.data.bm25.b, "queries": queries}),
            cfg.eval.k, cfg.data.ignore_identical_ids)
        out[f"{dataset.name}/{split}"] = {**scored(run, dataset.qrels[split], cfg.eval.measures), **built,
                                          **latency_stats(lat, sum(lat), len(lat))}
    return out


def bi_encoder_config(cfg: RunConfig, name: str = "minilm") -> RunConfig:
    """``cfg`` with a packaged sentence-transformers bi-encoder (``minilm``: all-MiniLM-L6-v2;
    ``mpnet``: all-mpnet-base-v2) as a frozen, mean-pooled, normalised dense encoder, as its
    authors pool it, its scores read at temperature 0.05 (sentence-transformers' scale of 20) for
    the contrastive entropy."""
    from scaling.config import DenseHeadConfig, LoraConfig, ModelConfig
    return dataclasses.replace(
        cfg, model=ModelConfig(name=name, lora=LoraConfig(enabled=False), query_prefix="", doc_prefix=""),
        paradigm=dataclasses.replace(cfg.paradigm, name="dense", terms=[], temperature=0.05,
                                     head=DenseHeadConfig(pooling="mean", normalize=True)),
        eval=dataclasses.replace(cfg.eval, index="flat"))


def minilm_config(cfg: RunConfig) -> RunConfig:
    return bi_encoder_config(cfg, "minilm")


def mpnet_config(cfg: RunConfig) -> RunConfig:
    return bi_encoder_config(cfg, "mpnet")


def splade_config(cfg: RunConfig) -> RunConfig:
    """``cfg`` with the packaged SPLADE-tiny as a frozen sparse encoder, read as its authors do:
    max over every position (CLS and SEP included) of log(1 + relu(MLM logits)), no prefixes, no
    logit scaling, no pruning; its scores read at temperature 1 (SPLADE's training loss's)."""
    from scaling.config import LoraConfig, ModelConfig, SparseHeadConfig
    return dataclasses.replace(
        cfg, model=ModelConfig(name="splade-tiny", lora=LoraConfig(enabled=False), query_prefix="", doc_prefix=""),
        paradigm=dataclasses.replace(cfg.paradigm, name="sparse", terms=[], temperature=1.0, head=SparseHeadConfig(
            skip_sink=False, skip_prefix=False, scale_logits=False, lexical=False, fold=False,
            doc_top_k=None)))


def encoder_reference(label: str, config: Callable[[RunConfig], RunConfig]) -> System:
    """A packaged model zero-shot (``config`` turns a run's configuration into the model's) through
    the same backbone, head and index export as a trained model; keyed by that configuration."""
    def compute(cfg, dataset, data_dir, splits, model=None):
        from scaling.checkpoint import inference_model
        rcfg = config(cfg)
        module, tokenizer = inference_model(rcfg)
        return evaluate_encoder(module, tokenizer, rcfg, dataset, splits)

    def key(cfg, data_dir, splits):
        rcfg = config(cfg)
        return {**_data_key(rcfg, data_dir, splits), "model": dataclasses.asdict(rcfg.model),
                "head": dataclasses.asdict(rcfg.paradigm.head), "temperature": rcfg.paradigm.temperature}
    return System(label, compute, key)


def untrained(cfg: RunConfig, dataset, data_dir, splits, model=None) -> dict:
    """The backbone and head before training: ``model`` (a module at step 0), else a fresh one."""
    from scaling.checkpoint import inference_model
    module, tokenizer = model if model is not None else inference_model(cfg)
    return evaluate_encoder(module, tokenizer, cfg, dataset, splits)


def _untrained_key(cfg: RunConfig, data_dir: Path, splits) -> dict:
    model = dataclasses.asdict(cfg.model)
    model.pop("lora")  # LoRA at its init changes nothing
    if cfg.model.init_from:  # a later stage starts from an earlier run's weights: keyed by the file's
        from scaling.start import earlier_dir  # identity (a retrained stage rewrites it), not by reading
        stat = (earlier_dir(cfg) / "weights.safetensors").stat()  # gigabytes of fully trained weights
        model["init_from"] = [str(earlier_dir(cfg).resolve()), stat.st_size, stat.st_mtime_ns]
    return {**_data_key(cfg, data_dir, splits), "model": model, "head": dataclasses.asdict(cfg.paradigm.head),
            "temperature": cfg.paradigm.temperature}


def trained(cfg: RunConfig, dataset, splits, model, run_dir: Path, shard=None) -> dict | None:
    """The run's encoder (``model`` = (module, tokenizer)), never cached: its vectors, index and
    TREC runs go under ``run_dir``, and ``shard`` = (rank, world) splits the corpus over a launch's
    ranks (None where this job's share is done but another finishes the evaluation)."""
    module, tokenizer = model
    return evaluate_encoder(module, tokenizer, cfg, dataset, splits, run_dir, shard)


SYSTEMS: dict[str, System] = {
    "bm25": System("BM25", bm25, lambda c, d, s: {**_data_key(c, d, s), "bm25": dataclasses.asdict(c.data.bm25)}),
    "minilm": encoder_reference("MiniLM (zero-shot)", minilm_config),
    "mpnet": encoder_reference("MPNet (zero-shot)", mpnet_config),
    "splade": encoder_reference("SPLADE-tiny (zero-shot)", splade_config),
    "untrained": System("untrained (step 0)", untrained, _untrained_key),
}
"""The cached systems; the run's own encoder is ``trained`` (its column label names its steps)."""
assert set(REFERENCE_SYSTEMS) <= set(SYSTEMS)


def metrics(name: str, cfg: RunConfig, dataset, data_dir, splits, model=None) -> dict:
    """A cached system's metrics (computed once per key)."""
    system = SYSTEMS[name]
    return cached(cfg.cache_dir, name, system.label, {"system": name, **system.key(cfg, data_dir, splits)},
                  lambda: system.compute(cfg, dataset, data_dir, splits, model))


def references(cfg: RunConfig, dataset, data_dir, splits) -> dict[str, dict]:
    """{name: metrics} of the reference systems ``cfg.eval.baselines``."""
    return {name: metrics(name, cfg, dataset, data_dir, splits) for name in cfg.eval.baselines}


def each(sets: list[tuple], evaluate: Callable) -> dict | None:
    """``evaluate(cfg, dataset, data_dir, splits)`` on every evaluated dataset (the run's, then its
    zero-shot ones: ``experiment.eval_sets``), the {"<dataset>/<split>": metrics} tables merged;
    None where any is None (a shard whose evaluation another job finishes)."""
    out: dict = {}
    for s in sets:
        got = evaluate(*s)
        if got is None:
            return None
        out.update(got)
    return out


def references_on(sets: list[tuple]) -> dict[str, dict]:
    """{name: metrics on every evaluated dataset} of the reference systems ``eval.baselines``."""
    out: dict[str, dict] = {}
    for s in sets:
        for name, got in references(*s).items():
            out.setdefault(name, {}).update(got)
    return out


def columns(references: dict, untrained: dict | None, **more: dict) -> dict:
    """Table columns in order: the references, the untrained backbone, then ``more`` (label: metrics)."""
    out = {SYSTEMS[name].label: m for name, m in references.items()}
    if untrained:
        out[SYSTEMS["untrained"].label] = untrained
    return {**out, **more}


def result_columns(result: dict) -> dict:
    """A result record's table columns: its references, the untrained backbone, the trained model."""
    trained = f"trained ({result['budget']['realised']['steps']} steps)"
    return columns(result["reference_metrics"], result["baseline_metrics"], **{trained: result["metrics"]})
