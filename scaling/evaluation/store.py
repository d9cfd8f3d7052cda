"""The corpus store: one encoder's corpus vectors under ``RUN_DIR/encoded/<dataset>/``, in block
files that several jobs can split between them (see ``scaling.index.encode`` for the format).

Who encodes what: shard i of n encodes blocks i, i+n, ... A launch's ranks (DDP training, torchrun)
are all alive at once, so rank 0 encodes its share and then waits, with a deadline
(``eval.wait_s``), for the others'; array tasks (``eval.shard``) never wait: the task that finds the
corpus complete goes on to build the index. A private store (a temporary folder, for the
untrained backbone and the references) is one process's own and never shared or reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

from scaling.config import RunConfig
from scaling.launch import launched_by_rank, resolve_shard


def corpus_blocks(module, cfg: RunConfig, d_tok, dataset, rows, store: Path, device,
                  shard: tuple[int, int] | None, private: bool, progress: bool = True):
    """A callable iterating the corpus's row blocks from ``store`` (in corpus order), after encoding
    this job's missing blocks; None when the rest is another job's to finish."""
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
        encode.wait_for_blocks(store, rows, len(docids), e.block, timeout_s=e.wait_s)
    elif missing:
        print(f"[eval] {len(missing)} corpus blocks of {dataset.name} are still to be encoded by other "
              f"shards (eval.shard); the shard that completes the corpus builds the index", flush=True)
        return None
    return lambda: encode.iter_blocks(store, rows, len(docids), e.block)
