"""In-batch distillation: ``kl`` with ``in_batch`` against a hand computation over this device's B*G
documents (temperatures, a rank whose block is not first), the own-candidates KL unchanged, a clear
error without any-pair teacher scores, the collate's scorer matrix in batch order, and a parsed
``loss=kd loss.terms.0.in_batch=true`` run whose training step passes gradients."""

import math

import pytest
import torch

from scaling.losses import LOSSES, LossInputs
from tests.conftest import compose

B, G, D = 2, 3, 5


def _softmax(v):
    m = max(v)
    e = [math.exp(a - m) for a in v]
    return [a / sum(e) for a in e]


def _kl(teacher_rows, student_rows, ts, tt):
    """Mean over rows of sum_j p_t log(p_t / p_s), p = softmax(row / T)."""
    total = 0.0
    for t, s in zip(teacher_rows, student_rows):
        pt, ps = _softmax([v / tt for v in t]), _softmax([v / ts for v in s])
        total += sum(a * math.log(a / b) for a, b in zip(pt, ps))
    return total / len(teacher_rows)


def _x(before=0, after=0, teacher_all=True):
    """This rank's B queries and B*G documents, with ``before`` / ``after`` other ranks' blocks of
    B*G documents gathered around them (a world of 1 + before + after devices)."""
    torch.manual_seed(3)
    q, d = torch.randn(B, D), torch.randn(B * G, D)
    d_all = torch.cat([torch.randn(before * B * G, D), d, torch.randn(after * B * G, D)])
    teacher = torch.tensor([[3.0, 1.0, -1.0], [0.5, 2.0, 0.0]])
    t_all = torch.randn(B, B * G) * 2 if teacher_all else None
    return LossInputs(q, d, q, d_all, q @ d_all.T, G, 0, before * B * G, teacher=teacher,
                      teacher_all=t_all)


@pytest.mark.parametrize("ts,tt", [(1.0, 1.0), (0.5, 2.0)])
@pytest.mark.parametrize("before,after", [(0, 0), (1, 0), (1, 1)])
def test_in_batch_kl_matches_hand_computation_over_this_ranks_documents(ts, tt, before, after):
    x = _x(before, after)
    student = [[float(x.q[i] @ x.d[j]) for j in range(B * G)] for i in range(B)]  # this rank's docs
    want = _kl(x.teacher_all.tolist(), student, ts, tt)
    got = LOSSES["kl"](student_temperature=ts, teacher_temperature=tt, in_batch=True)(x).item()
    assert got == pytest.approx(want, rel=1e-5)


def test_own_candidates_kl_is_unchanged_and_differs_from_in_batch():
    x = _x(before=1)
    own = [[float(x.q[i] @ x.d[i * G + j]) for j in range(G)] for i in range(B)]
    got = LOSSES["kl"](student_temperature=0.5)(x).item()
    assert got == pytest.approx(_kl(x.teacher.tolist(), own, 0.5, 1.0), rel=1e-5)
    in_batch = LOSSES["kl"](student_temperature=0.5, in_batch=True)(x).item()
    assert abs(in_batch - got) > 1e-3


def test_in_batch_kl_without_any_pair_scores_says_what_to_configure():
    x = _x(teacher_all=False)
    with pytest.raises(ValueError, match=r"in_batch=true.*scorer"):
        LOSSES["kl"](in_batch=True)(x)
    LOSSES["kl"]()(x)  # the own-candidates KL reads the score file's teacher only


def _tiny(tmp_path, *overrides):
    from scaling import checkpoint
    from scaling.config import parse
    cfg = parse(compose(["size=tiny", "budget=steps", f"data.n_negatives={G - 1}", f"cache_dir={tmp_path}",
                         "paradigm=dense", "trainer.global_batch=null", *overrides]))
    torch.manual_seed(0)
    backbone, head, loss = checkpoint.build(cfg)
    return cfg, backbone, head, loss


def _pair(qid, docid):
    """A toy teacher score of any pair, a function of the two ids ("q1", "d7" -> 2 * 9 % 7 / 2)."""
    return (int(qid[1:]) + 1) * (int(docid[1:]) + 2) % 7 / 2


def _scorer(qids, docids):
    return torch.tensor([[_pair(q, d) for d in docids] for q in qids])


def _collate(cfg, tokenizer):
    from scaling.data.collate import tokenizers_for
    from scaling.data.datamodule import Collate
    from scaling.data.formats import Dataset
    data = Dataset("toy", corpus={f"d{i}": f"def f{i}(x): return x * {i}" for i in range(8)},
                   queries={f"q{i}": f"multiply by {i}" for i in range(3)})
    q_tok, d_tok = tokenizers_for(tokenizer, cfg.model, 16, 24)
    groups = [("q0", ["d0", "d3", "d5"], None), ("q1", ["d1", "d0", "d7"], None),
              ("q2", ["d2", "d6", "d4"], None)]
    return Collate(data, q_tok, d_tok, scorer=_scorer), Collate(data, q_tok, d_tok), groups


def test_collate_scores_every_query_against_every_batch_document(tmp_path):
    cfg, backbone, _, _ = _tiny(tmp_path)
    with_scorer, plain, groups = _collate(cfg, backbone.tokenizer)
    batch = with_scorer(groups)
    docids = [d for _, docs, _ in groups for d in docs]
    assert batch["docids"] == docids
    t = batch["teacher_all"]
    assert t.shape == (3, 3 * G) and t.dtype == torch.float32
    for i, (qid, _, _) in enumerate(groups):
        for j, did in enumerate(docids):
            assert float(t[i, j]) == pytest.approx(_pair(qid, did), rel=1e-6)
    assert "teacher_all" not in plain(groups)


def test_parsed_in_batch_kd_builds_the_term_and_its_training_step_passes_gradients(tmp_path):
    from scaling.losses.distill import KLDistill
    from scaling.module import RetrieverModule
    from scaling.parts import InfoNCEConfig, KLConfig
    cfg, backbone, head, loss = _tiny(tmp_path, "loss=kd", "loss.terms.0.in_batch=true")
    assert cfg.terms[0].in_batch and cfg.terms[0].needs_scorer() and cfg.terms[0].needs_teacher
    assert not KLConfig().needs_scorer() and not InfoNCEConfig().needs_scorer()
    (term,) = loss.terms
    assert isinstance(term, KLDistill) and term.in_batch
    for name, p in backbone.body.named_parameters():  # LoRA B starts at zero: move it so gradients flow
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.02)
    model = RetrieverModule(backbone.body, head, loss, max_steps=10)
    collate, _, groups = _collate(cfg, backbone.tokenizer)
    batch = collate(groups)

    x = model.step_inputs(batch)
    assert x.teacher_all is batch["teacher_all"]
    batch["teacher_all"] = batch["teacher_all"].flip(1)  # the loss reads the any-pair scores
    assert model.loss(model.step_inputs(batch))[0].item() != pytest.approx(model.loss(x)[0].item(), rel=1e-4)

    model.zero_grad(set_to_none=True)
    total = model.training_step(batch, 0)
    total.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    with pytest.raises(ValueError, match="in_batch"):
        model.training_step({k: v for k, v in batch.items() if k != "teacher_all"}, 0)
