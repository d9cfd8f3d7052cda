"""benchmarks/gpu_check.py works before a GPU is lent: its toy run on the CPU gives every row, and
its figures agree with an independent recomputation (tokens/s from the batch's shape, MFU from
scaling/budget.py's FLOPs); a failing row sets the exit status, an OOM does not."""

import importlib.util
import json
import math
import statistics
import subprocess
import sys

import pytest

from conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
Q, NEG, LQ, LD, CHUNK, STEPS, PEAK = 4, 2, 8, 16, 2, 2, 2.0  # the toy sizes the run below names


def gpu_check():
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def expected_flops(paradigm: str) -> float:
    """FLOPs per step from scaling.budget directly: tiny's architecture, LoRA r=4 (recipes/conf/size/
    tiny.yaml) on the default seven projections; the full-vocabulary sparse head adds its LM-head
    projection (2 x hidden x vocab per token), pooling adds nothing."""
    from scaling import budget, sizes
    from scaling.config import LoraConfig
    arch = sizes.arch_for("tiny")
    head = {"dense": 0.0, "sparse_zeng": 2.0 * arch.hidden * arch.vocab}[paradigm]
    return budget.plan(arch, LQ, LD, 1 + NEG, Q, 4, LoraConfig().targets, head, steps=1).flops_per_step


@pytest.mark.slow
def test_toy_run_gives_every_row_with_consistent_figures(tmp_path):
    out = tmp_path / "gpu_check.json"
    args = ["--toy", f"--queries={Q}", f"--negatives={NEG}", f"--query-len={LQ}", f"--doc-len={LD}",
            f"--chunk={CHUNK}", f"--steps={STEPS}", f"--peak-tflops={PEAK}", "--out", str(out),
            "--set", f"cache_dir={tmp_path / 'cache'}"]
    run = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["complete"] and report["failed"] == [] and report["peak_tflops"] == PEAK
    rows = report["rows"]
    table = [line for line in run.stdout.splitlines() if line.startswith("| ")]
    for r in rows:  # every row is printed in the table
        assert any(line.startswith(f"| {r['check']} |") for line in table), r["check"]

    train = {(r["paradigm"], r["grad_cache_chunk"]): r for r in rows if r["kind"] == "train"}
    assert set(train) == {(p, c) for p in ("dense", "sparse_zeng") for c in (None, CHUNK)}
    (fit,) = [r for r in rows if r["kind"] == "fit"]
    assert fit["result"] == "fits" and fit["gradient_checkpointing"] and fit["grad_cache_chunk"] == CHUNK
    tokens = Q * LQ + Q * (1 + NEG) * LD
    for r in [*train.values(), fit]:
        assert r["status"] == "ok", r
        assert all(t > 0 and math.isfinite(t) for t in r["times"])
        assert len(r["times"]) == (STEPS if r["kind"] == "train" else 1)
        assert r["step_s"] == pytest.approx(statistics.median(r["times"]), rel=1e-12)
        assert r["tokens_per_step"] == tokens
        assert r["tokens_per_s"] == pytest.approx(tokens / r["step_s"], rel=1e-9)
        assert r["flops_per_step"] == pytest.approx(expected_flops(r["paradigm"]), rel=1e-12)
        assert r["mfu"] == pytest.approx(r["flops_per_step"] / r["step_s"] / (PEAK * 1e12), rel=1e-9)
        assert r["hfu"] == pytest.approx((r["flops_per_step"] + r["recompute_flops_per_step"]) / r["step_s"]
                                         / (PEAK * 1e12), rel=1e-9)
        assert r["peak_mem_MiB"] > 0 and math.isfinite(r["peak_mem_MiB"])
        assert r["attn"] in ("sdpa", "eager", "flash_attention_2")
    # gradient caching re-encodes every chunk: one more forward, reported beside the model FLOPs
    assert train[("dense", CHUNK)]["recompute_flops_per_step"] > train[("dense", None)]["recompute_flops_per_step"]
    assert fit["recompute_flops_per_step"] > train[("sparse_zeng", CHUNK)]["recompute_flops_per_step"]  # + checkpointing

    (attn,) = [r for r in rows if r["kind"] == "attention"]
    assert attn["status"] == "ok" and attn["attn"] == [train[("dense", None)]["attn"]]
    assert "flash_attn" in attn["flash_attn"]

    (fa,) = [r for r in rows if r["kind"] == "faiss"]
    assert fa["status"] == "ok" and (fa["n"], fa["dim"], fa["k"]) == (2000, 64, 10)
    assert fa["cpu_build_s"] > 0 and fa["cpu_search_s"] > 0 and fa["ref_search_s"] > 0
    assert 0.9 <= fa["agree_at_k"] <= 1 and 0 <= fa["identical_frac"] <= 1
    import faiss
    if getattr(faiss, "get_num_gpus", lambda: 0)() == 0:
        assert not fa["faiss_gpu"] and "faiss-gpu: not available (faiss CPU build)" in fa["detail"]


def test_a_failed_row_sets_the_exit_status_and_an_oom_does_not(tmp_path, monkeypatch, capsys):
    import torch
    mod = gpu_check()
    out = tmp_path / "rows.json"

    def fails(*_):
        raise ValueError("broken")
    monkeypatch.setattr(mod, "measure_faiss", fails)
    assert mod.main(["--toy", "--only", "faiss", "--out", str(out)]) == 1
    (row,) = json.loads(out.read_text())["rows"]
    assert row["status"] == "error" and "broken" in row["error"]
    assert "error: ValueError: broken" in capsys.readouterr().out

    def oom(*_):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 17.50 GiB. GPU 0 ...")
    monkeypatch.setattr(mod, "measure_faiss", oom)
    assert mod.main(["--toy", "--only", "faiss", "--out", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["status"] == "oom" and row["detail"] == "OOM: Tried to allocate 17.50 GiB"

    assert mod.main(["--toy", "--only", "faiss", "--time-limit", "-1", "--out", str(out)]) == 1
    assert json.loads(out.read_text())["rows"][0]["status"] == "skipped"


def test_the_peak_is_found_from_the_device_name():
    peak_for = gpu_check().peak_for
    assert peak_for("NVIDIA H100 80GB HBM3") == 989.0 and peak_for("NVIDIA H200") == 989.0
    assert peak_for("NVIDIA H100 PCIe") == 756.0 and peak_for("Tesla T4") is None
