"""Gradient caching (Gao et al., 2021, "Scaling Deep Contrastive Learning Batch Size under Memory
Limited Setup"): a contrastive batch whose memory is bounded by one chunk of rows, not the batch.

GradCache's procedure is: encode the batch in chunks without keeping their graphs; compute the
loss and its gradient with respect to every representation on the whole batch; re-encode each
chunk with the random state of its first pass (so dropout draws the same masks) and
back-propagate the cached gradient through it. A chunk encoded under autograd's non-reentrant
checkpoint is exactly that: its forward keeps no activations, the loss is computed on the
concatenated representations, and during the backward autograd re-runs each chunk's forward
with the saved random state and back-propagates the gradient that reached its representation.
Running it inside autograd, rather than as two explicit passes, leaves the one backward per
micro-batch to Lightning: accumulation, clipping, mixed precision and DDP's gradient sync (which
fires once per backward) stay as they are. The gradients equal those of the same chunks encoded
with their graphs kept (tests/test_gradcache.py).
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint


def rows(tokens: dict, lo: int, hi: int) -> dict:
    """Rows lo:hi of every (N, L) tensor of a tokenised batch."""
    return {k: (v[lo:hi] if torch.is_tensor(v) else v) for k, v in tokens.items()}


def encode_chunked(encode, tokens: dict, chunk: int | None) -> torch.Tensor:
    """``encode(tokens) -> (N, D)`` in chunks of ``chunk`` rows whose activations are recomputed
    in the backward; a plain call when off, when the batch fits one chunk, or without autograd."""
    n = tokens["input_ids"].shape[0]
    if not chunk or n <= chunk or not torch.is_grad_enabled():
        return encode(tokens)
    parts = [checkpoint(encode, rows(tokens, lo, lo + chunk), use_reentrant=False, preserve_rng_state=True)
             for lo in range(0, n, chunk)]
    return torch.cat(parts, dim=0)  # (N, D)
