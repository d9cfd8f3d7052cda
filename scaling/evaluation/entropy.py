"""Contrastive entropy: a smooth measure of a retriever for scaling fits (Fang et al. 2024).

nDCG@10 moves in steps (a query's positive crosses rank 10 or it does not) and saturates, so a
power law fitted through it is noisy. Fang et al. fit instead the contrastive entropy: for each
test query, minus the log-probability the model gives its positive among a fixed candidate set,

    CE(q) = -log( exp(s(q, d+) / T) / sum over d in {d+, d-_1..d-_K} of exp(s(q, d) / T) )

averaged over the queries. It is continuous in the model's scores, so a slightly better model
scores slightly lower. Here:

- the candidates of a query are its positive (its highest-graded relevant document; ties: the
  smallest docid) and ``K`` negatives drawn uniformly from the corpus's documents not judged
  relevant to it, seeded by (seed, qid): no system draws them, so no system is favoured by how the
  set was made. They are drawn once per (dataset, split, K, seed) and saved (``candidates``), the
  same for every run;
- ``s`` is the dot product of the representations the run's index serves (cosine for a normalised
  dense head, the sparse vectors' product for a sparse one) and ``T`` the run's
  ``paradigm.temperature``, the scale its training loss read the scores at (0.05 for the packaged
  bi-encoders, as sentence-transformers trains them; 1 for SPLADE);
- a query without a relevant document, or whose positive is not in the corpus, is left out.

What goes to disk: ``<cache_dir>/prepared/<dataset>/entropy/<split>-k<K>-seed<S>.json``
({qid: [positive, negatives...]}), written atomically when first needed.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from scaling.io import write_json_atomic


def positive(judged: dict[str, int], corpus) -> str | None:
    """The highest-graded relevant document in the corpus (ties: the smallest docid), or None."""
    relevant = sorted((-g, d) for d, g in judged.items() if g > 0 and d in corpus)
    return relevant[0][1] if relevant else None


def draw(qrels: dict[str, dict[str, int]], docids: list[str], k: int, seed: int = 0) -> dict[str, list[str]]:
    """{qid: [positive, k negatives]}: negatives uniform over the documents not judged relevant to
    the query, from a generator seeded by (seed, qid), so a query's set does not depend on the others."""
    corpus = set(docids)
    ordered = sorted(docids)
    out = {}
    for qid in sorted(qrels):
        pos = positive(qrels[qid], corpus)
        if pos is None:
            continue
        relevant = {d for d, g in qrels[qid].items() if g > 0}
        rng = random.Random(f"{seed}/{qid}")
        # k + |relevant| distinct draws hold k non-relevant ones: uniform over the pool, without
        # building the pool (a copy of the corpus per query)
        drawn = rng.sample(ordered, min(len(ordered), k + len(relevant & corpus)))
        out[qid] = [pos] + [d for d in drawn if d not in relevant][:k]
    return out


def candidates(path: Path, qrels: dict[str, dict[str, int]], docids: list[str], k: int,
               seed: int = 0) -> dict[str, list[str]]:
    """The saved candidate sets at ``path``, drawn and written (atomically) on first use."""
    path = Path(path)
    if path.exists():
        return json.loads(path.read_text())["candidates"]
    sets = draw(qrels, docids, k, seed)
    write_json_atomic(path, {"k": k, "seed": seed, "queries": len(sets), "candidates": sets})
    return sets


def candidates_path(cache_dir, dataset_key: str, split: str, k: int, seed: int) -> Path:
    return Path(cache_dir).expanduser() / "prepared" / dataset_key / "entropy" / f"{split}-k{k}-seed{seed}.json"


def entropy(queries, qids: list[str], blocks, docids: list[str], sets: dict[str, list[str]],
            temperature: float) -> tuple[float, dict[str, float]]:
    """(mean CE, {qid: CE}) of ``queries`` (rows, one per qid: a numpy array or a CSR matrix)
    against ``sets``, the documents' rows read from ``blocks()`` (an iterator over the corpus's
    row blocks, in ``docids`` order). Only the candidates' rows are kept."""
    position = {d: i for i, d in enumerate(docids)}
    asked = [q for q in qids if q in sets]
    needed = sorted({position[d] for q in asked for d in sets[q] if d in position})
    column = {row: j for j, row in enumerate(needed)}
    wanted = np.array(needed, dtype=np.int64)
    kept, start = [], 0
    for block in blocks():
        n = block.shape[0]
        lo, hi = np.searchsorted(wanted, [start, start + n])  # the sorted rows inside this block
        if hi > lo:
            kept.append(block[wanted[lo:hi] - start])
        start += n
    if not kept:
        return float("nan"), {}
    docs = sp.vstack(kept, format="csr") if sp.issparse(kept[0]) else np.concatenate(kept)
    row_of = {q: i for i, q in enumerate(qids)}
    out = {}
    for qid in asked:
        cols = [column[position[d]] for d in sets[qid] if d in position]
        q = queries[row_of[qid]]
        s = q @ docs[cols].T  # (1, 1 + K) or (1 + K,): the candidates' scores, positive first
        s = np.asarray(s.toarray() if sp.issparse(s) else s, dtype=np.float64).ravel() / temperature
        top = s.max()
        out[qid] = float(top + np.log(np.exp(s - top).sum()) - s[0])
    return (float(np.mean(list(out.values()))) if out else float("nan")), out
