"""Every loss term against an independent (loop-and-math) computation on fixed tensors."""

import math

import pytest
import torch

from scaling.losses import LOSSES, LossInputs, build_loss
from scaling.parts import FlopsConfig, InfoNCEConfig


def _inputs(B=3, G=3, D=4, seed=0):
    torch.manual_seed(seed)
    q, d = torch.randn(B, D), torch.randn(B * G, D)
    return LossInputs(q, d, q, d, q @ d.T, G, 0, 0)


def _hand_ce(logits_row, target):
    m = max(logits_row)
    return -(logits_row[target] - m - math.log(sum(math.exp(v - m) for v in logits_row)))


@pytest.mark.parametrize("temperature", [0.05, 1.0])
def test_infonce_matches_hand_computation(temperature):
    x = _inputs()
    B, G = 3, 3
    want = 0.0
    for i in range(B):
        row = [sum(x.q[i, k].item() * x.d[j, k].item() for k in range(4)) / temperature
               for j in range(B * G)]
        want += _hand_ce(row, i * G)
    want /= B
    got = LOSSES["infonce"](temperature=temperature)(x)
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_infonce_bidirectional_adds_doc_to_query_direction():
    x = _inputs()
    B, G, t = 3, 3, 0.1
    d2q = 0.0
    for i in range(B):
        pos = x.d[i * G]
        row = [float(pos @ x.q[j]) / t for j in range(B)]
        d2q += _hand_ce(row, i)
    d2q /= B
    q2d = LOSSES["infonce"](temperature=t)(x).item()
    got = LOSSES["infonce"](temperature=t, bidirectional=True)(x).item()
    assert got == pytest.approx((q2d + d2q) / 2, rel=1e-5)


def test_infonce_uses_offsets_into_gathered_rows():
    """With another rank's rows in front, the targets shift by the offset."""
    x = _inputs(B=2, G=2)
    other_q, other_d = torch.randn(2, 4), torch.randn(4, 4)
    q_all, d_all = torch.cat([other_q, x.q]), torch.cat([other_d, x.d])
    y = LossInputs(x.q, x.d, q_all, d_all, x.q @ d_all.T, 2, 2, 4)
    t = 0.5
    want = sum(_hand_ce([float(x.q[i] @ d_all[j]) / t for j in range(8)], 4 + 2 * i)
               for i in range(2)) / 2
    assert LOSSES["infonce"](temperature=t)(y).item() == pytest.approx(want, rel=1e-5)


def test_weighted_loss_sums_terms_and_reports_each():
    x = _inputs()
    loss = build_loss([InfoNCEConfig(weight=0.25, temperature=1.0)])
    total, parts = loss(x)
    assert total.item() == pytest.approx(0.25 * parts["infonce"].item())


def test_a_term_used_twice_keeps_its_own_weight_and_label():
    """Two InfoNCE terms at different temperatures: each is logged and weighted on its own."""
    x = _inputs()
    loss = build_loss([InfoNCEConfig(weight=0.25, temperature=1.0), InfoNCEConfig(weight=2.0, temperature=0.5),
                       FlopsConfig(weight=0.0)])
    total, parts = loss(x)
    assert list(parts) == ["infonce.0", "infonce.1", "flops"]
    alone = [LOSSES["infonce"](temperature=t)(x).item() for t in (1.0, 0.5)]
    assert parts["infonce.0"].item() == pytest.approx(alone[0]) and parts["infonce.1"].item() == pytest.approx(alone[1])
    assert total.item() == pytest.approx(0.25 * alone[0] + 2.0 * alone[1], rel=1e-6)


def test_every_term_class_has_a_typed_config_and_back():
    from scaling.parts import TERM_CONFIGS
    assert set(LOSSES) == set(TERM_CONFIGS)
    for name, cfg_cls in TERM_CONFIGS.items():  # each config's fields are its class's arguments
        assert LOSSES[name](**cfg_cls(**({"temperature": 0.1} if name == "infonce" else {})).kwargs()).name == name
    with pytest.raises(TypeError, match="typed config"):
        from scaling.losses.base import register
        register("nope")(type("Nope", (), {}))
