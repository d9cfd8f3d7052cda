"""Corpus encoding: sharded blocks equal one pass for every head kind, a killed shard resumes,
a store from other settings is refused; evaluation-only lengths and query instructions apply."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import compose

from scaling.config import parse
from scaling.data.collate import tokenizers_for
from scaling.index import encode
from scaling.index.export import EXPORTERS

TEXTS = [("def f%d(x): return x * %d  # " % (i, i)) + "word " * (i % 7) for i in range(23)]


def _module(paradigm: str):
    from scaling.checkpoint import inference_model
    torch.manual_seed(0)
    prune = ["paradigm.head.doc_top_k=32"] if paradigm == "sparse" else []
    cfg = parse(compose(["size=tiny", f"paradigm={paradigm}"] + prune))
    module, tokenizer = inference_model(cfg)
    q_tok, d_tok = tokenizers_for(tokenizer, cfg.model, 16, 24)
    return cfg, module.eval(), tokenizer, q_tok, d_tok


def _dense(x):
    return x.toarray() if sp.issparse(x) else x


@pytest.mark.parametrize("kind", sorted(EXPORTERS))
def test_sharded_blocks_equal_one_pass_and_a_killed_shard_resumes(kind, tmp_path):
    cfg, module, _, _, d_tok = _module(kind)
    rows = EXPORTERS[kind].rows
    fn = encode.encoder_fn(module, "doc")
    whole = encode.encode_texts(fn, d_tok, TEXTS, batch_size=4, progress=False, rows=rows)
    naive = encode.encode_texts(fn, d_tok, TEXTS, batch_size=4, progress=False, rows=rows, by_length=False)
    assert whole.shape[0] == len(TEXTS)
    np.testing.assert_allclose(_dense(whole), _dense(naive), atol=1e-5)  # input order either way
    if kind == "sparse":
        assert sp.issparse(whole) and whole.getnnz(axis=1).max() <= 32  # doc_top_k, never (N, V) dense

    store, meta = tmp_path / "store", {"weights": "w0"}
    calls = []

    def counted(tokens):
        calls.append(tokens["input_ids"].shape[0])
        return fn(tokens)
    args = (d_tok, TEXTS, store, rows, 5)  # 23 texts -> 5 blocks of <= 5
    assert encode.encode_blocks(counted, *args, (0, 2), meta, 4, progress=False) == [1, 3]
    assert sum(calls) == 5 + 5 + 3  # blocks 0, 2, 4

    seen = []

    def dies_in_block_3(tokens):
        seen.append(1)
        if len(seen) > 2:  # block 1 is 2 batches of 4+1: die inside block 3
            raise KeyboardInterrupt
        return fn(tokens)
    with pytest.raises(KeyboardInterrupt):
        encode.encode_blocks(dies_in_block_3, *args, (1, 2), meta, 4, progress=False)
    assert sorted(p.name for p in store.iterdir()) == ["block-000000" + rows.suffix, "block-000001" + rows.suffix,
                                                        "block-000002" + rows.suffix, "block-000004" + rows.suffix,
                                                        "meta.json"]  # no half-written block
    calls.clear()
    assert encode.encode_blocks(counted, *args, (1, 2), meta, 4, progress=False) == []
    assert sum(calls) == 5  # only block 3 was left
    merged = rows.stack(list(encode.iter_blocks(store, rows, len(TEXTS), 5)))
    np.testing.assert_allclose(_dense(merged), _dense(whole), atol=1e-5)

    with pytest.raises(encode.StoreMismatch, match="weights"):
        encode.encode_blocks(counted, *args, (0, 1), {"weights": "other"}, 4, progress=False)


def test_shard_specs():
    from scaling.config import ConfigError, EvalConfig
    from scaling.launch import launched_by_rank, resolve_shard
    assert resolve_shard("1/3", {}) == (1, 3)
    assert resolve_shard("auto", {}) == (0, 1)
    assert resolve_shard("auto", {"RANK": "2", "WORLD_SIZE": "4"}) == (2, 4)
    slurm = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "4", "SLURM_ARRAY_TASK_COUNT": "3", "RANK": "0",
             "WORLD_SIZE": "1"}
    assert resolve_shard(None, slurm) == (1, 3) and not launched_by_rank(slurm)
    assert launched_by_rank({"RANK": "0", "WORLD_SIZE": "2"})
    with pytest.raises(ConfigError, match="eval.shard"):
        EvalConfig(shard="3/3")
    with pytest.raises(ConfigError, match="eval.precision"):
        EvalConfig(precision="fp8")
    assert EvalConfig(precision=32).precision == "32"


def test_long_documents_and_query_instruction_apply_at_evaluation():
    """eval.doc_len is independent of training: an 8192-token document is encoded whole."""
    cfg, module, tokenizer, _, _ = _module("dense")
    long_doc = "alpha beta gamma delta " * 3000  # > 8192 tokens
    q_tok, d_tok = tokenizers_for(tokenizer, cfg.model, 32, 8192, "Given a query, find code: ")
    ids = d_tok.ids([long_doc])[0]
    assert len(ids) == 8192
    _, short = tokenizers_for(tokenizer, cfg.model, 32, 64)
    fn = encode.encoder_fn(module, "doc")
    full = encode.encode_texts(fn, d_tok, [long_doc, "x"], progress=False)
    cut = encode.encode_texts(fn, short, [long_doc, "x"], progress=False)
    assert not np.allclose(full[0], cut[0], atol=1e-4) and np.allclose(full[1], cut[1], atol=1e-5)

    plain, _ = tokenizers_for(tokenizer, cfg.model, 32, 64)
    with_inst = q_tok.ids(["sort a list"])[0]
    want = tokenizer("query: Given a query, find code: sort a list", add_special_tokens=True)["input_ids"]
    assert with_inst == want[:32] and with_inst != plain.ids(["sort a list"])[0]


def test_bf16_encoding_stays_close_to_float32():
    _, module, _, _, d_tok = _module("dense")
    full = encode.encode_texts(encode.encoder_fn(module, "doc"), d_tok, TEXTS, progress=False)
    half = encode.encode_texts(encode.encoder_fn(module, "doc", "cpu", "bf16"), d_tok, TEXTS, progress=False)
    assert half.dtype == np.float32 and not np.array_equal(full, half)  # autocast really ran in bf16
    cos = (full * half).sum(1) / np.linalg.norm(full, axis=1) / np.linalg.norm(half, axis=1)
    assert cos.min() > 0.99, cos.min()


def test_learned_positions_cap_the_evaluation_length(capsys):
    """BERT-style backbones have a table of positions (MiniLM's 512) and fail past it: evaluation
    cuts to the table, saying so; rotary backbones (Llama) read any eval.doc_len."""
    from transformers import BertConfig, BertModel, LlamaConfig, LlamaModel, RobertaConfig, RobertaModel

    from scaling.evaluation.encoder import position_limit, readable
    small = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, vocab_size=99)
    bert = BertModel(BertConfig(max_position_embeddings=40, **small))
    roberta = RobertaModel(RobertaConfig(max_position_embeddings=42, pad_token_id=1, **small))
    llama = LlamaModel(LlamaConfig(max_position_embeddings=40, num_key_value_heads=2, **small))
    assert (position_limit(bert), position_limit(roberta), position_limit(llama)) == (40, 40, None)
    capsys.readouterr()
    assert readable(bert, 1024, "document") == 40 and "documents cut at 40, not 1024" in capsys.readouterr().out
    assert readable(bert, 32, "document") == 32 and readable(llama, 8192, "document") == 8192
    assert capsys.readouterr().out == ""
    ids = torch.randint(2, 99, (1, 40))
    bert(input_ids=ids)  # the longest it places ...
    with pytest.raises((RuntimeError, IndexError)):  # ... and one more fails, as an uncut eval.doc_len did
        bert(input_ids=torch.randint(2, 99, (1, 41)))
