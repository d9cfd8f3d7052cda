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
            "teacher=minilm-ce", f"teacher.init={tiny_ce_dir}", "teacher.train.steps=2", "teacher.train.batch_size=4",
            "teacher.max_len=64", "teacher.candidates=3", "teacher.report_splits=[test]",
            "teacher.report_pool=bm25", "teacher.report_references=[bm25]",
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
    data = formats.load_beir(small_beir)
    pools = load_negative_pools(cfg, data.qrels["train"])
    groups = TrainGroups(data, "train", n_negatives=3, pools=pools)
    for i in range(len(groups)):
        qid, docs, scores = groups[i]
        assert docs[0] == qid and set(docs[1:]) <= set(pools[qid]) and len(set(docs)) == 4 and scores is None
    with pytest.raises(ValueError, match=r"hard negatives: 60 of 60 training groups lack hard negatives.*5 pool negatives < 6"):
        TrainGroups(data, "train", n_negatives=6, pools=pools)


def test_a_fused_teacher_scores_a_mixed_pool_and_teaches_over_the_batch(prep_overrides, tiny_overrides, tmp_path,
                                                                          small_beir):
    """No cross-encoder: BM25 and MiniLM fused, its candidates from BM25's and MiniLM's lists
    interleaved; a run distils from its file and, in-batch, from the same teacher on the fly."""
    from scaling.data import pools
    from scaling.experiment import run
    from teachers.fusion import fuse
    from teachers.teacher import Teacher
    fused = prep_overrides + ["teacher.name=fused", "teacher.fusion.ce=0", "teacher.fusion.bm25=1",
                              "teacher.fusion.minilm=1", "teacher.pool=bm25+minilm", "teacher.candidates=4"]
    cfg = parse(compose(fused))
    prepare(cfg, ["bm25", "teacher"])
    p = paths(cfg)
    assert not (p.teacher / "model").exists()  # nothing fine-tuned
    data = formats.load_beir(small_beir)
    mini = read_trec_run_ranked(pools.run_path(p.root, "minilm", "train"))
    groups = read_groups(p.groups)
    scores = read_scores(p.teacher_scores)
    for qid in list(groups)[:5]:
        want = pools.interleave([groups[qid]["negatives"], mini[qid]], {qid})[:4]
        assert set(scores[qid]) == {qid, *want}
        teacher = Teacher(cfg, data)
        pairs = [(qid, d) for d in scores[qid]]
        parts = {c: {qid: dict(zip(scores[qid], teacher.component(c, pairs)))} for c in ("bm25", "minilm")}
        assert scores[qid] == pytest.approx(fuse(parts, {"bm25": 1.0, "minilm": 1.0})[qid], abs=1e-4)
    base = fused + tiny_overrides[3:] + [f"cache_dir={tmp_path / 'cache'}", "eval.untrained=false",
                                         "loss=kd", "data.n_negatives=2"]
    result = run(parse(compose(base + ["loss.terms.0.in_batch=true", f"run_dir={tmp_path / 'ib'}"])))
    assert result["metrics"] and result["budget"]["not_charged"]["teacher_in_batch"]["pairs"]["minilm"] > 0
    # a mixed pool of negatives for a contrastive run, read from the same prepared files
    result = run(parse(compose(base[:-2] + ["data.negatives=bm25+minilm", "data.n_negatives=2",
                                            f"run_dir={tmp_path / 'mix'}"])))
    assert result["metrics"]


def read_trec_run_ranked(path):
    from scaling.data.pools import ranked
    from scaling.index.lucene import read_trec_run
    return ranked(read_trec_run(path))


def test_in_batch_distillation_from_an_untrained_cross_encoder_fails_before_any_work(prep_overrides, tiny_overrides,
                                                                                       tmp_path, teacher_file):
    from scaling.experiment import run
    base = prep_overrides + tiny_overrides[3:] + [f"cache_dir={tmp_path / 'cache'}", "loss=kd", "data.n_negatives=2",
                                                  f"data.teacher_scores={teacher_file}", "loss.terms.0.in_batch=true",
                                                  f"run_dir={tmp_path / 'r'}"]
    with pytest.raises(FileNotFoundError, match="not trained yet.*teacher_model"):
        run(parse(compose(base)))
    assert not (tmp_path / "r").exists()


def test_runs_read_the_files_researchers_have(tiny_overrides, tmp_path, small_beir, capsys):
    """MarginMSE triples (gzip) as teacher scores and a hard-negatives jsonl as the negatives: ids
    the training split or the corpus lacks are counted, shown and left out."""
    import gzip
    import json
    import random

    from scaling.experiment import run
    data = formats.load_beir(small_beir)
    rng, docs = random.Random(0), sorted(data.corpus)
    triples, hard = [], []
    for qid in data.qrels["train"]:
        negs = [d for d in rng.sample(docs, 4) if d != qid][:3]
        triples += [f"9.5\t{rng.random():.3f}\t{qid}\t{qid}\t{n}" for n in negs]
        hard.append({"qid": qid, "pos": [qid], "neg": {"bm25": negs, "other": ["no-such-doc"] + negs[::-1]}})
    triples.append("9.0\t1.0\tno-such-query\t1\t2")
    with gzip.open(tmp_path / "triples.tsv.gz", "wt") as f:
        f.write("\n".join(triples) + "\n")
    with gzip.open(tmp_path / "hard.jsonl.gz", "wt") as f:
        f.write("\n".join(json.dumps(h) for h in hard) + "\n")
    base = tiny_overrides + ["eval.untrained=false", "data.n_negatives=1"]
    result = run(parse(compose(base + ["loss=margin_mse", f"data.teacher_scores={tmp_path / 'triples.tsv.gz'}",
                                       f"run_dir={tmp_path / 'mm'}"])))
    out = capsys.readouterr().out
    assert result["metrics"] and "(margin_mse): 61 queries (1 match no training query, e.g. no-such-query)" in out
    result = run(parse(compose(base + ["data.negatives=file", f"data.negatives_file={tmp_path / 'hard.jsonl.gz'}",
                                       "data.negatives_systems=[other]", f"run_dir={tmp_path / 'hn'}"])))
    out = capsys.readouterr().out
    assert result["metrics"] and "1 document ids are not in the corpus (e.g. no-such-doc); left out" in out
    with pytest.raises(formats.FormatError, match="holds candidates but no scores"):
        run(parse(compose(base + ["loss=kd", f"data.teacher_scores={tmp_path / 'hard.jsonl.gz'}",
                                  f"run_dir={tmp_path / 'x'}"])))
