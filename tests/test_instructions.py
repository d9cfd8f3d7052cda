"""Instructions on queries (Luo et al.): ``data.instruction`` in training and at evaluation,
``eval.query_instruction`` replacing it at evaluation only (``instruction=`` options)."""

import dataclasses

from scaling.config import parse
from tests.conftest import assert_same_weights, compose

INSTRUCTION = "Given a docstring, retrieve the Python function it documents: "


def test_training_queries_carry_the_dataset_instruction(small_beir):
    from scaling.backbone import llama3_tokenizer
    from scaling.data import formats
    from scaling.data.datamodule import GroupDataModule
    cfg = parse(compose(["instruction=seen", "data=beir", f"data.path={small_beir}", "data.n_negatives=1"]))
    data, tok = formats.load_beir(small_beir), llama3_tokenizer()
    dm = GroupDataModule(data, tok, cfg.data, cfg.model, 2, 0)
    batch = dm.collate([dm.train_set[0], dm.train_set[1]])
    qid = dm.train_set[0][0]
    text = tok.decode(batch["q"]["input_ids"][0][batch["q"]["attention_mask"][0].bool()], skip_special_tokens=True)
    assert text.startswith(cfg.model.query_prefix + INSTRUCTION)
    assert data.queries[qid].split()[0] in text
    # the instruction is lead, like the prefix: a head that skips the prefix does not pool it
    lead = int((batch["q"]["attention_mask"][0] - batch["q"]["content_mask"][0]).sum())
    assert lead >= len(tok(cfg.model.query_prefix + INSTRUCTION, add_special_tokens=False)["input_ids"])


def test_evaluation_uses_the_seen_instruction_a_paraphrase_or_none():
    seen, para, dropped, none = (parse(compose([f"instruction={o}"])) for o in ("seen", "paraphrase", "dropped", "none"))
    assert seen.query_instruction() == INSTRUCTION == seen.data.instruction
    assert para.query_instruction() not in ("", INSTRUCTION) and para.data.instruction == INSTRUCTION
    assert dropped.query_instruction() == "" and dropped.data.instruction == INSTRUCTION
    assert none.query_instruction() == "" == none.data.instruction


def test_cached_systems_are_keyed_by_the_instruction_they_saw(tmp_path):
    from scaling.evaluation import systems
    none, seen, dropped = (parse(compose([f"instruction={o}"])) for o in ("none", "seen", "dropped"))
    key = {n: systems._data_key(c, tmp_path, ["test"]) for n, c in (("none", none), ("seen", seen), ("dropped", dropped))}
    assert key["none"] != key["seen"] and key["none"] == key["dropped"]  # what matters is what evaluation prepends
    assert key["none"]["eval"]["query_instruction"] == ""  # the key of a run without instructions is unchanged


def test_the_instructed_points_train_the_same_model_and_evaluate_differently(tiny_overrides, tmp_path):
    from scaling.experiment import run
    results = {o: run(parse(compose(tiny_overrides + [f"instruction={o}", f"run_dir={tmp_path / o}"])))
               for o in ("seen", "dropped")}
    assert_same_weights(tmp_path / "seen", tmp_path / "dropped")
    a, b = (results[o]["metrics"]["small/test"]["contrastive_entropy"] for o in ("seen", "dropped"))
    assert a != b
    recorded = [dataclasses.asdict(parse(compose(tiny_overrides + [f"instruction={o}"]))).get("eval")["query_instruction"]
                for o in ("seen", "dropped")]
    assert recorded == [None, ""] and results["dropped"]["config"]["eval"]["query_instruction"] == ""
