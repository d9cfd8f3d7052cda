"""recipes/prepare.py's pipeline on a small BEIR folder: BM25 groups, a fine-tuned teacher, sharded
scores, and runs that read them (loss=kd, data.negatives=bm25)."""

from __future__ import annotations

import pytest

from conftest import compose
from scaling.config import ConfigError, parse
from scaling.data import formats
from scaling.data.formats import read_groups, read_scores
from scaling.prepare import paths, prepare, teacher_pairs


@pytest.fixture
def prep_overrides(small_beir, tiny_ce_dir, tmp_path):
    return ["size=tiny", "data=beir", f"data.path={small_beir}", f"cache_dir={tmp_path / 'cache'}",
            f"teacher.init={tiny_ce_dir}", "teacher.train.steps=2", "teacher.train.batch_size=4",
            "teacher.max_len=64", "teacher.candidates=3", "teacher.report_split=test",
            "teacher.report_depth=10", "data.bm25.hits=20"]


def test_prepare_builds_groups_teacher_and_sharded_scores(prep_overrides, small_beir):
    data = formats.load_beir(small_beir)
    cfg = parse(compose(prep_overrides))
    logs = []
    prepare(cfg, ["data", "bm25"], log=logs.append)
    p = paths(cfg)
    groups = read_groups(p.groups)
    assert set(groups) == set(data.qrels["train"])
    from scaling.index.lucene import read_trec_run
    train_run = read_trec_run(p.run("train"))
    for qid, g in groups.items():  # BM25's order minus the positive, topped up to 20 - 1 if short
        ranked = [d for d in sorted(train_run[qid], key=lambda d: -train_run[qid][d]) if d != qid]
        assert g["positives"] == [qid] and len(g["negatives"]) == len(set(g["negatives"]))
        assert len(g["negatives"]) == max(19, len(ranked))
        assert g["negatives"][:len(ranked)] == ranked and qid not in g["negatives"]
    assert "topped up" in "".join(logs)

    with pytest.raises(ConfigError, match="not trained yet.*teacher_model"):
        prepare(parse(compose(prep_overrides + ["teacher.shard=1/2"])), ["teacher"])
    assert prepare(parse(compose(prep_overrides + ["teacher.shard=0/2"])), ["teacher_model"])["teacher"] is None
    assert (p.teacher / "model" / "config.json").exists() and (p.teacher / "report.json").exists()
    out = prepare(parse(compose(prep_overrides + ["teacher.shard=1/2"])), ["teacher"], log=logs.append)
    assert out["teacher"] is None and "1 of 2 teacher shards finished" in logs[-1]
    out = prepare(parse(compose(prep_overrides + ["teacher.shard=0/2"])), ["teacher"], log=logs.append)
    assert out["teacher"] == p.teacher_scores
    scores = read_scores(p.teacher_scores)
    want = set(teacher_pairs(groups, 3))
    assert {(q, d) for q, docs in scores.items() for d in docs} == want and len(want) == 4 * len(groups)
    # a second teacher setting under the same name is refused, not mixed in
    with pytest.raises(ConfigError, match="other settings.*candidates"):
        prepare(parse(compose(prep_overrides + ["teacher.candidates=5"])), ["teacher"])


def test_distillation_and_bm25_negatives_read_the_prepared_files(prep_overrides, tiny_overrides, tmp_path):
    from scaling.experiment import run
    base = prep_overrides + tiny_overrides[3:] + [f"cache_dir={tmp_path / 'cache'}", "eval.untrained=false"]
    with pytest.raises(ConfigError, match=r"needs teacher scores \(none at .*build them: `python recipes/prepare.py"):
        run(parse(compose(base + ["loss=kd", "data.n_negatives=2", f"run_dir={tmp_path / 'kd0'}"])))
    with pytest.raises(FileNotFoundError, match=r"steps=\[bm25\]"):
        run(parse(compose(base + ["data.negatives=bm25", f"run_dir={tmp_path / 'bm0'}"])))
    prepare(parse(compose(prep_overrides)), ["bm25", "teacher"])
    result = run(parse(compose(base + ["loss=kd", "data.n_negatives=2", f"run_dir={tmp_path / 'kd'}"])))
    assert result["metrics"] and (tmp_path / "kd" / "checkpoint").exists()
    result = run(parse(compose(base + ["data.negatives=bm25", "data.n_negatives=2", f"run_dir={tmp_path / 'bm'}"])))
    assert result["metrics"]


def test_bm25_pools_feed_the_training_groups(prep_overrides, small_beir):
    from scaling.data.datamodule import TrainGroups
    from scaling.prepare import load_negative_pools
    cfg = parse(compose(prep_overrides + ["data.negatives=bm25", "data.negatives_depth=5"]))
    prepare(cfg, ["bm25"])
    pools = load_negative_pools(cfg)
    data = formats.load_beir(small_beir)
    groups = TrainGroups(data, "train", n_negatives=3, pools=pools)
    for i in range(len(groups)):
        qid, docs, scores = groups[i]
        assert docs[0] == qid and set(docs[1:]) <= set(pools[qid]) and len(set(docs)) == 4 and scores is None
    with pytest.raises(ValueError, match=r"hard negatives: 60 of 60 training groups lack hard negatives.*5 pool negatives < 6"):
        TrainGroups(data, "train", n_negatives=6, pools=pools)
