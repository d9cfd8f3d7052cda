"""Encode texts with a trained (or untrained) encoder, batched by similar length; corpora in blocks.

Texts are tokenised, sorted by length so each batch pads little, encoded under inference mode
(on the evaluation device, in bf16 autocast when asked) and returned in input order. Each batch
is packed as it comes by the head kind's row format (``ROWS``): dense heads give a float32
(N, dim) array, sparse heads a scipy CSR (N, V) matrix, so a vocabulary-wide dense matrix never
exists beyond one batch.

A corpus is encoded in fixed blocks of ``block`` texts (``encode_blocks``). Shard i of n
encodes blocks i, i+n, ... so array tasks or launcher ranks split a large corpus without talking
to each other, and every block file is written atomically, so a killed job re-encodes only the
blocks it had not finished.

What goes to disk under a store folder: ``meta.json`` (everything the vectors depend on; a
store holding other settings is an error, never a silent mix) and one ``block-<b>.npy`` (dense)
or ``block-<b>.npz`` (sparse CSR) per block.

Progress bars go to stderr (``progress_bar``): cleared when done in a terminal, kept with their
final count and a newline in a file or pipe, so what is printed next starts on its own line.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from scaling.data.collate import Tokenize
from scaling.io import write_atomic, write_json_atomic


def progress_bar(total: int, desc: str, enabled: bool = True):
    """A tqdm bar of ``total`` texts on stderr. tqdm ends a bar by moving back to the start of its
    line (``\r``) and, when it clears itself, blanking it: in a terminal the next output then
    overwrites the blanks, but in a ``2>&1`` log the next line (the results table) would start
    after them on the same line. So outside a terminal the bar is left with its final count,
    which ends with a newline."""
    return tqdm(total=total, desc=desc, unit="text", disable=not enabled, leave=not _is_terminal(sys.stderr))


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


class DenseRows:
    """float32 (N, dim) numpy arrays."""

    suffix = ".npy"

    def pack(self, reps: torch.Tensor) -> np.ndarray:
        return reps.float().cpu().numpy()

    def stack(self, parts: list) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    def save(self, rows: np.ndarray, path: Path) -> None:
        write_atomic(path, lambda f: np.save(f, rows), binary=True)

    def load(self, path: Path) -> np.ndarray:
        return np.load(path)


class SparseRows:
    """float32 (N, V) scipy CSR matrices (zeros dropped)."""

    suffix = ".npz"

    def pack(self, reps: torch.Tensor) -> sp.csr_matrix:
        return sp.csr_matrix(reps.float().cpu().numpy())

    def stack(self, parts: list) -> sp.csr_matrix:
        return sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, 0), dtype=np.float32)

    def save(self, rows: sp.csr_matrix, path: Path) -> None:
        write_atomic(path, lambda f: sp.save_npz(f, rows), binary=True)

    def load(self, path: Path) -> sp.csr_matrix:
        return sp.load_npz(path).tocsr()


ROWS = {"dense": DenseRows(), "sparse": SparseRows()}


def pick_device(spec: str = "auto") -> torch.device:
    """'auto': this process's GPU (LOCAL_RANK under a launcher) when CUDA is present, else the CPU."""
    if spec != "auto":
        return torch.device(spec)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    return torch.device("cpu")


def encoder_fn(module, role: str, device: torch.device | str = "cpu", precision: str = "32"):
    """tokens -> the head's post-processed representations for ``role`` ('query' or 'doc')."""
    device = torch.device(device)

    def fn(tokens: dict) -> torch.Tensor:
        tokens = {k: v.to(device) for k, v in tokens.items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            return module.head.postprocess(module.encode(tokens), role)
    return fn


@torch.inference_mode()
def encode_texts(encode_fn, tok: Tokenize, texts: list[str], batch_size: int = 64,
                 desc: str = "encode", progress: bool = True, by_length: bool = True,
                 rows: DenseRows | SparseRows = ROWS["dense"], bar=None):
    """texts -> packed representations (``rows`` format), in input order.

    ``by_length=False`` batches in input order (the naive baseline benchmarks compare against).
    ``bar``: an open progress bar to advance instead of a new one.
    """
    ids = tok.ids(texts)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i])) if by_length else list(range(len(ids)))
    own = bar is None
    if own:
        bar = progress_bar(len(ids), desc, progress)
    parts = []
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        parts.append(rows.pack(encode_fn(tok.pad([ids[i] for i in chunk]))))  # (b, dim) or (b, V)
        bar.update(len(chunk))
    if own:
        bar.close()
    stacked = rows.stack(parts)  # rows in ``order``
    return stacked[np.argsort(order)] if by_length and len(order) else stacked


# ---------------------------------------------------------------- corpus blocks

class StoreMismatch(FileExistsError):
    """A store written under other settings already exists where this one should go."""


def weights_digest(module) -> str:
    """A short fingerprint of a module's trained parameters (names, shapes and the first 64 MiB of
    values): what an encoded store's vectors depend on besides the settings. Equal on every DDP
    rank and for a checkpoint reloaded by evaluate.py."""
    h, budget = hashlib.sha1(), 64 << 20
    for name, p in sorted(module.named_parameters()):
        if not p.requires_grad:
            continue
        h.update(f"{name}:{tuple(p.shape)}:{p.dtype}".encode())
        if budget > 0:
            raw = p.detach().contiguous().view(-1).view(torch.uint8)[:budget].cpu().numpy().tobytes()
            h.update(raw)
            budget -= len(raw)
    return h.hexdigest()[:16]


def block_path(store: Path, b: int, rows) -> Path:
    return Path(store) / f"block-{b:06d}{rows.suffix}"


def n_blocks(count: int, block: int) -> int:
    return max(1, math.ceil(count / block))


def missing_blocks(store: Path, rows, total: int) -> list[int]:
    return [b for b in range(total) if not block_path(store, b, rows).exists()]


def check_store(store: Path, meta: dict) -> None:
    """Record ``meta`` in a new store; refuse one written under different settings."""
    path = Path(store) / "meta.json"
    if path.exists():
        old = json.loads(path.read_text())
        diff = sorted(k for k in set(old) | set(meta) if old.get(k) != meta.get(k))
        if diff:
            raise StoreMismatch(f"{store} holds encoded vectors made with other settings (differ: "
                                f"{', '.join(diff)}); delete that folder or evaluate into another run_dir")
        return
    write_json_atomic(path, meta)


def encode_blocks(encode_fn, tok: Tokenize, texts: list[str], store: Path, rows, block: int,
                  shard: tuple[int, int], meta: dict, batch_size: int = 64, desc: str = "encode corpus",
                  progress: bool = True) -> list[int]:
    """Encode this shard's unfinished blocks into ``store``; returns the blocks still missing there
    (other shards' work), so [] means the corpus is complete."""
    store = Path(store)
    total = n_blocks(len(texts), block)
    check_store(store, {**meta, "count": len(texts), "block": block})
    i, n = shard
    mine = range(i, total, n)
    todo = [b for b in mine if not block_path(store, b, rows).exists()]
    size = sum(len(texts[b * block:(b + 1) * block]) for b in todo)
    if n > 1 or len(todo) < len(mine):
        print(f"[encode] shard {i}/{n}: {len(todo)} of {len(mine)} blocks to encode "
              f"({size} texts) in {store}", flush=True)
    with progress_bar(size, desc, progress) as bar:
        for b in todo:
            reps = encode_texts(encode_fn, tok, texts[b * block:(b + 1) * block], batch_size, rows=rows, bar=bar)
            rows.save(reps, block_path(store, b, rows))
    return missing_blocks(store, rows, total)


def wait_for_blocks(store: Path, rows, count: int, block: int, timeout_s: float = 3600.0,
                    poll_s: float = 10.0) -> None:
    """Block until every block file exists (rank 0 waiting for the other ranks of one launch);
    past ``timeout_s`` raise TimeoutError naming the store and the blocks still missing."""
    total, last, start = n_blocks(count, block), None, time.monotonic()
    while missing := missing_blocks(store, rows, total):
        waited = time.monotonic() - start
        if waited > timeout_s:
            raise TimeoutError(f"waited {waited:.0f} s (eval.wait_s={timeout_s:g}) for {len(missing)} of {total} "
                               f"corpus blocks in {store} from the other ranks (missing: "
                               f"{', '.join(str(b) for b in missing[:5])}{' ...' if len(missing) > 5 else ''}); "
                               "rerun with the same run_dir to encode only what is missing")
        if len(missing) != last:
            print(f"[encode] waiting for {len(missing)} of {total} blocks from other ranks", flush=True)
            last = len(missing)
        time.sleep(min(poll_s, max(0.1, timeout_s - waited)))


def iter_blocks(store: Path, rows, count: int, block: int):
    """The corpus's representations block by block, in corpus order."""
    for b in range(n_blocks(count, block)):
        yield rows.load(block_path(store, b, rows))
