"""Multi-task training (``data.mixture``): datasets merged under prefixed ids, drawn in proportion
to their weights, each query with its own dataset's instruction, evaluated on each."""


import random

import pytest

from scaling.config import ConfigError, parse
from scaling.data import mixture
from tests.conftest import compose, dev_cut


@pytest.fixture(scope="module")
def second_beir(pycode_dir, tmp_path_factory):
    """A 200-document BEIR folder ("second") with 40 train and 20 test queries of pycode's dev split."""
    return dev_cut(pycode_dir, tmp_path_factory.mktemp("beir") / "second", 7, {"train": 40, "test": 20})


def test_weighted_draws_each_dataset_in_proportion():
    a, b = [("a", i) for i in range(10)], [("b", i) for i in range(30)]
    even = mixture.weighted([a, b], [1, 1])
    assert sum(x[0] == "a" for x in even) == 20 == sum(x[0] == "b" for x in even)
    assert set(a) <= set(even)  # under its share: every item, then a sample again
    skewed = mixture.weighted([a, b], [1, 3])
    assert sum(x[0] == "a" for x in skewed) == 10 and sum(x[0] == "b" for x in skewed) == 30
    assert mixture.weighted([a, b], [1, 3]) == skewed  # a fixed draw
    few = mixture.weighted([a, b], [1, 9])
    got_a = [x for x in few if x[0] == "a"]
    assert len(got_a) == 4 == len(set(got_a)) and len(few) == 40  # over its share: a sample, no repeats


def test_merged_ids_keep_the_datasets_apart():
    from scaling.data.formats import Dataset
    main = Dataset("pycode", {"x": "code"}, {"x": "query"}, {"test": {"x": {"x": 1}}})
    part = Dataset("pkgdesc", {"x": "prose"}, {"x": "synopsis"}, {"train": {"x": {"x": 1}}})
    merged = mixture.merge(main, [part])
    assert merged.corpus == {"x": "code", "mix0::x": "prose"} and merged.queries["mix0::x"] == "synopsis"
    assert mixture.prefix_items("mix0", [("x", ["x"], ["y", "z"])]) == [("mix0::x", ["mix0::x"], ["mix0::y", "mix0::z"])]
    assert mixture.source_of("mix0::x") == "mix0" and mixture.source_of("x") == ""


def test_a_mixed_batch_gives_each_query_its_own_instruction(small_beir, second_beir):
    from scaling.backbone import llama3_tokenizer
    from scaling.data import corpora
    from scaling.data.datamodule import GroupDataModule
    from scaling.checks import run_inputs
    cfg = parse(compose(["size=tiny", "data=beir", f"data.path={small_beir}", "data.n_negatives=0",
                         f"data.mixture=[{{name:beir,path:'{second_beir}',n_negatives:0,instruction:'Find: '}}]",
                         "budget=steps", "paradigm=dense", "trainer.global_batch=null"]))
    inputs = run_inputs(cfg)
    assert sum(mixture.source_of(item[0]) == "mix0" for item in inputs.items) == 50  # (60 + 40) / 2
    main = corpora.load(cfg.data, cfg.cache_dir, root=inputs.data_dir)
    merged = mixture.merge(main, [corpora.load(cfg.data.mixture[0], cfg.cache_dir, root=inputs.mixture[0])])
    tok = llama3_tokenizer()
    dm = GroupDataModule(merged, tok, cfg.data, cfg.model, 4, 0, items=inputs.items)
    mine = next(i for i, it in enumerate(inputs.items) if mixture.source_of(it[0]) == "")
    theirs = next(i for i, it in enumerate(inputs.items) if mixture.source_of(it[0]) == "mix0")
    batch = dm.collate([dm.train_set[mine], dm.train_set[theirs]])
    texts = [tok.decode(row[m.bool()], skip_special_tokens=True)
             for row, m in zip(batch["q"]["input_ids"], batch["q"]["attention_mask"])]
    assert texts[0].startswith("query: ") and not texts[0].startswith("query: Find: ")
    assert texts[1].startswith("query: Find: ")
    leads = (batch["q"]["attention_mask"] - batch["q"]["content_mask"]).sum(1).tolist()
    assert leads[1] > leads[0]  # the instruction is lead, like the prefix


def test_a_mixture_trains_and_is_evaluated_on_each_dataset(tiny_overrides, second_beir, tmp_path):
    from scaling.experiment import run
    result = run(parse(compose(tiny_overrides + [
        f"run_dir={tmp_path / 'run'}", "data.n_negatives=0",
        f"data.mixture=[{{name:beir,path:'{second_beir}',n_negatives:0,weight:2}}]"])))
    assert set(result["metrics"]) == {"small/test", "second/test"} == set(result["baseline_metrics"])
    assert result["config"]["data"]["mixture"][0]["weight"] == 2


@pytest.mark.parametrize("extra,match", [
    (["loss=kd", "data.n_negatives=0"], "data.mixture: a mixture trains without distillation"),
    (["data.n_negatives=1", "data.negatives=bm25"], r"data.mixture\[0\].n_negatives: must be this run's data.n_negatives \(1\)"),
])
def test_a_mixture_that_cannot_train_fails_when_parsed(extra, match, tiny_overrides, second_beir):
    mix = f"data.mixture=[{{name:beir,path:'{second_beir}',n_negatives:0}}]"
    with pytest.raises(ConfigError, match=match):
        parse(compose(tiny_overrides + [mix, *extra]))


def test_random_negatives_of_a_merged_corpus_are_refused(tiny_overrides, second_beir):
    mix = f"data.mixture=[{{name:beir,path:'{second_beir}',n_negatives:1,negatives:bm25}}]"
    with pytest.raises(ConfigError, match="data.negatives: with data.mixture, negatives come from each dataset's own pool"):
        parse(compose(tiny_overrides + [mix, "data.n_negatives=1", "data.negatives=random"]))


def test_a_mixture_dataset_is_not_also_zero_shot(tiny_overrides, second_beir):
    from scaling.checks import run_inputs
    mix = f"data.mixture=[{{name:beir,path:'{second_beir}',n_negatives:0}}]"
    zero = f"eval.zero_shot=[{{name:beir,path:'{second_beir}'}}]"
    with pytest.raises(ConfigError, match=r"eval.zero_shot\[0\]: beir .* is a mixture's dataset already"):
        run_inputs(parse(compose(tiny_overrides + ["data.n_negatives=0", mix, zero])))


def _negatives_file(folder, out, seed):
    """Hofstätter's triples (margin_mse) naming 4 negatives per training query: a candidate pool."""
    from scaling.data import formats
    data = formats.load_beir(folder)
    rng = random.Random(seed)
    lines = []
    for qid, docs in data.qrels["train"].items():
        (pos,) = docs
        for neg in rng.sample(sorted(set(data.corpus) - {pos}), 4):
            lines.append(f"1.0\t0.0\t{qid}\t{pos}\t{neg}")
    out.write_text("\n".join(lines) + "\n")
    return out


def test_a_mixture_killed_in_a_later_epoch_resumes_to_the_same_weights(tiny_overrides, small_beir, second_beir,
                                                                       tmp_path, monkeypatch):
    """16 groups (8 of each dataset), 4 steps an epoch; killed inside step 6 (epoch 1, between its
    micro-batches) after the checkpoint at step 4: the rerun draws the same mixed batches, the same
    sampled negatives from each dataset's own pool, and ends with the unbroken run's weights."""
    from scaling.callbacks import FlopLedger
    from scaling.experiment import run
    from tests.conftest import RESUME_HARD, assert_same_weights
    mine = _negatives_file(small_beir, tmp_path / "mine.tsv", 1)
    theirs = _negatives_file(second_beir, tmp_path / "theirs.tsv", 2)
    common = tiny_overrides + RESUME_HARD + [
        "budget.steps=7", "trainer.checkpoint_every=4", "data.negatives=file", f"data.negatives_file={mine}",
        f"data.mixture=[{{name:beir,path:'{second_beir}',n_negatives:2,negatives:file,negatives_file:'{theirs}',"
        "max_train_queries:8,instruction:'Find: '}]"]
    run(parse(compose(common + [f"run_dir={tmp_path / 'whole'}"])))
    killed = []

    def kill_once(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == 5 and batch_idx % 2 == 1 and not killed:
            killed.append((trainer.current_epoch, {mixture.source_of(q) for q in batch["qids"]}))
            raise KeyboardInterrupt("simulated kill")
    monkeypatch.setattr(FlopLedger, "on_train_batch_start", kill_once, raising=False)
    cfg = parse(compose(common + [f"run_dir={tmp_path / 'r'}"]))
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        run(cfg)
    assert killed and killed[0][0] == 1
    result = run(cfg)
    assert_same_weights(tmp_path / "whole", tmp_path / "r")
    assert set(result["metrics"]) == {"small/test", "second/test"}
