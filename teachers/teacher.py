"""A configured teacher: its components, scored for any (query, document) pairs, and their fusion.

``teacher.fusion`` weighs four components (scaling.config.FusionConfig): the teacher's
cross-encoder (``ce``), Lucene BM25, and the packaged bi-encoders (``minilm``, ``mpnet``). Each is
built only when its weight is non-zero and only when first asked for scores, so a teacher
without a cross-encoder never loads (or fine-tunes) one. ``recipes/prepare.py`` scores the
training candidates and the report card's pools through ``score``; the in-batch scorer
(``scorer``) scores every query of a training batch against every document of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from teachers.fusion import Scores, fuse, perturb

Pairs = list[tuple[str, str]]


def encoders_dir(cfg) -> Path:
    from scaling.prepare import paths
    return paths(cfg).root / "encoders"


class Teacher:
    def __init__(self, cfg, dataset, cross_encoder: Callable[[], tuple] | None = None, log=print):
        """``cross_encoder``: returns (model, tokenizer) when the ``ce`` component is first used
        (scaling.prepare.load_teacher: a given model, or one fine-tuned here once)."""
        self.cfg, self.dataset, self.log = cfg, dataset, log
        self.weights = cfg.teacher.fusion.active()
        self._load_ce, self._ce = cross_encoder, None
        self._bi: dict = {}
        self._bm25: dict[str, dict[str, float]] = {}
        self.pairs_scored = {c: 0 for c in self.weights}
        """Pairs each component scored (what the teacher cost, reported, never charged)."""

    def cross_encoder(self) -> tuple:
        """(model, tokenizer) of the ``ce`` component, loaded (or fine-tuned) on first use."""
        if self._ce is None:
            self._ce = self._load_ce()
        return self._ce

    def bi_encoder(self, name: str):
        if name not in self._bi:
            from teachers.biencoder import BiEncoder
            m = self.cfg.teacher.max_len
            self._bi[name] = BiEncoder(name, self.cfg, self.dataset, encoders_dir(self.cfg) / f"{name}-{m}", m,
                                       self.log)
        return self._bi[name]

    def bm25_run(self, qids) -> dict[str, dict[str, float]]:
        """BM25's top ``data.bm25.hits`` for each query (searched once per query)."""
        missing = sorted(set(qids) - set(self._bm25))
        if missing:
            from scaling.index import bm25
            from scaling.prepare import bm25_index
            index = bm25_index(self.cfg, self.dataset, log=lambda m: None)
            self._bm25.update(bm25.search(index, {q: self.dataset.queries[q] for q in missing}, self.cfg.data.bm25))
            for q in missing:
                self._bm25.setdefault(q, {})
        return self._bm25

    def component(self, name: str, pairs: Pairs) -> list[float]:
        """One component's raw scores for ``pairs``, in order."""
        self.pairs_scored[name] = self.pairs_scored.get(name, 0) + len(pairs)
        if name == "ce":
            from teachers.crossencoder import score_pairs
            model, tok = self.cross_encoder()
            t = self.cfg.teacher
            return score_pairs(model, tok, [(self.dataset.queries[q], self.dataset.corpus[d]) for q, d in pairs],
                               t.max_len, t.batch_size, desc="cross-encoder scoring")
        if name == "bm25":
            run = self.bm25_run({q for q, _ in pairs})
            floor = {q: min(docs.values()) if docs else 0.0 for q, docs in run.items()}
            return [run[q].get(d, floor[q]) for q, d in pairs]
        return self.bi_encoder(name).score(pairs)

    def score(self, pairs: Pairs, given: dict[str, Scores] | None = None) -> Scores:
        """The fused (and, with ``teacher.noise``, perturbed) scores of ``pairs``; ``given`` holds
        components already scored for exactly these pairs (the merged cross-encoder shards)."""
        given = given or {}
        parts = {}
        for name in self.weights:
            if name in given:
                parts[name] = given[name]
                continue
            parts[name] = {}
            for (q, d), s in zip(pairs, self.component(name, pairs)):
                parts[name].setdefault(q, {})[d] = s
        t = self.cfg.teacher
        return perturb(fuse(parts, self.weights, t.standardise), t.noise, t.train.seed)

    def warm(self, qids) -> None:
        """Search BM25 for every query at once (one Lucene call, not one a batch) and encode the
        bi-encoders' queries and corpus, before training asks for batches."""
        if "bm25" in self.weights:
            self.bm25_run(qids)
        for name in self.weights:
            if name in ("minilm", "mpnet"):
                self.bi_encoder(name).vectors("queries")
                self.bi_encoder(name).vectors("corpus")

    def scorer(self) -> Callable[[list[str], list[str]], torch.Tensor]:
        """(qids, docids) -> (len(qids), len(docids)) teacher scores of every query against every
        document, fused per query over that row: the in-batch distillation target."""
        def score(qids: list[str], docids: list[str]) -> torch.Tensor:
            pairs = [(q, d) for q in qids for d in dict.fromkeys(docids)]
            fused = self.score(pairs)
            return torch.tensor([[fused[q][d] for d in docids] for q in qids], dtype=torch.float32)
        return score
