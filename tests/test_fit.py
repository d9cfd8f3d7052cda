"""A real Lightning fit on the tiny model through the same code path as recipes/run.py."""

import csv
import json
import subprocess
import sys

import pytest
import torch

from conftest import RESUME_HARD, ROOT, assert_same_weights, compose
from scaling import config
from scaling.config import ConfigError, EvaluateConfig, parse
from scaling.experiment import evaluate, run
from scaling.rundir import RunExistsError

KEYS = {"nDCG@10", "RR@10", "R@100", "R@1000"}
INDEX_KEYS = {"index_MB", "build_s", "p50_ms", "p95_ms", "QPS"}
SPARSE_KEYS = {"q_nonzero", "d_nonzero", "FLOPS", "d_cosine", "common_share"}
EVAL_KEYS = {"per_query", "contrastive_entropy"}  # each query's measures; the smooth measure


def test_fit_writes_result_checkpoint_and_evaluates_again(tiny_overrides, tmp_path):
    cfg = parse(compose(tiny_overrides + [f"run_dir={tmp_path / 'run'}", "eval.every_n_steps=2",
                                          "eval.curve_split=test"]))
    result = run(cfg)
    on_disk = json.loads((tmp_path / "run" / "result.json").read_text())
    assert set(on_disk) >= {"config", "metrics", "baseline_metrics", "checkpoint", "budget"}
    assert set(on_disk["metrics"]) == {"small/test"} == set(on_disk["baseline_metrics"])
    assert set(on_disk["metrics"]["small/test"]) >= KEYS | {"index_MB", "build_s", "p50_ms", "p95_ms", "QPS"}
    plan, realised = on_disk["budget"]["plan"], on_disk["budget"]["realised"]
    assert plan["max_steps"] == 3 == realised["steps"] and plan["global_batch"] == 4
    assert realised["flops"] == pytest.approx(3 * plan["flops_per_step"]) and realised["within_budget"]
    # the ledger counted real tokens: some padding, never more than the plan's maximum lengths
    assert 0 < realised["tokens"] <= realised["tokens_planned"] == 3 * plan["tokens_per_step"]
    # the learning curve: the test split at step 2, with the FLOPs charged by then
    (point,) = on_disk["curve"]
    assert point["step"] == 2 and point["flops"] == pytest.approx(2 * plan["flops_per_step"])
    assert set(point["metrics"]["small/test"]) >= KEYS
    assert not (tmp_path / "run" / "running.json").exists()
    logged = (tmp_path / "run" / "runs" / "small_test.trec").read_text().splitlines()
    assert len({line.split()[0] for line in logged}) == 30
    assert_per_query_and_entropy(cfg, on_disk)

    # The trained LoRA weights moved away from zero-init B: the model changed.
    from safetensors.torch import load_file
    weights = load_file(str(tmp_path / "run" / "checkpoint" / "weights.safetensors"))
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in weights.items())

    def evaluate_ckpt(name, *overrides, cache="cache"):  # recipes/evaluate.py on the checkpoint
        return evaluate(parse(compose(["data=beir", tiny_overrides[2], f"run_dir={tmp_path / name}",
                                       f"checkpoint={result['checkpoint']}", f"cache_dir={tmp_path / cache}",
                                       *overrides], config_name="evaluate"), EvaluateConfig))

    def same_metrics(got, key="metrics"):
        for k in KEYS:
            assert got[key]["small/test"][k] == pytest.approx(result[key]["small/test"][k], abs=1e-6)

    # evaluate.py's path rebuilds the model from the checkpoint and gets the same numbers, and tests
    # it against BM25 on its per-query values (eval.compare_to)
    evaluated = evaluate_ckpt("eval", "eval.untrained=false")
    same_metrics(evaluated)
    from scaling.analysis import significance
    rows = {(r["system"], r["measure"]): r for r in evaluated["significance"]["comparisons"]}
    bm25_pq = evaluated["reference_metrics"]["bm25"]["small/test"]["per_query"]["nDCG@10"]
    mine = evaluated["metrics"]["small/test"]["per_query"]["nDCG@10"]
    assert rows[("checkpoint", "nDCG@10")]["t_p"] == pytest.approx(significance.paired_t(bm25_pq, mine), abs=1e-12)
    assert evaluated["significance"]["baseline"] == "bm25"

    # Sharded: two jobs each encode their blocks (300 docs -> 3 blocks); the one completing the corpus
    # evaluates, with the same numbers; no result.json before that.
    shard = ("eval.untrained=false", "eval.baselines=[]", "eval.block=100")
    assert evaluate_ckpt("sharded", *shard, "eval.shard=0/2") == {}
    assert not (tmp_path / "sharded" / "result.json").exists()
    assert sorted(p.name for p in (tmp_path / "sharded" / "encoded" / "small").glob("block-*")) == [
        "block-000000.npy", "block-000002.npy"]
    same_metrics(evaluate_ckpt("sharded", *shard, "eval.shard=1/2"))

    # Its untrained column is the backbone itself (recomputed here in a fresh cache), not the checkpoint.
    same_metrics(evaluate_ckpt("eval2", "eval.baselines=[]", cache="cache2"), "baseline_metrics")

    # A finished run is never overwritten silently.
    with pytest.raises(RunExistsError, match="overwrite=true"):
        run(cfg)


def test_a_killed_run_resumes_in_a_later_epoch_to_the_same_weights(tiny_overrides, tmp_path, monkeypatch, capsys):
    """Killed inside step 6 (epoch 2, between its two micro-batches), after the checkpoint at the
    end of epoch 1: the rerun resumes there, with sampled negatives and LoRA dropout drawing what
    they drew in the unbroken run, and ends with its weights exactly."""
    from scaling.callbacks import FlopLedger
    common = tiny_overrides + RESUME_HARD + ["budget.steps=7", "trainer.checkpoint_every=4", "logger=csv",
                                            "trainer.log_every=1"]
    run(parse(compose(common + [f"run_dir={tmp_path / 'whole'}"])))

    killed = []
    def kill_once(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == 5 and batch_idx % 2 == 1 and not killed:
            killed.append(trainer.current_epoch)
            raise KeyboardInterrupt("simulated kill")
    monkeypatch.setattr(FlopLedger, "on_train_batch_start", kill_once, raising=False)
    cfg = parse(compose(common + [f"run_dir={tmp_path / 'r'}"]))
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        run(cfg)
    assert killed == [2]
    hint = capsys.readouterr().out.splitlines()[-1]  # how to resume it
    assert hint.startswith("[run] stopped (SystemExit)") and "resumes from" in hint and "last.ckpt" in hint
    assert hint.endswith(f"the same configuration with run_dir={tmp_path / 'r'}")  # in-process: no command line
    ckpt = torch.load(tmp_path / "r" / "ckpt" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 4 and not (tmp_path / "r" / "result.json").exists()
    assert all("lora" in k for k in ckpt["state_dict"])  # trained weights only
    assert not (tmp_path / "r" / "running.json").exists()  # the marker goes however the run ends
    run(cfg)
    assert torch.load(tmp_path / "r" / "ckpt" / "last.ckpt", weights_only=False)["global_step"] == 7
    assert_same_weights(tmp_path / "whole", tmp_path / "r")
    # the per-step log holds every step once, across both attempts
    steps = [int(r["step"]) for r in csv.DictReader(open(tmp_path / "r" / "logs" / "metrics.csv"))
             if r.get("train/loss")]
    assert steps == sorted(set(steps)) and steps[-1] >= 5 and steps[0] < 4


def test_cli_runs_and_rejects_bad_input(tiny_overrides, tmp_path):
    cmd = [sys.executable, str(ROOT / "recipes" / "run.py")]
    ok = subprocess.run(cmd + tiny_overrides + [f"run_dir={tmp_path / 'cli'}", "budget.steps=1"],
                        capture_output=True, text=True, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "untrained (step 0)" in ok.stdout and "trained (1 steps)" in ok.stdout
    again = subprocess.run(cmd + tiny_overrides + [f"run_dir={tmp_path / 'cli'}"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert again.returncode != 0 and "finished run" in again.stderr
    nosplit = subprocess.run(cmd + tiny_overrides + [f"run_dir={tmp_path / 'ns'}", "data.eval_splits=[dev]"],
                             capture_output=True, text=True, cwd=tmp_path)
    assert nosplit.returncode == 1 and "error: data.eval_splits: split 'dev' needs " in nosplit.stderr \
        and "qrels/dev.tsv, which is missing (the dataset has test, train)" in nosplit.stderr, nosplit.stderr[-2000:]
    assert not (tmp_path / "ns").exists()  # refused before anything was written
    bad = subprocess.run(cmd + ["size=huge"], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode != 0 and "smollm2-135m" in bad.stderr
    missing = subprocess.run(cmd + tiny_overrides[:1] + ["size=1b", "model.path=/no/such/dir",
                             f"run_dir={tmp_path / 'm'}"] + tiny_overrides[1:],
                             capture_output=True, text=True, cwd=tmp_path)
    assert missing.returncode != 0 and "/no/such/dir" in missing.stderr
    assert "model.download=true" in missing.stderr


PARADIGMS = sorted(config.PARADIGMS)
LOSS_CHOICES = sorted(config.LOSSES)


@pytest.mark.parametrize("paradigm,loss", [(p, loss) for p in PARADIGMS for loss in LOSS_CHOICES
                                           if p in ("dense", "sparse") or loss == "cl"])
def test_every_paradigm_and_loss_fits(paradigm, loss, tiny_overrides, teacher_file, tmp_path):
    sparse = config.PARADIGMS[paradigm].head.name == "sparse"
    cfg = parse(compose(tiny_overrides + [
        f"paradigm={paradigm}", f"loss={loss}", f"run_dir={tmp_path / 'run'}", "budget.steps=2",
        "data.n_negatives=2", f"data.teacher_scores={teacher_file}", "eval.untrained=false",
        "logger=csv", "trainer.log_every=1", "eval.batch_size=16", "data.doc_len=24",
        "data.query_len=12"] + (["paradigm.head.query_top_k=64", "paradigm.head.doc_top_k=256"] if sparse else [])
        + (["model.mntp.steps=3", "model.mntp.batch_size=2"] if paradigm in config.PARADIGM_MODELS else [])
        + (["teacher=minilm"] if loss == "kd_inbatch" else [])))  # a teacher that scores any pair, nothing prepared
    # (untrained full-vocabulary vectors weight ~120k of the 128k terms: unpruned, Lucene takes seconds
    # per query and minutes to index 300 such documents)
    result = run(cfg)
    assert set(result["metrics"]["small/test"]) == KEYS | INDEX_KEYS | EVAL_KEYS | (SPARSE_KEYS if sparse else set())
    mntp = paradigm in config.PARADIGM_MODELS   # the run prepared its adapted starting point itself
    assert result["start"]["kind"] == ("mntp" if mntp else "packaged")
    assert (result["start"].get("made_by", {}).get("mntp_steps") == 3) == mntp
    header = (tmp_path / "run" / "logs" / "metrics.csv").read_text().splitlines()[0].split(",")
    for term in cfg.terms:
        assert f"train/{term.name}" in header
    if sparse:
        assert {"train/q_nonzero", "train/d_nonzero", "train/flops", "train/d_cosine",
                "train/common_share"} <= set(header)


def test_splade_tiny_trains_through_the_sparse_head(tiny_overrides, tmp_path):
    """The packaged SPLADE-tiny as a backbone: its MLM head is the sparse head's LM head, trained in
    full, exported to Lucene; it starts well above chance and its weights move."""
    cfg = parse(compose(tiny_overrides + [
        "size=splade-tiny", "paradigm=sparse", "paradigm.head.skip_sink=false", "paradigm.head.skip_prefix=false",
        "paradigm.head.lexical=false", "paradigm.head.fold=false", "paradigm.head.scale_logits=false",
        f"run_dir={tmp_path / 'run'}", "budget.steps=3", "data.doc_len=48", "data.query_len=16"]))
    assert not cfg.model.lora.enabled and cfg.model.query_prefix == ""
    result = run(cfg)
    m, start = result["metrics"]["small/test"], result["baseline_metrics"]["small/test"]
    assert set(m) == KEYS | INDEX_KEYS | SPARSE_KEYS | EVAL_KEYS
    assert start["nDCG@10"] > 0.2 and m["nDCG@10"] > 0.1
    assert 10 < m["d_nonzero"] < 5000


def test_reference_systems_share_the_table_and_are_cached(tiny_overrides, tmp_path, capsys):
    """BM25 (in-process Lucene searcher) equals the batch SearchCollection path; MiniLM runs zero-shot."""
    from scaling.data import corpora
    from scaling.evaluation import score_run, systems
    from scaling.index import bm25
    from scaling.prepare import paths
    cfg = parse(compose(tiny_overrides + ["eval.baselines=[bm25,minilm,splade]", "eval.k=100"]))
    data_dir = corpora.dataset_dir(cfg.data, cfg.cache_dir)
    data = corpora.load(cfg.data, cfg.cache_dir)
    refs = systems.references(cfg, data, data_dir, ["test"])
    assert set(refs) == {"bm25", "minilm", "splade"}
    batch = bm25.search(paths(cfg).bm25 / "index", data.split_queries("test"), cfg.data.bm25, hits=100)
    want = score_run(batch, data.qrels["test"])
    for m in KEYS:
        assert refs["bm25"]["small/test"][m] == pytest.approx(want[m], abs=1e-3)
    assert set(refs["minilm"]["small/test"]) >= KEYS | INDEX_KEYS
    assert refs["minilm"]["small/test"]["nDCG@10"] > 0.2  # a real pretrained model, not noise
    assert set(refs["splade"]["small/test"]) == KEYS | INDEX_KEYS | SPARSE_KEYS | EVAL_KEYS
    assert refs["splade"]["small/test"]["nDCG@10"] > 0.2  # learned sparse weights through Lucene
    capsys.readouterr()
    assert systems.references(cfg, data, data_dir, ["test"]) == refs
    assert "cached" in capsys.readouterr().out

    # documents longer than MiniLM's and SPLADE's 512 positions (luo_long_docs): cut there, said.
    long = parse(compose(tiny_overrides + ["eval.baselines=[minilm,splade]", "eval.k=100", "eval.doc_len=1024"]))
    refs_long = systems.references(long, data, data_dir, ["test"])
    assert refs_long["minilm"]["small/test"]["nDCG@10"] > 0.2 and refs_long["splade"]["small/test"]["nDCG@10"] > 0.2
    assert capsys.readouterr().out.count("documents cut at 512, not 1024") == 2

    # evaluate.py baseline=bm25 with no checkpoint: BM25 alone, its numbers as the result's metrics.
    alone = evaluate(parse(compose(["baseline=bm25", "data=beir", tiny_overrides[2], "eval.k=100",
                                    f"cache_dir={cfg.cache_dir}", f"run_dir={tmp_path / 'bm25'}"],
                                   config_name="evaluate"), EvaluateConfig))
    assert alone["metrics"] == refs["bm25"] and set(alone["reference_metrics"]) == {"bm25"}
    assert "BM25" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="checkpoint"):
        parse(compose(["baseline=none"], config_name="evaluate"), EvaluateConfig)


def assert_per_query_and_entropy(cfg, result):
    """Every judged query's measures are kept, their mean is the table's number, and the
    contrastive entropy is recomputed here from the checkpoint's own encoders on the candidate
    texts alone (no corpus store, no index)."""
    from scaling.checkpoint import load
    from scaling.data import formats
    from scaling.data.collate import tokenizers_for
    from scaling.evaluation import entropy
    from scaling.index import encode
    from scaling.prepare import dataset_key
    data = formats.load_beir(cfg.data.path)
    m = result["metrics"]["small/test"]
    per_query = m["per_query"]
    assert set(per_query) == KEYS | {"contrastive_entropy"}
    for k in KEYS:
        assert set(per_query[k]) == set(data.qrels["test"])
        assert sum(per_query[k].values()) / len(per_query[k]) == pytest.approx(m[k], abs=1e-12)
    sets = json.loads(entropy.candidates_path(cfg.cache_dir, dataset_key(cfg), "test", 63, 0).read_text())["candidates"]
    assert all(len(c) == 64 for c in sets.values())
    module, tokenizer = load(result["checkpoint"], cfg)
    module.eval()
    q_tok, d_tok = tokenizers_for(tokenizer, cfg.model, cfg.data.query_len, cfg.data.doc_len)
    want = {}
    with torch.no_grad():
        for qid, cands in list(sets.items())[:5]:
            q = encode.encode_texts(encode.encoder_fn(module, "query"), q_tok, [data.queries[qid]], progress=False)
            d = encode.encode_texts(encode.encoder_fn(module, "doc"), d_tok, [data.corpus[c] for c in cands],
                                    progress=False)
            s = torch.tensor(q @ d.T, dtype=torch.float64).ravel() / cfg.paradigm.temperature
            want[qid] = float(torch.logsumexp(s, 0) - s[0])
    for qid, value in want.items():
        assert per_query["contrastive_entropy"][qid] == pytest.approx(value, rel=1e-4, abs=1e-4)
    assert m["contrastive_entropy"] == pytest.approx(sum(per_query["contrastive_entropy"].values()) / len(sets))


def test_a_pretrained_encoders_dropout_is_on_in_every_training_step(tiny_overrides, tmp_path, monkeypatch):
    """from_pretrained returns MiniLM in eval mode and Lightning keeps submodules' modes through
    fit: training must still drop out (BERT's 0.1 and LoRA's), with no evaluation of the
    untrained model before it to reset the modes, and after a learning-curve evaluation."""
    from scaling.module import RetrieverModule
    seen = []
    real = RetrieverModule.training_step

    def spy(self, batch, batch_idx):
        drops = [m for m in self.modules() if isinstance(m, torch.nn.Dropout) and m.p > 0]
        seen.append((len(drops), sum(m.training for m in drops)))
        return real(self, batch, batch_idx)
    monkeypatch.setattr(RetrieverModule, "training_step", spy)
    cfg = parse(compose(tiny_overrides + ["size=minilm", "eval.untrained=false", "budget.steps=2",
                                          "eval.every_n_steps=1", "eval.curve_split=test", f"run_dir={tmp_path / 'run'}"]))
    run(cfg)
    assert len(seen) == 2 and all(n > 10 and on == n for n, on in seen), seen
