"""KL, MarginMSE and FLOPS terms against hand computations on fixed tensors."""

import math

import pytest
import torch

from scaling.losses import LOSSES, LossInputs


def _x(teacher=True, step=0, max_steps=10):
    torch.manual_seed(3)
    B, G, D = 2, 3, 5
    q, d = torch.randn(B, D), torch.randn(B * G, D)
    t = torch.tensor([[3.0, 1.0, -1.0], [0.5, 2.0, 0.0]]) if teacher else None
    return LossInputs(q, d, q, d, q @ d.T, G, 0, 0, teacher=t, step=step, max_steps=max_steps)


def _softmax(v):
    m = max(v)
    e = [math.exp(a - m) for a in v]
    return [a / sum(e) for a in e]


@pytest.mark.parametrize("ts,tt", [(1.0, 1.0), (0.5, 2.0)])
def test_kl_matches_hand_computation(ts, tt):
    x = _x()
    want = 0.0
    for i in range(2):
        s = [float(x.q[i] @ x.d[i * 3 + j]) / ts for j in range(3)]
        t = [float(v) / tt for v in x.teacher[i]]
        ps, pt = _softmax(s), _softmax(t)
        want += sum(a * math.log(a / b) for a, b in zip(pt, ps))
    want /= 2
    got = LOSSES["kl"](student_temperature=ts, teacher_temperature=tt)(x).item()
    assert got == pytest.approx(want, rel=1e-5)


def test_kl_is_zero_when_student_equals_teacher():
    x = _x()
    x.teacher = x.own_scores().detach().clone()
    assert LOSSES["kl"]()(x).item() == pytest.approx(0.0, abs=1e-7)


def test_margin_mse_matches_hand_computation():
    x = _x()
    diffs = []
    for i in range(2):
        s = [float(x.q[i] @ x.d[i * 3 + j]) for j in range(3)]
        t = x.teacher[i].tolist()
        diffs += [((s[0] - s[j]) - (t[0] - t[j])) ** 2 for j in (1, 2)]
    assert LOSSES["margin_mse"]()(x).item() == pytest.approx(sum(diffs) / len(diffs), rel=1e-5)


def test_teacher_terms_without_scores_say_what_to_set():
    for name in ("kl", "margin_mse"):
        with pytest.raises(ValueError, match="data.teacher_scores"):
            LOSSES[name]()(_x(teacher=False))


@pytest.mark.parametrize("step,ramp", [(0, 0.0), (5, (5 / 7.5) ** 2), (8, 1.0), (10, 1.0)])
def test_flops_regulariser_and_its_quadratic_warmup(step, ramp):
    x = _x(step=step, max_steps=10)
    x.q, x.d = x.q.abs(), x.d.abs()
    def hand(m):
        cols = range(m.shape[1])
        return sum((sum(abs(float(m[i, j])) for i in range(m.shape[0])) / m.shape[0]) ** 2 for j in cols)
    want = ramp * (0.05 * hand(x.q) + 0.04 * hand(x.d))
    got = LOSSES["flops"](query_weight=0.05, doc_weight=0.04, warmup_fraction=0.75)(x).item()
    assert got == pytest.approx(want, rel=1e-5, abs=1e-9)


def test_runs_needing_a_teacher_fail_before_loading_anything(tmp_path):
    from scaling.config import DataConfig
    from scaling.parts import FlopsConfig, InfoNCEConfig, KLConfig, MarginMSEConfig
    from scaling.prepare import check_data_for
    with pytest.raises(ValueError, match="data.teacher_scores"):
        check_data_for([InfoNCEConfig(), KLConfig()], DataConfig())
    with pytest.raises(ValueError, match=r"none at .*absent.tsv.*build them"):
        check_data_for([KLConfig()], DataConfig(), tmp_path / "absent.tsv", ", or build them")
    scores = tmp_path / "t.tsv"
    scores.write_text("q\td\t1.0\n")
    check_data_for([MarginMSEConfig()], DataConfig(teacher_scores=str(scores)))
    check_data_for([InfoNCEConfig(), FlopsConfig()], DataConfig())
    from scaling.checks import loss_needs
    from scaling.config import LOSSES, RunConfig
    for name in ("kd", "cl+kd", "margin_mse"):  # every distilling term compares candidates
        with pytest.raises(ValueError, match=r"^data\.n_negatives: loss term '(kl|margin_mse)' compares"):
            loss_needs(RunConfig(loss=LOSSES[name]))
    loss_needs(RunConfig(loss=LOSSES["margin_mse"], data=DataConfig(n_negatives=1)))
    loss_needs(RunConfig())
