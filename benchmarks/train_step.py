"""Benchmark: a training step, each figure a ratio against a baseline measured in the same run.

1. Overhead: the Lightning training step (RetrieverModule under a real Trainer, with the FLOP
   ledger and data-position callbacks training uses) against a plain PyTorch loop (the same
   model, batch, AdamW, schedule and clipping). Target: at most 5% overhead.
2. Gradient caching: the same step with ``trainer.grad_cache_chunk`` against the whole batch at
   once: time and peak memory (CPU: the process's peak RSS during the steps; CUDA: peak allocated).
3. Throughput: training tokens/s and, on a GPU, model FLOPs utilisation = the budget plan's FLOPs
   per step / step time / the device's peak (989 TFLOP/s dense bf16 for an H100; --peak-tflops).

Every variant runs in a fresh process on the same random batch. On a CPU the defaults take a few
minutes (SmolLM2 cut to 4 layers, 8 queries x 4 documents); on a GPU, e.g.:

    python benchmarks/train_step.py                                         # CPU defaults
    python benchmarks/train_step.py --size 1b --queries 128 --negatives 16 --chunk 16 \\
        --set trainer=gpu model.random_init=true                           # the papers' batch

Prints a table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import compose, peak_rss_mb, plain_step  # noqa: E402


def overrides(a, chunk=None) -> list[str]:
    out = [f"size={a.size}", "budget=steps", f"budget.steps={a.steps + 1}", f"trainer.global_batch={a.queries}",
           f"trainer.batch_size={a.queries}", f"data.n_negatives={a.negatives}", f"data.query_len={a.query_len}",
           f"data.doc_len={a.doc_len}", *a.set]
    return out + ([f"trainer.grad_cache_chunk={chunk}"] if chunk else [])


def batch(vocab: int, a, device):
    import torch
    g = torch.Generator().manual_seed(0)

    def tokens(n, length):
        ids = torch.randint(0, vocab, (n, length), generator=g)
        ones = torch.ones(n, length, dtype=torch.long)
        return {k: v.to(device) for k, v in {"input_ids": ids, "attention_mask": ones, "content_mask": ones}.items()}
    return {"q": tokens(a.queries, a.query_len), "d": tokens(a.queries * (1 + a.negatives), a.doc_len)}


def run(variant: str, a) -> dict:
    """``variant``: plain | lightning | full | cache. Returns step times and peak memory."""
    import torch

    from scaling import checkpoint
    from scaling.checks import make_plan
    from scaling.module import RetrieverModule
    cfg = compose(overrides(a, a.chunk if variant == "cache" else None))
    torch.manual_seed(0)
    backbone, head, loss = checkpoint.build(cfg)
    plan = make_plan(cfg, backbone.hf_config)
    module = RetrieverModule(backbone.body, head, loss, cfg.trainer.lr, cfg.trainer.warmup_ratio,
                             cfg.trainer.weight_decay, plan.max_steps, cfg.trainer.grad_cache_chunk)
    cuda = torch.cuda.is_available() and cfg.trainer.accelerator in ("gpu", "cuda", "auto")
    device = torch.device("cuda" if cuda else "cpu")
    data = batch(backbone.vocab_size, a, device)
    times: list[float] = []
    before = peak_rss_mb()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    if variant == "lightning":
        import lightning as L
        from lightning.pytorch.callbacks import Callback

        from scaling.callbacks import FlopLedger

        class Clock(Callback):
            def on_train_batch_start(self, *args):
                self.t = time.perf_counter()

            def on_train_batch_end(self, *args):
                if cuda:
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - self.t)
        loader = [{"q": {k: v.cpu() for k, v in data["q"].items()}, "d": {k: v.cpu() for k, v in data["d"].items()}}
                  ] * plan.max_steps
        trainer = L.Trainer(accelerator="gpu" if cuda else "cpu", devices=1, precision=cfg.trainer.precision,
                            max_steps=plan.max_steps, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, gradient_clip_val=cfg.trainer.grad_clip,
                            callbacks=[FlopLedger(plan), Clock()], num_sanity_val_steps=0)
        trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(loader, batch_size=None))
    else:
        module.to(device).train()
        opt_cfg = module.configure_optimizers()
        opt, sched = opt_cfg["optimizer"], opt_cfg["lr_scheduler"]["scheduler"]
        params = [p for p in module.parameters() if p.requires_grad]
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and "bf16" in cfg.trainer.precision)
        for _ in range(plan.max_steps):
            t = time.perf_counter()
            plain_step(module, data, opt, sched, params, cfg.trainer.grad_clip, autocast)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
    steady = times[1:]  # the first step warms up kernels and allocators
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else peak_rss_mb() - before
    step = statistics.median(steady)
    return {"variant": variant, "device": str(device), "step_s": step, "times": steady, "peak_MB": peak,
            "tokens_per_step": plan.tokens_per_step, "flops_per_step": plan.flops_per_step,
            "micro_batch": plan.micro_batch}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="smollm2-l4")
    ap.add_argument("--queries", type=int, default=8)
    ap.add_argument("--negatives", type=int, default=3, help="documents per query beyond the positive")
    ap.add_argument("--query-len", type=int, default=32)
    ap.add_argument("--doc-len", type=int, default=128)
    ap.add_argument("--chunk", type=int, default=4, help="trainer.grad_cache_chunk for part 2")
    ap.add_argument("--steps", type=int, default=5, help="timed steps (after one warm-up step)")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="the GPU's dense bf16 peak")
    ap.add_argument("--rounds", type=int, default=3, help="alternating plain/Lightning processes (CPU timings drift)")
    ap.add_argument("--set", nargs="*", default=[], help="more Hydra overrides (e.g. trainer=gpu)")
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.variant:
        print(json.dumps(run(a.variant, a)))
        return
    rows: dict[str, dict] = {}
    child = [f"--size={a.size}", f"--queries={a.queries}", f"--negatives={a.negatives}", f"--query-len={a.query_len}",
             f"--doc-len={a.doc_len}", f"--chunk={a.chunk}", f"--steps={a.steps}", "--set", *a.set]
    for variant in ["plain", "lightning"] * a.rounds + ["cache"]:
        out = subprocess.run([sys.executable, __file__, f"--variant={variant}", *child], capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"{variant}: {out.stderr[-2000:]}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        prev = rows.setdefault(variant, {**r, "all": []})
        prev["all"] += r["times"]
        prev["peak_MB"] = max(prev["peak_MB"], r["peak_MB"])
    for r in rows.values():  # the median over every round's steps
        r["step_s"] = statistics.median(r["all"])
        r["tokens_per_s"] = r["tokens_per_step"] / r["step_s"]
    plain, light, cache = rows["plain"], rows["lightning"], rows["cache"]
    dev = plain["device"]
    print(f"{a.size}, {a.queries} queries x (1 + {a.negatives}) docs, {a.query_len}/{a.doc_len} tokens, {dev}; "
          f"median step of {len(plain['all'])} (plain, Lightning: {a.rounds} alternating processes each) "
          f"and {len(cache['all'])} (grad cache), each process after one warm-up step")
    print(f"{'variant':<28}{'step s':>9}{'tokens/s':>10}{'peak MB':>10}" + (f"{'MFU':>8}" if dev != "cpu" else ""))
    labels = {"plain": "plain PyTorch loop (full)", "lightning": "Lightning Trainer (full)",
              "cache": f"plain, grad cache chunk {a.chunk}"}
    for k, r in rows.items():
        mfu = r["flops_per_step"] / r["step_s"] / (a.peak_tflops * 1e12)
        print(f"{labels[k]:<28}{r['step_s']:>9.3f}{r['tokens_per_s']:>10,.0f}{r['peak_MB']:>10,.0f}"
              + (f"{mfu:>8.1%}" if dev != "cpu" else ""))
    print(f"Lightning / plain step time: {light['step_s'] / plain['step_s']:.3f} (target <= 1.05)")
    peak = f"{cache['peak_MB'] / plain['peak_MB']:.3f}" if plain["peak_MB"] > 0 else "n/a (no growth measured)"
    print(f"grad cache / full: step time {cache['step_s'] / plain['step_s']:.3f}, peak memory {peak}")


if __name__ == "__main__":
    main()
