"""Teachers as fusions of components: z-score fusion and noise against hand computations, pools
interleaved by rank, bi-encoder scores against the packaged model's own cosine, and the report card
re-ranking a BM25+MiniLM pool."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from conftest import compose
from scaling.config import ConfigError, parse
from scaling.data import formats
from scaling.data.pools import interleave
from teachers.fusion import fuse, perturb


def test_fusion_is_the_weighted_sum_of_per_query_z_scores():
    a = {"q1": {"d1": 10.0, "d2": 20.0, "d3": 30.0}, "q2": {"d1": 1.0, "d4": 3.0}}
    b = {"q1": {"d1": 0.9, "d2": 0.1, "d3": 0.5}, "q2": {"d1": 0.2, "d4": 0.2}}
    fused = fuse({"a": a, "b": b}, {"a": 1.0, "b": 0.5})
    for q in a:
        za = {d: (v - statistics.fmean(a[q].values())) / statistics.pstdev(a[q].values()) for d, v in a[q].items()}
        sd = statistics.pstdev(b[q].values())
        zb = {d: (v - statistics.fmean(b[q].values())) / sd if sd else 0.0 for d, v in b[q].items()}
        assert fused[q] == pytest.approx({d: za[d] + 0.5 * zb[d] for d in a[q]})
    assert fuse({"a": a}, {"a": 2.0}) == a  # one component: its raw scores


def test_noise_is_seeded_by_the_pair_and_scaled_by_the_query_spread():
    scores = {"q": {f"d{i}": float(i) for i in range(200)}, "r": {"x": 1.0, "y": 1.0}}
    once, again = perturb(scores, 0.5, seed=3), perturb(scores, 0.5, seed=3)
    assert once == again and perturb(scores, 0.5, seed=4) != once and perturb(scores, 0.0) is scores
    noise = [once["q"][d] - v for d, v in scores["q"].items()]
    assert statistics.pstdev(noise) == pytest.approx(0.5 * statistics.pstdev(scores["q"].values()), rel=0.2)
    assert abs(statistics.fmean(noise)) < 0.2 * statistics.pstdev(scores["q"].values())
    assert once["r"] != scores["r"]  # a flat query still gets noise (unit spread)


def test_pools_interleave_by_rank_without_repeats_or_judged():
    assert interleave([["a", "b", "c"], ["x", "a", "y", "z"]], exclude={"b"}) == ["a", "x", "c", "y", "z"]
    assert interleave([["a", "b"], ["c"]], depth=2) == ["a", "c"]


def test_teacher_config_is_checked():
    with pytest.raises(ConfigError, match="teacher.fusion.ce.*non-zero"):
        parse(compose(["teacher.fusion.minilm=0", "teacher.fusion.bm25=0", "teacher.fusion.mpnet=0"]))
    with pytest.raises(ConfigError, match="teacher.pool"):
        parse(compose(["teacher.pool=bm25+splade"]))
    with pytest.raises(ConfigError, match="data.negatives"):
        parse(compose(["data.negatives=bm26"]))
    assert parse(compose(["teacher=bm25"])).teacher.fusion.active() == {"bm25": 1.0}


@pytest.fixture
def teacher_cfg(small_beir, tmp_path):
    return parse(compose(["data=beir", f"data.path={small_beir}", f"cache_dir={tmp_path / 'cache'}",
                          "teacher.fusion.ce=0", "teacher.fusion.bm25=1", "teacher.fusion.minilm=0.5",
                          "teacher.fusion.mpnet=0",
                          "teacher.report_splits=[test]", "teacher.report_depth=5", "data.bm25.hits=20",
                          "teacher.max_len=64"]))


def test_bi_encoder_component_is_the_packaged_models_cosine(teacher_cfg, small_beir):
    from transformers import AutoModel, AutoTokenizer

    from scaling.backbone import minilm_dir
    from teachers.teacher import Teacher
    data = formats.load_beir(small_beir)
    teacher = Teacher(teacher_cfg, data)
    pairs = [(q, d) for q in sorted(data.qrels["test"])[:3] for d in sorted(data.corpus)[:4]]
    got = teacher.component("minilm", pairs)
    tok, model = AutoTokenizer.from_pretrained(minilm_dir()), AutoModel.from_pretrained(minilm_dir()).eval()

    def embed(text):  # sentence-transformers' recipe: mean over the tokens, then unit length
        t = tok([text], truncation=True, max_length=64, return_tensors="pt")
        h = model(**t).last_hidden_state[0].detach().numpy()
        v = h.mean(0)
        return v / np.linalg.norm(v)
    want = [float(embed(data.queries[q]) @ embed(data.corpus[d])) for q, d in pairs]
    assert got == pytest.approx(want, abs=1e-4)
    # every query against every document of a batch, fused per row
    qids, docids = [q for q, _ in pairs[::4]], [d for _, d in pairs[:4]]
    matrix = teacher.scorer()(qids, docids)
    assert matrix.shape == (3, 4)
    row = fuse({"bm25": {qids[0]: dict(zip(docids, teacher.component("bm25", [(qids[0], d) for d in docids])))},
                "minilm": {qids[0]: dict(zip(docids, got[:4]))}}, {"bm25": 1.0, "minilm": 0.5})[qids[0]]
    assert matrix[0].tolist() == pytest.approx([row[d] for d in docids], abs=1e-4)


def test_report_card_reranks_the_union_pool_and_shouts_when_weaker(teacher_cfg, small_beir, capsys):
    from scaling.evaluation import score_run
    from teachers import report
    from teachers.teacher import Teacher
    data = formats.load_beir(small_beir)
    teacher = Teacher(teacher_cfg, data)
    card = report.report_card(teacher, data, teacher_cfg.teacher)
    part = card["splits"]["test"]
    qids = list(data.qrels["test"])
    pools = report.pool(teacher, qids, "bm25+minilm", 5)
    for q in qids:  # the union of both top 5s, nothing else
        bm = sorted(teacher.bm25_run([q])[q].items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        mini = teacher.bi_encoder("minilm").search([q], 5)[q]
        assert set(pools[q]) == {d for d, _ in bm} | set(mini)
    assert part["queries"] == len(qids) and part["pairs"] == sum(map(len, pools.values()))
    # BM25 re-ranking the pool: its own scores, the query's lowest retrieved one for a document it
    # did not retrieve; its own top 5 come first
    runs = teacher.bm25_run(qids)
    bm25_pool = {q: {d: runs[q].get(d, min(runs[q].values())) for d in pools[q]} for q in qids}
    assert part["systems"]["BM25 re-ranking the pool"] == pytest.approx(
        score_run(bm25_pool, data.qrels["test"], report.MEASURES))
    for q in qids:
        top5 = sorted(runs[q], key=lambda d: (-runs[q][d], d))[:5]
        assert sorted(bm25_pool[q], key=lambda d: (-bm25_pool[q][d], d))[:len(top5)] == top5
    mine = part["systems"][f"teacher {teacher_cfg.teacher.name!r}"]["nDCG@10"]
    assert (mine <= part["systems"]["BM25 re-ranking the pool"]["nDCG@10"]) == any("BM25" in w for w in card["weaker_than"])
    report.print_card({**card, "weaker_than": ["BM25 on test (0.1 <= 0.2)"]})
    assert "NOT ABOVE EVERY REFERENCE" in capsys.readouterr().err


def test_mpnet_is_joined_once_from_its_five_packages(tmp_path):
    from transformers import AutoConfig

    from scaling.backbone import mpnet_dir
    out = mpnet_dir(tmp_path, quiet=True)
    config = AutoConfig.from_pretrained(out)
    assert config.model_type == "mpnet" and config.hidden_size == 768 and config.num_hidden_layers == 12
    assert (out / "model.safetensors").stat().st_size > 400e6 and (out / "tokenizer.json").exists()
    assert not list(tmp_path.glob("models/.*"))  # no partial join left behind
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert mpnet_dir(tmp_path, quiet=True) == out and (out / "model.safetensors").stat().st_mtime_ns == stamp


def test_selection_ranks_every_weighting_on_the_chosen_split_alone(small_beir, tmp_path):
    from teachers import select
    out = select.main(["--split", "test", "--components", "bm25,minilm", "--depth", "5", "--max-len", "64",
                       "--out", str(tmp_path / "sel.json"), "data=beir", f"data.path={small_beir}",
                       f"cache_dir={tmp_path / 'cache'}"])
    assert out["split"] == "test" and set(out["alone"]) == {"bm25", "minilm"}
    best = max(out["alone"], key=out["alone"].get)
    ranked = out["ranked"]  # the best component at 1, the other at each grid weight
    assert len(ranked) == len(select.WEIGHTS) and all(r["weights"][best] == 1.0 for r in ranked)
    assert [r["nDCG@10"] for r in ranked] == sorted((r["nDCG@10"] for r in ranked), reverse=True)
    alone = next(r for r in ranked if r["weights"] == {best: 1.0})
    assert alone["nDCG@10"] == pytest.approx(out["alone"][best])
    assert (tmp_path / "sel.json").exists()


def test_a_standardised_single_component_is_its_z_scores():
    a = {"q": {"d1": 0.5, "d2": 0.6, "d3": 0.7}}
    z = fuse({"a": a}, {"a": 1.0}, standardise=True)["q"]
    sd = statistics.pstdev(a["q"].values())
    assert z == pytest.approx({d: (v - 0.6) / sd for d, v in a["q"].items()})
