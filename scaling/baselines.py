"""Reference systems on every results table: Lucene BM25 and the packaged all-MiniLM-L6-v2.

They need no training, so their numbers depend only on the dataset and evaluation settings and
are cached under ``<cache_dir>/baselines/`` by a hash of those (a grid pays for them once).
BM25 searches the prepared Lucene index (``scaling.prepare``; built here when missing) one
query at a time in an in-process JVM, so its latency is measured like the trained model's.
MiniLM runs zero-shot through the same backbone, head and export code as a trained model
(mean pooling, L2-normalised, FAISS flat).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

from scaling.config import HeadConfig, LoraConfig, ModelConfig, RunConfig
from scaling.data.formats import write_json_atomic

LABELS = {"bm25": "BM25", "minilm": "MiniLM (zero-shot)"}


def _key(name: str, cfg: RunConfig, dataset_dir: Path, splits) -> str:
    parts = {"name": name, "data": [str(Path(dataset_dir).resolve()), cfg.data.query_len, cfg.data.doc_len,
                                    dataclasses.asdict(cfg.data.bm25)],
             "eval": cfg.eval.result_settings(),
             "splits": list(splits)}
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def bm25_metrics(cfg: RunConfig, dataset, splits) -> dict:
    from scaling import prepare
    from scaling.data.formats import size_on_disk
    from scaling.evaluation import score_run
    from scaling.index import bm25, lucene, searcher
    from scaling.index.export import latency_stats
    t = time.perf_counter()
    index = prepare.bm25_index(cfg, dataset, log=lambda m: None)
    built = {"index_MB": size_on_disk(index) / 1e6, "build_s": time.perf_counter() - t}
    out = {}
    for split in splits:
        queries = {q: lucene.clean_text(bm25.split_identifiers(t) if cfg.data.bm25.split_identifiers else t)
                   for q, t in dataset.split_queries(split).items()}
        run, lat = searcher.search({"kind": "bm25", "index": str(index), "k": cfg.eval.k,
                                    "k1": cfg.data.bm25.k1, "b": cfg.data.bm25.b, "queries": queries})
        out[f"{dataset.name}/{split}"] = {**score_run(run, dataset.qrels[split], cfg.eval.measures), **built,
                                          **latency_stats(lat, sum(lat), len(lat))}
    return out


def minilm_metrics(cfg: RunConfig, dataset, splits) -> dict:
    from scaling.experiment import build_model, evaluate_encoder
    from scaling.module import RetrieverModule
    mcfg = dataclasses.replace(
        cfg, model=ModelConfig(name="minilm", lora=LoraConfig(enabled=False), query_prefix="", doc_prefix=""),
        paradigm=dataclasses.replace(cfg.paradigm, name="dense", terms=[],
                                     head=HeadConfig(name="dense", pooling="mean", normalize=True)),
        eval=dataclasses.replace(cfg.eval, index="flat"))
    backbone, head, loss = build_model(mcfg)
    module = RetrieverModule(backbone.body, head, loss, 1e-4, 0.0, 0.0, 1)
    return evaluate_encoder(module, backbone.tokenizer, mcfg, dataset, splits)


COMPUTE = {"bm25": bm25_metrics, "minilm": minilm_metrics}


def reference_metrics(cfg: RunConfig, dataset, dataset_dir, splits) -> dict[str, dict]:
    """{baseline name: {"<dataset>/<split>": metrics}} for ``cfg.eval.baselines``, cached."""
    out = {}
    for name in cfg.eval.baselines:
        path = Path(cfg.cache_dir).expanduser() / "baselines" / f"{name}-{_key(name, cfg, dataset_dir, splits)}.json"
        if path.exists():
            print(f"[eval] {LABELS[name]}: cached {path}", flush=True)
            out[name] = json.loads(path.read_text())
            continue
        print(f"[eval] {LABELS[name]}", flush=True)
        out[name] = COMPUTE[name](cfg, dataset, splits)
        write_json_atomic(path, out[name])
    return out
