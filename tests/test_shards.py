"""Teacher-score sharding: every pair lands in exactly one shard and the merge checks coverage."""

from __future__ import annotations

import random

import pytest

from scaling.data.formats import FormatError, read_scores
from teachers import shards


def _pairs(n=103):
    rng = random.Random(0)
    return [(f"q{rng.randrange(20)}", f"d{i}") for i in range(n)]


@pytest.mark.parametrize("n", [1, 4, 7])
def test_shard_then_merge_loses_and_duplicates_nothing(tmp_path, n):
    pairs = _pairs() + _pairs()[:10]  # repeated pairs are scored once
    parts = [shards.shard_pairs(pairs, i, n) for i in range(n)]
    flat = [p for part in parts for p in part]
    assert len(flat) == len(set(flat)) == len(set(pairs))
    for i, part in enumerate(parts):
        shards.write_shard(tmp_path, i, n, {p: float(hash(p) % 1000) / 7 for p in part})
    merged = shards.merge(tmp_path, n, set(pairs), tmp_path / "all.tsv")
    assert {(q, d) for q, docs in merged.items() for d in docs} == set(pairs)
    assert merged == read_scores(tmp_path / "all.tsv")
    q, d = pairs[5]
    assert merged[q][d] == pytest.approx(float(hash((q, d)) % 1000) / 7, rel=1e-5)


def test_merge_refuses_missing_shards_duplicates_and_gaps(tmp_path):
    pairs = shards.canonical(_pairs(20))
    a, b = shards.shard_pairs(pairs, 0, 2), shards.shard_pairs(pairs, 1, 2)
    shards.write_shard(tmp_path, 0, 2, {p: 1.0 for p in a})
    with pytest.raises(FileNotFoundError, match=r"shards \[1\] of 2 are not finished"):
        shards.merge(tmp_path, 2, pairs, tmp_path / "all.tsv")
    shards.write_shard(tmp_path, 1, 2, {p: 1.0 for p in b + a[:1]})
    with pytest.raises(FormatError, match="scored in two shards"):
        shards.merge(tmp_path, 2, pairs, tmp_path / "all.tsv")
    shards.write_shard(tmp_path, 1, 2, {p: 1.0 for p in b[1:]})
    with pytest.raises(FormatError, match="1 missing"):
        shards.merge(tmp_path, 2, pairs, tmp_path / "all.tsv")
    assert not (tmp_path / "all.tsv").exists()


def test_shard_comes_from_the_argument_or_slurm():
    assert shards.resolve_shard("2/5") == (2, 5)
    assert shards.resolve_shard(None, {}) == (0, 1)
    env = {"SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_COUNT": "4"}
    assert shards.resolve_shard(None, env) == (2, 4)
    for bad in ("3", "5/5", "-1/2", "a/b"):
        with pytest.raises(ValueError, match="shard"):
            shards.parse_shard(bad)


def test_a_bad_shard_spec_is_a_config_error():
    from scaling.config import ConfigError, TeacherConfig
    with pytest.raises(ConfigError, match="teacher.shard"):
        TeacherConfig(shard="4/4")
