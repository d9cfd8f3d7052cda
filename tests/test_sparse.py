"""The sparse head equals a naive unchunked computation, is non-negative, prunes at encode time."""

import pytest
import torch

from scaling.heads.sparse import SparseHead


def _naive(lm_head, hidden, mask, scale):
    logits = lm_head(hidden) * scale  # (B, L, V) in one go
    acts = torch.log1p(torch.relu(logits)) * mask.unsqueeze(-1)
    return acts.max(dim=1).values


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
@pytest.mark.parametrize("scale_logits", [True, False])
def test_chunked_equals_naive_and_is_nonnegative(chunk, scale_logits):
    torch.manual_seed(0)
    lm_head = torch.nn.Linear(16, 50, bias=False)
    hidden = torch.randn(3, 7, 16)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [0] * 5 + [1] * 2])
    head = SparseHead(lm_head, 16, 50, scale_logits=scale_logits, chunk=chunk)
    out = head(hidden, mask)
    want = _naive(lm_head, hidden, mask, 16 ** -0.25 if scale_logits else 1.0)
    torch.testing.assert_close(out, want)
    assert out.shape == (3, 50) and (out >= 0).all() and (out > 0).any()


@pytest.mark.parametrize("recompute", [True, False])
def test_gradients_match_naive(recompute):
    """Checkpointed blocks (recomputed in the backward) or kept ones: the naive head's gradients,
    for the input and the projection; only the checkpointed head runs the projection again."""
    torch.manual_seed(1)
    lm_head = torch.nn.Linear(8, 20, bias=False)
    calls = []
    lm_head.register_forward_hook(lambda *_: calls.append(1))
    hidden = torch.randn(2, 9, 8, requires_grad=True)
    mask = torch.tensor([[1] * 9, [1] * 5 + [0] * 4])
    SparseHead(lm_head, 8, 20, chunk=2, recompute=recompute)(hidden, mask).sum().backward()
    assert len(calls) == 5 * (2 if recompute else 1)  # 5 blocks of 2 positions
    g_chunked, w_chunked = hidden.grad.clone(), lm_head.weight.grad.clone()
    hidden.grad = lm_head.weight.grad = None
    _naive(lm_head, hidden, mask, 8 ** -0.25).sum().backward()
    torch.testing.assert_close(g_chunked, hidden.grad)
    torch.testing.assert_close(w_chunked, lm_head.weight.grad)


def test_top_k_pruning_by_role_and_stats():
    head = SparseHead(torch.nn.Linear(4, 6, bias=False), 4, 6, query_top_k=None, doc_top_k=2)
    reps = torch.tensor([[0.0, 3.0, 1.0, 2.0, 0.5, 0.0]])
    assert head.postprocess(reps, "query").tolist() == reps.tolist()
    assert head.postprocess(reps, "doc").tolist() == [[0.0, 3.0, 0.0, 2.0, 0.0, 0.0]]
    q = torch.tensor([[1.0, 0, 0, 2.0, 0, 0], [0, 0, 0, 1.0, 0, 0]])
    d = torch.tensor([[1.0, 1.0, 0, 0, 0, 0]])
    stats = head.batch_stats(q, d)
    assert stats["q_nonzero"].item() == 1.5 and stats["d_nonzero"].item() == 2.0
    assert stats["flops"].item() == pytest.approx(0.5 * 1.0)  # only term 0 is shared


def test_skip_sink_pools_without_the_first_real_position():
    """Dense (cls reads the next token, mean leaves the first out) and sparse (its logits are not in
    the max), under right and left padding alike; the model still sees the token."""
    from scaling.heads.dense import DenseHead
    hidden = torch.tensor([[[9.0, 0.0], [1.0, 2.0], [3.0, 4.0], [0.0, 0.0]],
                           [[0.0, 0.0], [9.0, 0.0], [5.0, 6.0], [7.0, 8.0]]])  # (2, 4, 2)
    mask = torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1]])
    cls = DenseHead("cls", skip_sink=True)(hidden, mask)
    assert cls.tolist() == [[1.0, 2.0], [5.0, 6.0]]
    mean = DenseHead("mean", skip_sink=True)(hidden, mask)
    assert mean.tolist() == [[2.0, 3.0], [6.0, 7.0]]
    assert DenseHead("cls")(hidden, mask).tolist() == [[9.0, 0.0], [9.0, 0.0]]
    lm = torch.nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        lm.weight.copy_(torch.eye(3, 2))  # logit v = hidden[v] (v < 2), 0 for v = 2
    sparse = SparseHead(lm, 2, 3, scale_logits=False, skip_sink=True)(hidden, mask)
    want = torch.log1p(torch.tensor([[3.0, 4.0, 0.0], [7.0, 8.0, 0.0]]))
    torch.testing.assert_close(sparse, want)
    with_sink = SparseHead(lm, 2, 3, scale_logits=False)(hidden, mask)
    assert with_sink[0, 0].item() == pytest.approx(float(torch.log1p(torch.tensor(9.0))))


def test_a_head_without_a_kind_is_refused():
    from scaling.heads.base import Head, register
    with pytest.raises(TypeError, match="kind"):
        @register("sparse")
        class Forgetful(Head):  # a new sparse head that forgot to say so
            def pool(self, hidden, mask):
                return hidden.amax(1)

            @classmethod
            def from_config(cls, cfg, backbone):
                return cls()


def test_the_plan_counts_the_heads_recompute_only_when_it_runs():
    from scaling.heads import head_recomputes
    from scaling.parts import SparseHeadConfig
    assert head_recomputes(SparseHeadConfig(lexical=False))
    assert not head_recomputes(SparseHeadConfig(lexical=False, recompute=False))
    assert not head_recomputes(SparseHeadConfig(lexical=True))  # (B, L, L) logits: nothing checkpointed
