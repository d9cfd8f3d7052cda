"""Pooling against hand computations, and EOS pooling under both padding sides."""

import pytest
import torch
import torch.nn.functional as F

from scaling.heads import HEADS
from scaling.heads.dense import POOLINGS, DenseHead, last_token_index


def test_last_token_index_both_sides():
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    left = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]])
    assert last_token_index(right).tolist() == [2, 4, 0]
    assert last_token_index(left).tolist() == [4, 4, 4]


@pytest.mark.parametrize("pooling", sorted(POOLINGS))
@pytest.mark.parametrize("normalize", [False, True])
def test_poolings_match_hand_computation(pooling, normalize):
    torch.manual_seed(0)
    hidden = torch.randn(3, 5, 4)
    lengths = [3, 5, 1]
    for side in ("left", "right"):
        mask = torch.zeros(3, 5, dtype=torch.long)
        for i, n in enumerate(lengths):
            if side == "right":
                mask[i, :n] = 1
            else:
                mask[i, 5 - n:] = 1
        out = DenseHead(pooling, normalize)(hidden, mask)
        for i, n in enumerate(lengths):
            rows = [hidden[i, j] for j in range(5) if mask[i, j]]
            if pooling == "eos":
                want = rows[-1]
            elif pooling == "cls":
                want = rows[0]
            elif pooling == "mean":
                want = sum(rows) / len(rows)
            else:
                want = sum(r / r.norm() for r in rows) / len(rows)
            if normalize:
                want = want / want.norm()
            torch.testing.assert_close(out[i], want)


def test_every_registered_head_is_built_from_config():
    from types import SimpleNamespace

    from scaling.backbone import llama3_tokenizer
    from scaling.parts import HEAD_CONFIGS
    backbone = SimpleNamespace(lm_head=torch.nn.Linear(8, 32, bias=False), hidden_size=8, vocab_size=32,
                               tokenizer=llama3_tokenizer())
    hidden, mask = torch.randn(2, 3, 8), torch.ones(2, 3, dtype=torch.long)
    ids, content = torch.randint(0, 32, (2, 3)), torch.tensor([[0, 1, 1], [0, 0, 1]])
    for name in HEADS:
        head = HEADS[name].from_config(HEAD_CONFIGS[name](), backbone)
        assert head.kind in ("dense", "sparse") and head(hidden, mask, ids, content).shape[0] == 2


def test_eos_encoding_same_under_left_and_right_padding():
    """A real tiny Llama: the EOS representation of a text does not depend on the padding side."""
    from scaling.backbone import load_backbone
    from scaling.config import ModelConfig
    from scaling.data.collate import Tokenize
    from scaling.losses import build_loss
    from scaling.parts import InfoNCEConfig
    from scaling.module import RetrieverModule
    torch.manual_seed(0)
    bb = load_backbone(ModelConfig(name="tiny", append_eos=True))
    module = RetrieverModule(bb.body, DenseHead("eos"), build_loss([InfoNCEConfig(temperature=0.02)])).eval()
    texts = ["a short one", "a much longer text with many more tokens in it than the first"]
    reps = {}
    for side in ("left", "right"):
        tok = Tokenize(bb.tokenizer, 32, "query: ", append_eos=True, padding_side=side)
        batch = tok(texts)
        last = last_token_index(batch["attention_mask"])
        assert (batch["input_ids"][torch.arange(2), last] == bb.tokenizer.eos_token_id).all()
        with torch.no_grad():
            reps[side] = module.encode(batch)
    torch.testing.assert_close(reps["left"], reps["right"], atol=1e-5, rtol=1e-4)
    alone = Tokenize(bb.tokenizer, 32, "query: ", append_eos=True)([texts[0]])
    with torch.no_grad():
        torch.testing.assert_close(module.encode(alone)[0], reps["right"][0], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(F.normalize(reps["left"][0], dim=0), F.normalize(reps["left"][1], dim=0))
