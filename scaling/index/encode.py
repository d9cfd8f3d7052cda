"""Encode texts with a trained (or untrained) encoder, batched by similar length.

Texts are tokenised once, sorted by length so each batch pads little, encoded under
``torch.inference_mode`` and returned in the original order.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from scaling.data.collate import Tokenize


@torch.inference_mode()
def encode_texts(encode_fn, tok: Tokenize, texts: list[str], batch_size: int = 64,
                 desc: str = "encode", progress: bool = True, by_length: bool = True) -> torch.Tensor:
    """texts -> (N, dim) float32 representations, in input order.

    ``by_length=False`` batches in input order (the naive baseline benchmarks compare against).
    """
    ids = tok.ids(texts)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i])) if by_length else list(range(len(ids)))
    out: list[torch.Tensor | None] = [None] * len(ids)
    bar = tqdm(total=len(ids), desc=desc, unit="text", disable=not progress, leave=False)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        reps = encode_fn(tok.pad([ids[i] for i in chunk])).float().cpu()  # (b, dim)
        for i, row in zip(chunk, reps):
            out[i] = row
        bar.update(len(chunk))
    bar.close()
    return torch.stack(out) if out else torch.empty(0)
