"""Exact search equals a brute-force sort; ir_measures numbers equal pytrec_eval's."""

from pathlib import Path

import pytest
import pytrec_eval
import torch

from scaling.evaluation import format_table, score_run
from scaling.index.search import exact_search, write_trec_run


def test_exact_search_is_brute_force():
    torch.manual_seed(0)
    q, d = torch.randn(7, 8), torch.randn(50, 8)
    qids, docids = [f"q{i}" for i in range(7)], [f"d{i}" for i in range(50)]
    run = exact_search(q, d, qids, docids, k=10, chunk=3)
    for i, qid in enumerate(qids):
        scores = [(float(q[i] @ d[j]), docids[j]) for j in range(50)]
        top = [docid for _, docid in sorted(scores, reverse=True)[:10]]
        assert sorted(run[qid], key=run[qid].get, reverse=True) == top


def test_metrics_equal_pytrec_eval(tmp_path):
    torch.manual_seed(1)
    qrels = {f"q{i}": {f"d{j}": (j % 3) for j in range(i, i + 6)} for i in range(5)}
    run = {f"q{i}": {f"d{j}": float(torch.rand(1)) for j in range(30)} for i in range(4)}
    ours = score_run(run, qrels)
    ev = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recip_rank", "recall.100", "recall.1000"})
    full = {q: run.get(q, {"__none__": 0.0}) for q in qrels}
    per_q = ev.evaluate(full)
    # RR@10: pytrec's recip_rank has no cut-off; cut it by hand from the ranking.
    def rr10(qid):
        ranked = sorted(run.get(qid, {}).items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        return next((1 / r for r, (d, _) in enumerate(ranked, 1) if qrels[qid].get(d, 0) > 0), 0.0)
    mean = lambda key: sum(per_q[q][key] for q in qrels) / len(qrels)
    assert ours["nDCG@10"] == pytest.approx(mean("ndcg_cut_10"), abs=1e-6)
    assert ours["R@100"] == pytest.approx(mean("recall_100"), abs=1e-6)
    assert ours["R@1000"] == pytest.approx(mean("recall_1000"), abs=1e-6)
    assert ours["RR@10"] == pytest.approx(sum(rr10(q) for q in qrels) / len(qrels), abs=1e-6)
    write_trec_run(run, tmp_path / "r.trec")
    lines = (tmp_path / "r.trec").read_text().splitlines()
    assert len(lines) == 120 and lines[0].split()[3] == "1"


def test_table_lists_every_column():
    t = format_table({"a": {"x/test": {"nDCG@10": 0.1}}, "b": {"x/test": {"nDCG@10": 0.25}}})
    assert "0.1000" in t and "0.2500" in t and t.splitlines()[0].split()[-2:] == ["a", "b"]


def test_searcher_child_ends_when_its_parent_is_killed(tmp_path):
    """A killed run must not leave its searcher process (and JVM) running."""
    import os
    import signal
    import subprocess
    import sys
    import time
    pid_file = tmp_path / "child.pid"
    (tmp_path / "child.py").write_text(
        "import os, time\nfrom scaling.index.searcher import _exit_with_parent\n_exit_with_parent(0.1)\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n")
    (tmp_path / "parent.py").write_text(
        f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, {str(tmp_path / 'child.py')!r}])\n"
        "time.sleep(60)\n")
    root = Path(__file__).resolve().parents[1]
    parent = subprocess.Popen([sys.executable, str(tmp_path / "parent.py")], cwd=str(root),
                              env={**os.environ, "PYTHONPATH": str(root)})
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.05)
    child = int(pid_file.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    status = Path(f"/proc/{child}/status")
    for _ in range(100):
        try:
            if "State:\tZ" in status.read_text():  # exited, not yet reaped by init
                return
        except FileNotFoundError:
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("the searcher child outlived its parent")
