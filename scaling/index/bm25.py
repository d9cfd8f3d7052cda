"""BM25 retrieval with Lucene: the first-stage ranker, the source of hard negatives, a baseline.

Anserini's defaults (English analyzer with Porter stemming, k1=0.9, b=0.4). For code,
``split_identifiers`` adds the parts of every identifier (``json_loads`` -> ``json loads``,
``readLine`` -> ``read line``) to the text before Lucene sees it: the analyzer keeps
``json_loads`` whole, so a query saying "load JSON" would never match it.

What goes to disk: ``<dir>/index`` (a Lucene index; built once, atomically) and
``<dir>/docs/`` is only a temporary staging folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from tqdm import tqdm

from scaling.index import lucene

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def identifier_parts(token: str) -> list[str]:
    """``get_HTTPResponse2`` -> ``['get', 'HTTP', 'Response', '2']``."""
    return [p for piece in token.split("_") for p in _CAMEL.findall(piece)]


def split_identifiers(text: str) -> str:
    """Text plus the parts of each compound identifier (the originals stay)."""
    extra = []
    for tok in _IDENT.findall(text):
        parts = identifier_parts(tok)
        if len(parts) > 1:
            extra.extend(parts)
    return text if not extra else f"{text}\n{' '.join(extra)}"


def _prepare(text: str, cfg) -> str:
    return split_identifiers(text) if cfg.split_identifiers else text


def build_index(corpus: dict[str, str], index_dir: Path, cfg, threads: int = 2) -> Path:
    """Index ``corpus`` (id -> text) for BM25 under ``index_dir`` (skipped when it exists)."""
    records = ({"id": d, "contents": _prepare(t, cfg)}
               for d, t in tqdm(corpus.items(), desc="bm25 staging", unit="doc", disable=len(corpus) < 50_000))
    return lucene.index_records(records, index_dir, threads=threads)


def search(index_dir: Path, queries: dict[str, str], cfg, hits: int | None = None,
           threads: int = 2) -> dict[str, dict[str, float]]:
    """BM25 top-``hits`` (default ``cfg.hits``) for every query: {qid: {docid: score}}."""
    texts = {q: _prepare(t, cfg) for q, t in queries.items()}
    return lucene.search(index_dir, texts, hits or cfg.hits,
                         ["-bm25", "-bm25.k1", cfg.k1, "-bm25.b", cfg.b], threads=threads)
