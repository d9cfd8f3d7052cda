"""A packaged bi-encoder (``minilm``: all-MiniLM-L6-v2, ``mpnet``: all-mpnet-base-v2) as a teacher
component and a first-stage system for candidate pools.

Both read mean-pooled, normalised embeddings, as their authors pool them, through the same
backbone and head code as every model here (``scaling.evaluation.systems.bi_encoder_config``), so
a pair's score is the cosine of its query's and document's vectors: any pair can be scored once
both are encoded, which is what lets a bi-encoder teach over the whole batch.

What goes to disk, under ``folder`` (``<cache>/prepared/<dataset>/encoders/<name>-<max_len>/``):
``queries.npy`` / ``corpus.npy`` (float32, one row per text) and ``queries.ids.json`` /
``corpus.ids.json`` (the row order), each written atomically, so every query and document of a
dataset is encoded once and then read by every teacher, pool and report card.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from scaling.io import write_atomic


class BiEncoder:
    def __init__(self, name: str, cfg, dataset, folder: Path, max_len: int, log=print):
        self.name, self.cfg, self.dataset, self.max_len, self.log = name, cfg, dataset, max_len, log
        self.folder = Path(folder)
        self._model = None
        self._rows: dict[str, tuple[dict[str, int], np.ndarray]] = {}

    def _encoder(self):
        if self._model is None:
            from scaling.checkpoint import inference_model
            from scaling.data.collate import tokenizers_for
            from scaling.evaluation.systems import bi_encoder_config
            from scaling.index.encode import pick_device
            rcfg = bi_encoder_config(self.cfg, self.name)
            module, tokenizer = inference_model(rcfg)
            device = pick_device(self.cfg.eval.device)
            module.eval().to(device)
            self._model = (module, device, *tokenizers_for(tokenizer, rcfg.model, self.max_len, self.max_len))
        return self._model

    def vectors(self, role: str) -> tuple[dict[str, int], np.ndarray]:
        """({id: row}, (N, dim) unit vectors) of every query (``role="queries"``) or document."""
        if role in self._rows:
            return self._rows[role]
        texts = self.dataset.queries if role == "queries" else self.dataset.corpus
        ids_path, vec_path = self.folder / f"{role}.ids.json", self.folder / f"{role}.npy"
        if ids_path.exists() and vec_path.exists() and json.loads(ids_path.read_text()) == list(texts):
            rows = np.load(vec_path)
        else:
            from scaling.index import encode
            module, device, q_tok, d_tok = self._encoder()
            fn = encode.encoder_fn(module, "query" if role == "queries" else "doc", device)
            rows = encode.encode_texts(fn, q_tok if role == "queries" else d_tok, list(texts.values()),
                                       64, f"{self.name} {role}")
            self.folder.mkdir(parents=True, exist_ok=True)
            write_atomic(vec_path, lambda f: np.save(f, rows), binary=True)
            write_atomic(ids_path, lambda f: f.write(json.dumps(list(texts))))
        self._rows[role] = ({k: i for i, k in enumerate(texts)}, rows)
        return self._rows[role]

    def score(self, pairs: list[tuple[str, str]]) -> list[float]:
        """Cosine of each (qid, docid) pair."""
        (qrow, q), (drow, d) = self.vectors("queries"), self.vectors("corpus")
        qi = np.fromiter((qrow[a] for a, _ in pairs), dtype=np.int64, count=len(pairs))
        di = np.fromiter((drow[b] for _, b in pairs), dtype=np.int64, count=len(pairs))
        return np.einsum("ij,ij->i", q[qi], d[di]).astype(float).tolist()

    def matrix(self, qids: list[str], docids: list[str]) -> np.ndarray:
        """(len(qids), len(docids)) cosines: every query against every document."""
        (qrow, q), (drow, d) = self.vectors("queries"), self.vectors("corpus")
        return q[[qrow[a] for a in qids]] @ d[[drow[b] for b in docids]].T

    def search(self, qids: list[str], k: int) -> dict[str, dict[str, float]]:
        """Each query's top-``k`` documents of the whole corpus: {qid: {docid: cosine}}."""
        (qrow, q), (_, d) = self.vectors("queries"), self.vectors("corpus")
        docids = list(self.dataset.corpus)
        out = {}
        for s in range(0, len(qids), 256):
            block = qids[s:s + 256]
            sims = q[[qrow[a] for a in block]] @ d.T  # (b, N)
            top = np.argpartition(-sims, min(k, sims.shape[1] - 1), axis=1)[:, :k]
            for row, qid in enumerate(block):
                out[qid] = {docids[j]: float(sims[row, j]) for j in top[row]}
        return out
