"""An encoder end to end: encode the corpus into the head kind's real index (FAISS for dense
heads, a Lucene impact index for sparse ones), search every split's queries through it, score.

What goes to disk with a ``run_dir``: ``encoded/<dataset>/`` (the corpus store, see ``store``),
``index/<dataset>/`` (rebuilt from the store every time) and ``runs/<dataset>_<split>.trec``.
Without one, everything lives in a temporary folder that is removed afterwards.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from scaling.config import RunConfig
from scaling.evaluation.metrics import PER_QUERY, scored, search_ranked
from scaling.evaluation.store import corpus_blocks


def position_limit(module) -> int | None:
    """The most tokens the backbone can place: a learned position table's rows (BERT's 512;
    RoBERTa-style tables, MPNet's, start after the padding row), None for rotary positions, which
    have no table and read any length."""
    import torch.nn as nn
    for name, m in module.named_modules():
        if name.endswith("position_embeddings") and isinstance(m, nn.Embedding):
            return m.num_embeddings - (0 if m.padding_idx is None else m.padding_idx + 1)
    return None


def readable(module, length: int, what: str) -> int:
    """``length`` cut to ``position_limit``, saying so: Luo et al.'s BERT reads at most 512
    document tokens however long eval.doc_len asks them to be."""
    limit = position_limit(module)
    if limit is None or length <= limit:
        return length
    print(f"[eval] this backbone places at most {limit} tokens (learned position embeddings): "
          f"{what}s cut at {limit}, not {length}", flush=True)
    return limit


def evaluate_encoder(module, tokenizer, cfg: RunConfig, dataset, splits, run_dir=None,
                     shard: tuple[int, int] | None = None, progress: bool = True) -> dict[str, dict] | None:
    """{"<dataset>/<split>": {measure: value, plus the index's size, build time, latency, QPS}};
    None where this job's part of the corpus is done but the evaluation is another job's
    (array tasks leave it to whichever completes the corpus, ranks to rank 0).
    ``shard`` = (rank, world) splits the corpus over the ranks of a training launch."""
    from scaling.data.collate import tokenizers_for
    from scaling.index import encode
    from scaling.index.export import build_exporter
    from scaling.index.search import write_trec_run
    e = cfg.eval
    was_training, device = module.training, next(module.parameters()).device
    module.eval()
    target = encode.pick_device(e.device)
    module.to(target)
    q_len, d_len = (readable(module, n, what) for n, what in ((e.query_len or cfg.data.query_len, "query"),
                                                                (e.doc_len or cfg.data.doc_len, "document")))
    q_tok, d_tok = tokenizers_for(tokenizer, cfg.model, q_len, d_len, cfg.query_instruction())
    exporter = build_exporter(module.head.kind, e, module.head)
    out: dict | None = {}
    with tempfile.TemporaryDirectory(prefix="scaling-index-") as tmp:
        root = Path(run_dir) if run_dir is not None else Path(tmp)
        docs = corpus_blocks(module, cfg, d_tok, dataset, exporter.rows, root / "encoded" / dataset.name,
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
                run, stats = search_ranked(lambda depth: exporter.search(q, list(queries), depth), e.k,
                                           cfg.data.ignore_identical_ids)
                if run_dir is not None:
                    write_trec_run(run, Path(run_dir) / "runs" / f"{dataset.name}_{split}.trec")
                m = {**scored(run, dataset.qrels[split], e.measures), **built, **stats}
                ce = _entropy(cfg, dataset, split, q, list(queries), docs)
                m[PER_QUERY].update(ce.pop(PER_QUERY, {}))
                out[f"{dataset.name}/{split}"] = {**m, **ce}
    module.to(device)
    module.train(was_training)
    return out


def _entropy(cfg: RunConfig, dataset, split: str, queries, qids: list[str], docs) -> dict:
    """``contrastive_entropy`` on the split's saved candidate sets (``scaling.evaluation.entropy``),
    and its per-query values; nothing with ``eval.entropy_negatives=0``."""
    from scaling.evaluation import entropy
    from scaling.prepare import dataset_key
    k, seed = cfg.eval.entropy_negatives, cfg.eval.entropy_seed
    if not k:
        return {}
    docids = list(dataset.corpus)
    sets = entropy.candidates(entropy.candidates_path(cfg.cache_dir, dataset_key(cfg), split, k, seed),
                              dataset.qrels[split], docids, k, seed)
    mean, per_query = entropy.entropy(queries, qids, docs, docids, sets, cfg.paradigm.temperature)
    return {"contrastive_entropy": mean, PER_QUERY: {"contrastive_entropy": per_query}}
