"""Benchmark: the peak memory of the sparse head's training step at the papers' group size, with
its LM-head blocks checkpointed (what training does) against the same blocks kept for the
backward (the baseline, measured in the same run), and the extra time the recompute costs.

One group of Zeng et al.'s batch: 17 documents x 128 tokens onto Llama-3's 128,256-term
vocabulary. The (B, L, V) logits dominate and do not depend on the hidden size, so the hidden
size defaults to 512 (the 8B model's 4096 gives the same logits and a 2 GB projection, slow on
a CPU). Each variant runs in a fresh process; the peak is the process's peak RSS during the
step beyond what it held before (CUDA: torch.cuda.max_memory_allocated).

    python benchmarks/sparse_head_memory.py [--docs 17] [--len 128] [--vocab 128256] [--hidden 512] [--chunks 32,8]

The baseline and the first checkpointed row use the head's default chunk (32 positions); later
rows show how the checkpointed peak scales with ``paradigm.head.chunk``.

Prints a table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import peak_rss_mb as rss_mb  # noqa: E402


def one(variant: str, a) -> dict:
    """Forward + backward of the head over (docs, len) hidden states in this process."""
    import torch
    from torch import nn

    from scaling.heads.sparse import SparseHead
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    head = SparseHead(nn.Linear(a.hidden, a.vocab, bias=False), a.hidden, a.vocab, chunk=a.chunk).to(device)
    head.lm_head.weight.requires_grad_(False)  # frozen under LoRA; gradients flow to the hidden states
    hidden = torch.randn(a.docs, a.len, a.hidden, device=device, requires_grad=True)
    mask = torch.ones(a.docs, a.len, dtype=torch.long, device=device)
    if variant == "kept":  # the baseline: the same blocks, their logits kept for the backward
        def pool():
            best = None
            for s in range(0, a.len, a.chunk):
                block = head._block_max(hidden[:, s:s + a.chunk], (mask[:, s:s + a.chunk] == 0).unsqueeze(-1))
                best = block if best is None else torch.maximum(best, block)
            return torch.log1p(torch.relu(best))
    else:
        def pool():
            return head.pool(hidden, mask)
    before = rss_mb()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    t = time.perf_counter()
    w = pool()  # (docs, V)
    w.sum().backward()
    if device == "cuda":
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = rss_mb() - before
    return {"variant": variant, "device": device, "peak_MB": peak, "step_s": time.perf_counter() - t,
            "grad_norm": float(hidden.grad.norm())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=17)
    ap.add_argument("--len", type=int, default=128)
    ap.add_argument("--vocab", type=int, default=128256)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--chunks", default="32,8", help="head chunks to measure, the first also for the baseline")
    ap.add_argument("--chunk", type=int, default=32, help=argparse.SUPPRESS)
    ap.add_argument("--variant", default=None, help=argparse.SUPPRESS)  # a child's own run
    a = ap.parse_args()
    if a.variant:
        print(json.dumps(one(a.variant, a)))
        return
    args = [f"--docs={a.docs}", f"--len={a.len}", f"--vocab={a.vocab}", f"--hidden={a.hidden}"]
    chunks = [int(c) for c in a.chunks.split(",")]
    rows = []
    for variant, chunk in [("kept", chunks[0])] + [("checkpointed", c) for c in chunks]:
        out = subprocess.run([sys.executable, __file__, *args, f"--chunk={chunk}", f"--variant={variant}"],
                             capture_output=True, text=True, check=True)
        rows.append({**json.loads(out.stdout.strip().splitlines()[-1]), "chunk": chunk})
    kept = rows[0]
    logits_mb = a.docs * a.len * a.vocab * 4 / 2**20
    print(f"sparse head, {a.docs} docs x {a.len} tokens -> {a.vocab} terms (hidden {a.hidden}, {kept['device']}, "
          f"fp32); the whole logits are {logits_mb:,.0f} MB, one block of c positions {logits_mb / a.len:,.1f} x c MB")
    print(f"{'variant':<14}{'chunk':>6}{'peak MB':>10}{'step s':>9}{'peak / kept':>13}{'time / kept':>13}  same gradient")
    for r in rows:
        same = abs(r["grad_norm"] - kept["grad_norm"]) <= 1e-5 * kept["grad_norm"]
        print(f"{r['variant']:<14}{r['chunk']:>6}{r['peak_MB']:>10,.0f}{r['step_s']:>9.2f}"
              f"{r['peak_MB'] / max(kept['peak_MB'], 1e-9):>13.3f}{r['step_s'] / kept['step_s']:>13.2f}  {same}")


if __name__ == "__main__":
    main()
