"""Split (query, document) pairs across jobs, write each shard atomically, merge with a coverage check.

A shard is ``pairs[i::n]`` of the pair list in its canonical order (sorted by qid, docid), so
every job computes the same split from the same inputs without talking to the others. Shard
files are ``<dir>/scores.<i>-of-<n>.tsv`` in the teacher-score TSV contract; a finished shard
file exists only after its rename, so a re-run skips exactly the finished ones.
"""

from __future__ import annotations

from pathlib import Path

from scaling.data.formats import FormatError, read_scores, write_scores
from scaling.launch import parse_shard, resolve_shard  # noqa: F401  (the shard spec is shared)


def canonical(pairs) -> list[tuple[str, str]]:
    """Unique (qid, docid) pairs in the order every shard agrees on."""
    return sorted(set(pairs))


def shard_pairs(pairs: list[tuple[str, str]], i: int, n: int) -> list[tuple[str, str]]:
    return canonical(pairs)[i::n]


def shard_path(shard_dir: Path, i: int, n: int) -> Path:
    return Path(shard_dir) / f"scores.{i:05d}-of-{n:05d}.tsv"


def finished(shard_dir: Path, n: int) -> list[int]:
    return [i for i in range(n) if shard_path(shard_dir, i, n).exists()]


def write_shard(shard_dir: Path, i: int, n: int, scores: dict[tuple[str, str], float]) -> Path:
    path = shard_path(shard_dir, i, n)
    write_scores(path, scores)
    return path


def merge(shard_dir: Path, n: int, pairs, out: Path) -> dict[str, dict[str, float]]:
    """Merge n shards into ``out``; every pair exactly once, or FormatError with counts and examples."""
    missing_shards = [i for i in range(n) if i not in finished(shard_dir, n)]
    if missing_shards:
        raise FileNotFoundError(f"{shard_dir}: shards {missing_shards[:10]} of {n} are not finished "
                                f"(run them with teacher.shard=i/{n} or as Slurm array tasks)")
    merged: dict[tuple[str, str], float] = {}
    for i in range(n):
        path = shard_path(shard_dir, i, n)
        for qid, docs in read_scores(path).items():
            for docid, score in docs.items():
                if (qid, docid) in merged:
                    raise FormatError(path, None, f"pair ({qid}, {docid}) is scored in two shards")
                merged[(qid, docid)] = score
    want = set(pairs)
    lost = sorted(want - set(merged))
    extra = sorted(set(merged) - want)
    if lost or extra:
        raise FormatError(shard_dir, None, f"shards do not cover the pairs: {len(lost)} missing "
                          f"(e.g. {lost[:3]}), {len(extra)} unexpected (e.g. {extra[:3]})")
    write_scores(out, merged)
    return read_scores(out)
