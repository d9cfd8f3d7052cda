"""MNTP masks about a fifth of the real tokens (never the first), its loss is a next-token
cross-entropy at the masked positions only, it falls on a tiny corpus, and the adapted model is
saved once and loaded by the run."""

import dataclasses
import shutil

import pytest
import torch

from scaling.mntp import IGNORE, mask_tokens, mntp_loss


def test_mask_tokens_masks_a_fifth_of_real_positions_but_the_first():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (64, 50))
    mask = torch.ones(64, 50, dtype=torch.long)
    mask[::2, 40:] = 0  # right padding
    mask[1::4, :10] = 0  # left padding
    inputs, labels = mask_tokens(ids, mask, 0.2, 3, g)
    chosen = labels != IGNORE
    first = mask.float().argmax(1)
    assert not chosen[torch.arange(64), first].any() and not chosen[mask == 0].any()
    frac = chosen.sum().item() / (mask.sum().item() - 64)
    assert 0.17 < frac < 0.23
    assert (inputs[chosen] == 3).all() and (labels[chosen] == ids[chosen]).all()
    assert (inputs[~chosen] == ids[~chosen]).all()


def test_mntp_loss_is_next_token_cross_entropy_at_masked_positions():
    torch.manual_seed(0)
    lm = torch.nn.Linear(4, 11, bias=False)
    hidden = torch.randn(2, 5, 4)
    labels = torch.full((2, 5), IGNORE)
    labels[0, 2], labels[1, 4], labels[1, 1] = 7, 3, 9
    got = mntp_loss(hidden, lm, labels)
    terms = [torch.nn.functional.cross_entropy(lm(hidden[b, i - 1])[None], torch.tensor([t]))
             for b, i, t in [(0, 2, 7), (1, 1, 9), (1, 4, 3)]]
    assert got.detach().item() == pytest.approx(float(sum(terms) / 3), rel=1e-5)


def test_mntp_loss_falls_on_a_tiny_corpus_and_the_run_loads_the_adapted_model(tmp_path, small_beir):
    from scaling import checkpoint, mntp, prepare
    from scaling.config import parse
    from tests.conftest import compose
    cfg = parse(compose(["size=tiny", "data=beir", f"data.path={small_beir}", f"cache_dir={tmp_path}",
                         "model.bidirectional=true", "model.mntp.steps=40", "model.mntp.batch_size=4",
                         "model.mntp.max_len=24", "model.mntp.lr=3e-3"]))
    texts = ["def add(a, b): return a + b", "class Stack: push pop peek"]
    summary = mntp.adapt(cfg.model, texts, tmp_path / "adapted", cfg.cache_dir, log=lambda m: None)
    first, last = sum(summary["losses"][:5]) / 5, summary["last_loss"]
    # a random tiny model's frozen LM head bounds its logits near ln(V) = 11.8; the loss still falls
    assert last < first - 0.15
    assert (tmp_path / "adapted" / "config.json").exists()
    # building a model only reads a starting point: unprepared, it is an error naming the command,
    # and the MNTP trainer is never called (a tripwire)
    from scaling import start
    calls = []
    real_adapt = mntp.adapt
    mntp.adapt = lambda *a, **k: calls.append(a)
    try:
        with pytest.raises(start.StartMissing, match=r"steps=\[mntp\] size=tiny model.bidirectional=true model.mntp.steps=40"):
            checkpoint.build(cfg)
        with pytest.raises(start.StartMissing):
            checkpoint.inference_model(cfg)
        assert calls == [] and not start.ready(cfg)
    finally:
        mntp.adapt = real_adapt
    # the preparation step makes it (here: the folder adapted above, copied where the key puts it)
    shutil.copytree(tmp_path / "adapted", prepare.mntp_dir(cfg))
    described = start.prepare(cfg)
    assert described["kind"] == "mntp" and described["made_by"]["mntp_steps"] == 40
    model_cfg = start.model_config(cfg)
    assert model_cfg.path == str(prepare.mntp_dir(cfg)) and model_cfg.num_layers is None
    stamp = (prepare.mntp_dir(cfg) / "mntp.json").stat().st_mtime_ns
    mntp.adapt = lambda *a, **k: calls.append(a)
    try:
        backbone, head, _ = checkpoint.build(cfg)
    finally:
        mntp.adapt = real_adapt
    assert calls == [] and (prepare.mntp_dir(cfg) / "mntp.json").stat().st_mtime_ns == stamp
    fresh = checkpoint.build(dataclasses.replace(cfg, model=dataclasses.replace(
        cfg.model, bidirectional=True, mntp=dataclasses.replace(cfg.model.mntp, steps=0))))[0]
    w_adapted = dict(backbone.body.model.base_model.model.named_parameters()) if hasattr(
        backbone.body.model, "base_model") else dict(backbone.body.model.named_parameters())
    w_fresh = dict(fresh.body.model.named_parameters())
    diff = [k for k in w_fresh if "lora" not in k and k.replace("base_model.model.", "") in
            {n.replace("base_model.model.", "") for n in w_adapted}]
    assert diff  # the same parameter names
    adapted = {n.replace("base_model.model.", ""): p for n, p in w_adapted.items()}
    changed = [k for k in diff if not torch.equal(adapted[k.replace("base_model.model.", "")], w_fresh[k])]
    assert changed  # MNTP moved the backbone's weights


def test_mntp_needs_bidirectional_attention():
    from scaling.config import ModelConfig, MNTPConfig
    from scaling.schema import ConfigError
    with pytest.raises(ConfigError, match="model.mntp.steps"):
        ModelConfig(mntp=MNTPConfig(steps=10))
