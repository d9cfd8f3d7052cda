"""Candidate pools: each training query's negatives from one first-stage system or a mix.

A pool names systems joined by ``+`` (``bm25``, ``minilm``, ``mpnet``; ``data.negatives``,
``teacher.pool``). Each system's ranked list loses the query's judged documents; a mix interleaves
the lists by rank (the first of each system, then the second of each, ...) without repeats, so
``bm25+minilm`` holds lexical and semantic near-misses in equal measure at every depth.

Where the lists come from (``recipes/prepare.py`` writes them; reading them needs no model):
``bm25``, the prepared groups (``bm25/<split>.groups.jsonl``: BM25's candidates, topped up with
random documents when BM25 finds too few); a bi-encoder, its run over the whole corpus
(``pools/<name>/<split>.run``, TREC format, top ``data.bm25.hits``).
"""

from __future__ import annotations

from pathlib import Path


def systems(pool: str) -> list[str]:
    return pool.split("+")


def interleave(lists: list[list[str]], exclude=(), depth: int | None = None) -> list[str]:
    """The lists merged by rank, without repeats or ``exclude``d ids, cut to ``depth``."""
    out, seen = [], set(exclude)
    for rank in range(max((len(x) for x in lists), default=0)):
        for ranked in lists:
            if rank < len(ranked) and ranked[rank] not in seen:
                seen.add(ranked[rank])
                out.append(ranked[rank])
    return out[:depth] if depth is not None else out


def run_path(root: Path, system: str, split: str) -> Path:
    """A bi-encoder's run of ``split`` under a dataset's prepared folder."""
    return Path(root) / "pools" / system / f"{split}.run"


def ranked(run: dict[str, dict[str, float]]) -> dict[str, list[str]]:
    """{qid: docids best first} of a run (ties by docid, so every reader gets one order)."""
    return {q: sorted(docs, key=lambda d: (-docs[d], d)) for q, docs in run.items()}


def read(root: Path, pool: str, split: str, qrels: dict[str, dict[str, int]], depth: int,
         groups_path: Path, hint: str) -> dict[str, list[str]]:
    """{qid: interleaved negatives, first ``depth``} for ``split``'s queries; a missing prepared
    file is a FileNotFoundError saying which prepare step makes it (``hint``: the command)."""
    from scaling.data.formats import read_groups
    from scaling.index.lucene import read_trec_run
    lists: list[dict[str, list[str]]] = []
    for system in systems(pool):
        if system == "bm25":
            if not Path(groups_path).exists():
                raise FileNotFoundError(f"the {pool} pool needs the prepared BM25 groups {groups_path}: run "
                                        f"`{hint.format(step='bm25')}`")
            lists.append({q: g["negatives"] for q, g in read_groups(groups_path).items()})
        else:
            path = run_path(root, system, split)
            if not path.exists():
                raise FileNotFoundError(f"the {pool} pool needs {system}'s run {path}: run "
                                        f"`{hint.format(step='bm25,pools')}`")
            lists.append(ranked(read_trec_run(path)))
    return {q: interleave([x.get(q, []) for x in lists], qrels.get(q, {}), depth)
            for q in set().union(*lists)}
