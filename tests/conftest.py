"""Shared fixtures: an isolated cache, a small BEIR folder cut from the built-in corpus, and a
helper that composes the real Hydra config tree with overrides."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "recipes" / "conf"
sys.path.insert(0, str(ROOT))


def compose(overrides=(), config_name="config"):
    """Compose recipes/conf like the CLI does; returns a plain dict (resolved)."""
    from hydra import compose as hcompose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from scaling import cli
    cli.register()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        conf = hcompose(config_name=config_name, overrides=list(overrides))
        return OmegaConf.to_container(conf, resolve=True)


def compose_run(args):
    """What recipes/run.py makes of its command-line arguments (no -m): the grid's expansion
    (grid.index), Hydra's composition, the grid point bound from the chosen options, the typed
    config. For checking the exact command lines a launcher or sweep agent runs."""
    from hydra import compose as hcompose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    from scaling import cli, grid
    from scaling.config import parse
    cli.register()
    overrides = grid.expand_argv(["run.py", *args])[1:]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        conf = hcompose(config_name="config", overrides=overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(conf)
        try:
            cli.bind_grid(conf)
        finally:  # a later test must not find this launch's Hydra state (e.g. a resume hint's command line)
            HydraConfig.instance().cfg = None
        with open_dict(conf):
            del conf["hydra"]
        return parse(OmegaConf.to_container(conf, resolve=True))


RESUME_HARD = ["data.max_train_queries=8", "trainer.batch_size=2", "trainer.global_batch=4",
               "data.n_negatives=2", "model.lora.dropout=0.1", "eval.untrained=false"]
"""Where a resume can go wrong: 2 optimiser steps an epoch (of 2 micro-batches each), sampled
negatives drawn anew every epoch, and LoRA dropout drawing from the global random state."""


def max_weight_diff(a: Path, b: Path) -> float:
    """The largest absolute difference between two runs' trained weights (0.0: bitwise equal)."""
    from safetensors.torch import load_file
    wa, wb = (load_file(Path(d) / "checkpoint" / "weights.safetensors") for d in (a, b))
    assert wa.keys() == wb.keys()
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


def assert_same_weights(a: Path, b: Path) -> None:
    """Bitwise equal on the CPU: the same data, draws, dropout masks, optimiser and schedule."""
    diff = max_weight_diff(a, b)
    assert diff == 0.0, f"max abs weight difference {diff:.3e} between {a} and {b}"


@pytest.fixture(autouse=True)
def _no_signal_guard_left():
    """A test that owns the Slurm warning signal (scaling/signals.py) gives it back."""
    yield
    from scaling import signals
    signals.release()


@pytest.fixture(scope="session")
def pycode_dir(tmp_path_factory):
    """The built-in corpus, built once per session into a temporary cache."""
    from scaling.data import builtin
    return builtin.build(tmp_path_factory.mktemp("cache") / "pycode", quiet=True)


@pytest.fixture(scope="session")
def small_beir(pycode_dir, tmp_path_factory):
    """A 300-document BEIR folder (60 train, 30 test queries) cut from the built-in corpus."""
    from scaling.data import formats
    data = formats.load_beir(pycode_dir)
    rng = random.Random(0)
    train = rng.sample(sorted(data.qrels["train"]), 60)
    test = rng.sample(sorted(data.qrels["test"]), 30)
    keep = set(train + test)
    keep |= set(rng.sample(sorted(set(data.corpus) - keep), 300 - len(keep)))
    docs = [{"_id": d, "title": "", "text": data.corpus[d]} for d in sorted(keep)]
    queries = [{"_id": q, "text": data.queries[q]} for q in train + test]
    qrels = {"train": {q: {q: 1} for q in train}, "test": {q: {q: 1} for q in test}}
    out = tmp_path_factory.mktemp("beir") / "small"
    formats.write_beir(out, docs, queries, qrels)
    return out


def dev_cut(pycode_dir: Path, out: Path, seed: int, sizes: dict[str, int], docs: int = 200) -> Path:
    """A ``docs``-document BEIR folder of pycode's dev queries (none of small_beir's): ``sizes``
    {split: queries}, each query's own document kept, the rest drawn at random."""
    from scaling.data import formats
    data = formats.load_beir(pycode_dir)
    rng = random.Random(seed)
    qids = rng.sample(sorted(data.qrels["dev"]), sum(sizes.values()))
    keep = set(qids) | set(rng.sample(sorted(set(data.corpus) - set(qids)), docs - len(qids)))
    qrels, start = {}, 0
    for split, n in sizes.items():
        qrels[split] = {q: {q: 1} for q in qids[start:start + n]}
        start += n
    formats.write_beir(out, [{"_id": d, "title": "", "text": data.corpus[d]} for d in sorted(keep)],
                       [{"_id": q, "text": data.queries[q]} for q in qids], qrels)
    return out


def tiny_args(small_beir: Path, cache: Path) -> list[str]:
    """Overrides for a seconds-long run of the tiny model on the small BEIR folder."""
    return ["size=tiny", "data=beir", f"data.path={small_beir}", "budget=steps",
            "budget.steps=3", "trainer.batch_size=4", "logger=none", "eval.batch_size=32",
            f"cache_dir={cache}", "trainer.checkpoint_every=2", "eval.baselines=[]",
            "paradigm=dense", "trainer.global_batch=null"]   # the default is sparse, 8 queries a step


@pytest.fixture
def tiny_overrides(small_beir, tmp_path):
    return tiny_args(small_beir, tmp_path / "cache")


@pytest.fixture(scope="session")
def teacher_file(small_beir, tmp_path_factory):
    """Teacher scores for the small folder's train queries: the positive and 5 random candidates."""
    from scaling.data import formats
    data = formats.load_beir(small_beir)
    rng = random.Random(1)
    lines = []
    for qid, docs in data.qrels["train"].items():
        (pos,) = docs
        lines.append(f"{qid}\t{pos}\t{5 + rng.random():.4f}")
        for d in rng.sample(sorted(set(data.corpus) - {pos}), 5):
            lines.append(f"{qid}\t{d}\t{4 * rng.random():.4f}")
    path = tmp_path_factory.mktemp("teacher") / "scores.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_ce_dir(tmp_path_factory):
    """A random-init 2-layer BERT cross-encoder (one logit) with MiniLM's tokenizer, saved like HF does."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from scaling.backbone import minilm_dir
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=256, num_labels=1,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))  # no dropout: resume is exact
    out = tmp_path_factory.mktemp("tiny-ce")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(minilm_dir()).save_pretrained(out)
    return out
