"""Fusing teacher components into one score per pair, and corrupting a teacher on purpose.

Scores of different components live on different scales (BM25 5-30, cosines 0-1, cross-encoder
logits -10..10), so an ensemble standardises each component per query over the documents
scored for that query (z-scores) before the weighted sum. The fused scores therefore depend on
the set of documents a query is scored against (its training candidates, the report card's
pool, a batch's documents); their ranking within that set is what distillation copies. A
single component is passed through unchanged, so a one-model teacher's file holds its raw scores,
unless ``teacher.standardise`` asks for its z-scores too: a KL at one temperature reads raw
scores by their scale, so cosines (spread ~0.1) teach an almost flat distribution and BM25 (spread
of several units) a sharp one; standardised, teachers differ in their ranking alone.
"""

from __future__ import annotations

import hashlib
import math

Scores = dict[str, dict[str, float]]


def _standardised(docs: dict[str, float]) -> dict[str, float]:
    values = list(docs.values())
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return {d: (v - mean) / sd if sd > 0 else 0.0 for d, v in docs.items()}


def fuse(components: dict[str, Scores], weights: dict[str, float], standardise: bool = False) -> Scores:
    """sum_c w_c z_c(q, d) over components scoring the same pairs; one component: its scores, or
    its z-scores with ``standardise``."""
    names = list(weights)
    if len(names) == 1 and not standardise:
        return {q: dict(docs) for q, docs in components[names[0]].items()}
    out: Scores = {}
    for q, docs in components[names[0]].items():
        z = {c: _standardised(components[c][q]) for c in names}
        out[q] = {d: sum(weights[c] * z[c][d] for c in names) for d in docs}
    return out


def _normal(key: str) -> float:
    """A standard normal draw determined by ``key`` (Box-Muller on two hashed uniforms)."""
    h = hashlib.sha256(key.encode()).digest()
    u1 = (int.from_bytes(h[:8], "big") + 1) / 2 ** 64
    u2 = int.from_bytes(h[8:16], "big") / 2 ** 64
    return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)


def perturb(scores: Scores, noise: float, seed: int = 0) -> Scores:
    """Each score plus ``noise`` x its query's score spread x a normal draw seeded by (seed, qid,
    docid): the same pair gets the same noise in every file, shard and run."""
    if noise == 0:
        return scores
    out: Scores = {}
    for q, docs in scores.items():
        values = list(docs.values())
        mean = sum(values) / len(values)
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) or 1.0
        out[q] = {d: v + noise * sd * _normal(f"{seed}\t{q}\t{d}") for d, v in docs.items()}
    return out
