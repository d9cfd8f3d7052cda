"""Each sparse-head switch against a naive computation: the lead left out of the pooling, the
lexical mask, the folded vocabulary, impact rounding and the spread statistics."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from scaling.heads import head_flops
from scaling.heads.sparse import SparseHead, spread
from scaling.parts import DenseHeadConfig, SparseHeadConfig


def _naive(lm_head, hidden, pooled, scale=1.0, ids=None):
    """log1p(relu(max over pooled positions of the full logits)); with ``ids``, every term that is
    not one of the pooled positions' own tokens is 0."""
    logits = lm_head(hidden) * scale  # (B, L, V)
    B, L, V = logits.shape
    out = torch.zeros(B, V)
    for b in range(B):
        for v in range(V):
            at = [t for t in range(L) if pooled[b, t]]
            if ids is not None and v not in {int(ids[b, t]) for t in at}:
                continue
            if at:
                out[b, v] = torch.log1p(torch.relu(max(logits[b, t, v] for t in at)))
    return out


# ---------------------------------------------------------------- the lead (prefix + start tokens)

@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_content_mask_leaves_out_exactly_the_prefix_and_start_tokens(padding_side):
    from scaling.backbone import llama3_tokenizer
    from scaling.data.collate import Tokenize
    tok = llama3_tokenizer()
    texts = ["def foo(x): return x", "a", "class Parser(Base): pass and more words here"]
    t = Tokenize(tok, 12, "passage: ", padding_side=padding_side)
    batch = t(texts)
    lead = tok("passage:")["input_ids"]  # BOS + the prefix's tokens, the space merged into the text
    for i, text in enumerate(texts):
        ids = tok("passage: " + text, truncation=True, max_length=12)["input_ids"]
        row, mask, content = (batch[k][i].tolist() for k in ("input_ids", "attention_mask", "content_mask"))
        real = [x for x, m in zip(row, mask) if m]
        assert real == ids
        kept = [x for x, c in zip(row, content) if c]
        assert kept == ids[len(lead):]  # naive: everything after the lead
        assert all(m >= c for m, c in zip(mask, content))
    none = Tokenize(tok, 12, "")(texts)  # no prefix: only BOS is left out
    assert (none["attention_mask"].sum(1) - none["content_mask"].sum(1)).tolist() == [1, 1, 1]


def test_skip_prefix_pools_only_content_positions():
    torch.manual_seed(0)
    lm = torch.nn.Linear(6, 11, bias=False)
    hidden = torch.randn(2, 5, 6)
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    content = torch.tensor([[0, 0, 1, 1, 0], [0, 0, 0, 1, 1]])
    ids = torch.randint(0, 11, (2, 5))
    out = SparseHead(lm, 6, 11, scale_logits=False, skip_prefix=True)(hidden, mask, ids, content)
    torch.testing.assert_close(out, _naive(lm, hidden, content))
    full = SparseHead(lm, 6, 11, scale_logits=False)(hidden, mask, ids, content)
    torch.testing.assert_close(full, _naive(lm, hidden, mask))
    with pytest.raises(ValueError, match="content_mask"):
        SparseHead(lm, 6, 11, skip_prefix=True)(hidden, mask, ids)


# ---------------------------------------------------------------- lexical

@pytest.mark.parametrize("masked_lm", [False, True])
def test_lexical_equals_naive_and_keeps_only_input_tokens(masked_lm):
    torch.manual_seed(1)
    proj = torch.nn.Linear(8, 40, bias=masked_lm)
    lm = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.GELU(), proj) if masked_lm else proj
    hidden = torch.randn(3, 6, 8)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [0] * 3 + [1] * 3])
    content = mask.clone()
    content[:, 0] = 0
    ids = torch.randint(0, 40, (3, 6))
    ids[0, 2] = ids[0, 4]  # a repeated token: one term, the max over both its positions' logits
    head = SparseHead(lm, 8, 40, scale_logits=True, skip_prefix=True, lexical=True)
    out = head(hidden, mask, ids, content)
    torch.testing.assert_close(out, _naive(lm, hidden, content, 8 ** -0.25, ids))
    for b in range(3):
        own = {int(ids[b, t]) for t in range(6) if content[b, t]}
        assert set(out[b].nonzero().flatten().tolist()) <= own
    planned = head_flops(SparseHeadConfig(lexical=True), 8, 40, transform=masked_lm)
    assert planned(6) == 2 * 8 * 6 + (2 * 8 * 8 if masked_lm else 0)  # the text's own rows only
    assert head_flops(SparseHeadConfig(lexical=False), 8, 40)(6) == 2 * 8 * 40  # the whole vocabulary
    assert head_flops(DenseHeadConfig(), 8, 40)(6) == 0


def test_lexical_gradients_match_naive():
    torch.manual_seed(2)
    lm = torch.nn.Linear(4, 30, bias=False)
    hidden = torch.randn(2, 5, 4, requires_grad=True)
    mask = torch.tensor([[1] * 5, [1] * 3 + [0] * 2])
    ids = torch.randint(0, 30, (2, 5))
    SparseHead(lm, 4, 30, scale_logits=False, lexical=True)(hidden, mask, ids).sum().backward()
    got = hidden.grad.clone()
    hidden.grad = None
    _naive(lm, hidden, mask, 1.0, ids).sum().backward()
    torch.testing.assert_close(got, hidden.grad)


# ---------------------------------------------------------------- folding

def test_fold_takes_the_max_over_the_ids_of_one_term():
    from scaling.backbone import llama3_tokenizer
    from scaling.heads.vocab import fold, token_names
    tok = llama3_tokenizer()
    V = 2000
    index, names = fold(tok, V)
    assert index.shape == (V,) and len(names) == int(index.max()) + 1 < V
    assert len(set(names)) == len(names) and not any(c.isspace() for n in names for c in n)
    a, b = tok.convert_tokens_to_ids("Ġthe"), tok.convert_tokens_to_ids("the")
    assert a < V and b < V and index[a] == index[b] and names[index[a]] == "the"
    raw = token_names(tok, V)
    assert raw[a] != raw[b]
    torch.manual_seed(3)
    lm = torch.nn.Linear(4, V, bias=False)
    hidden, mask = torch.randn(2, 3, 4), torch.ones(2, 3, dtype=torch.long)
    head = SparseHead(lm, 4, V, scale_logits=False, tokenizer=tok, fold_vocab=True)
    out = head(hidden, mask)
    assert out.shape == (2, len(names)) and head.term_names() == names
    unfolded = _naive(lm, hidden, mask)
    want = torch.zeros(2, len(names))
    for v in range(V):  # naive: a folded term's weight is the max over its ids
        want[:, index[v]] = torch.maximum(want[:, index[v]], unfolded[:, v])
    torch.testing.assert_close(out, want)


# ---------------------------------------------------------------- export and statistics

def test_rounding_floors_or_rounds_impacts():
    from scaling.index.impact import quantise_csr
    w = sp.csr_matrix(np.array([[0.004, 0.006, 0.0149, 0.0151, 1.0]], np.float32))
    assert quantise_csr(w, 100, "floor").toarray().tolist() == [[0, 0, 1, 1, 100]]
    assert quantise_csr(w, 100, "round").toarray().tolist() == [[0, 1, 1, 2, 100]]
    with pytest.raises(ValueError, match="rounding"):
        quantise_csr(w, 100, "ceil")


def test_spread_statistics_equal_a_direct_computation():
    torch.manual_seed(4)
    d = torch.relu(torch.randn(6, 9))
    d[:, 0] = 1.0  # a term every document has
    got = spread(d)
    unit = d / d.norm(dim=1, keepdim=True)
    pairs = [float(unit[i] @ unit[j]) for i in range(6) for j in range(6) if i != j]
    assert got["d_cosine"].item() == pytest.approx(sum(pairs) / len(pairs), rel=1e-5)
    common = [v for v in range(9) if (d[:, v] > 0).sum() >= 3]
    assert 0 in common
    assert got["common_share"].item() == pytest.approx(float(d[:, common].sum() / d.sum()), rel=1e-5)
    same = spread(torch.ones(4, 5))
    assert same["d_cosine"].item() == pytest.approx(1.0) and same["common_share"].item() == pytest.approx(1.0)


def test_export_reports_corpus_spread(tmp_path):
    """The impact exporter's corpus statistics equal the ones computed on its quantised rows."""
    from types import SimpleNamespace

    from scaling.config import EvalConfig
    from scaling.index.export import ImpactExport
    from scaling.index.impact import quantise_csr
    docs = sp.random(40, 25, density=0.3, random_state=1, format="lil", dtype=np.float32)
    docs[:, 3] = 0.5  # common to all
    docs = docs.tocsr()
    head = SimpleNamespace(term_names=lambda: [f"t{i}" for i in range(25)])
    exp = ImpactExport(EvalConfig(rounding="round"), head)
    stats = exp.build(lambda: iter([docs[:17], docs[17:]]), [f"d{i}" for i in range(40)], tmp_path / "idx")
    q = quantise_csr(docs, 100, "round").toarray().astype(np.float64)
    got = spread(torch.tensor(q))
    assert stats["d_cosine"] == pytest.approx(got["d_cosine"].item(), rel=1e-6)
    assert stats["common_share"] == pytest.approx(got["common_share"].item(), rel=1e-6)
    assert stats["d_nonzero"] == pytest.approx((q > 0).sum() / 40)


def test_a_checkpoint_written_before_the_switches_reads_as_trained(tmp_path):
    """A run_config.json without skip_prefix/lexical/fold was trained without them."""
    import json

    from scaling.checkpoint import read_config
    from scaling.config import parse, to_dict
    from tests.conftest import compose
    for paradigm in ("sparse", "dense"):
        data = to_dict(parse(compose([f"paradigm={paradigm}"])))
        for key in ("skip_prefix", "lexical", "fold"):
            data["paradigm"]["head"].pop(key, None)
        (tmp_path / "run_config.json").write_text(json.dumps(data))
        head = read_config(tmp_path).paradigm.head
        assert head.skip_prefix is False
        if paradigm == "sparse":
            assert head.lexical is False and head.fold is False
