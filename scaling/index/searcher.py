"""Timed Lucene searches in a child process that holds the JVM (``python -m scaling.index.searcher``).

The JVM uses SIGSEGV internally; embedded in a process that also runs torch, Lightning or
pytest's faulthandler, those signals crash Python. So the parent never starts a JVM: it writes
the queries to a JSON file, this module (which imports nothing but the standard library and
pyjnius) searches them one at a time, timing each, and writes {"run", "latencies"} back.

Request: {"kind": "bm25" | "impact", "index": DIR, "k": int, "k1": float, "b": float,
          "queries": {qid: text (bm25) | {token: int} (impact)}}
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def search(request: dict) -> tuple[dict[str, dict[str, float]], list[float]]:
    """Run ``request`` in a child process; returns (run, seconds per query)."""
    with tempfile.TemporaryDirectory(prefix="scaling-searcher-") as tmp:
        req, out = Path(tmp) / "request.json", Path(tmp) / "result.json"
        req.write_text(json.dumps(request))
        proc = subprocess.run([sys.executable, "-m", "scaling.index.searcher", str(req), str(out)],
                              capture_output=True, text=True, cwd=str(Path(__file__).resolve().parents[2]))
        if proc.returncode != 0 or not out.exists():
            from scaling.index.lucene import LuceneError
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise LuceneError(f"{request['kind']} search of {request['index']} failed:\n{tail}")
        result = json.loads(out.read_text())
    return result["run"], result["latencies"]


def _serve(request: dict) -> dict:
    from scaling.index.lucene import jvm_class
    kind, k = request["kind"], int(request["k"])
    if kind == "impact":
        # a query may hold more terms than Lucene's default of 1024 clauses (unpruned LLM vectors)
        jvm_class("org.apache.lucene.search.IndexSearcher").setMaxClauseCount(1 << 20)
        searcher = jvm_class("io.anserini.search.SimpleImpactSearcher")(request["index"])
        jmap, jint = jvm_class("java.util.HashMap"), jvm_class("java.lang.Integer")
    elif kind == "bm25":
        searcher = jvm_class("io.anserini.search.SimpleSearcher")(request["index"])
        searcher.set_bm25(float(request["k1"]), float(request["b"]))
    else:
        raise ValueError(f"unknown search kind {kind!r}")
    run, lat = {}, []
    try:
        for qid, q in request["queries"].items():
            if kind == "impact":
                query = jmap()
                for tok, w in q.items():
                    if w > 0:
                        query.put(tok, jint(int(w)))
            else:
                query = q
            t = time.perf_counter()
            hits = searcher.search(query, k) if q else []
            lat.append(time.perf_counter() - t)
            run[qid] = {h.docid: float(h.score) for h in hits}
    finally:
        searcher.close()
    return {"run": run, "latencies": lat}


def _exit_with_parent(poll_s: float = 2.0) -> None:
    """End this process when the one that started it dies (a killed run must not leave a JVM
    searching on, holding memory and cores)."""
    import os
    import threading
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)
    threading.Thread(target=watch, daemon=True).start()


if __name__ == "__main__":
    from scaling.io import write_json_atomic
    _exit_with_parent()
    write_json_atomic(Path(sys.argv[2]), _serve(json.loads(Path(sys.argv[1]).read_text())))
