"""The benchmarks run end to end at toy sizes and print their ratios (their figures are machine
facts, read in the README; nothing here times anything)."""

import subprocess
import sys

import pytest

from conftest import ROOT

BENCH = ROOT / "benchmarks"


def run(script, *args, timeout=600):
    out = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                         timeout=timeout, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.mark.slow
def test_train_step_benchmark_prints_its_ratios(tmp_path):
    out = run("train_step.py", "--size=tiny", "--queries=4", "--negatives=1", "--doc-len=16", "--query-len=8",
              "--chunk=2", "--steps=2", "--rounds=1", "--set", f"cache_dir={tmp_path}")
    assert "Lightning / plain step time:" in out and "grad cache / full: step time" in out
    assert "plain PyTorch loop (full)" in out and "Lightning Trainer (full)" in out


@pytest.mark.slow
def test_sparse_head_benchmark_gives_the_same_gradient():
    out = run("sparse_head_memory.py", "--docs=2", "--len=16", "--vocab=2000", "--hidden=32", "--chunks=8,4")
    rows = [line.split() for line in out.splitlines() if line.startswith(("kept", "checkpointed"))]
    assert [r[0] for r in rows] == ["kept", "checkpointed", "checkpointed"] and all(r[-1] == "True" for r in rows)


@pytest.mark.slow
def test_index_scale_benchmark_runs_both_exporters():
    out = run("index_scale.py", "--sizes=1000,2000", "--dense-sizes=2000", "--dim=64", "--pq-m=8", "--queries=20")
    assert "sparse (Lucene impact)" in out and "dense (FAISS)" in out and "extrapolated to 8,841,823" in out
    flat = [line for line in out.splitlines() if " flat " in f" {line} "]
    assert flat and flat[0].split()[-1] == "1.000"  # exact search recalls itself
