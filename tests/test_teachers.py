"""Cross-encoder teachers: batched scoring and fine-tuning with resume (the report card: test_teacher_fusion.py)."""

from __future__ import annotations

import pytest
import torch

from scaling.data import formats
from teachers import crossencoder
from teachers.train import train_teacher


def test_batched_length_sorted_scores_equal_one_pair_at_a_time(tiny_ce_dir, small_beir):
    data = formats.load_beir(small_beir)
    model, tok = crossencoder.load(str(tiny_ce_dir))
    qids, docids = sorted(data.queries)[:5], sorted(data.corpus)[:6]
    pairs = [(data.queries[q], data.corpus[d]) for q in qids for d in docids]
    batched = crossencoder.score_pairs(model, tok, pairs, max_len=64, batch_size=7)
    with torch.inference_mode():
        single = [float(model(**crossencoder.encode_pairs(tok, [q], [d], 64)).logits[0, -1]) for q, d in pairs]
    assert batched == pytest.approx(single, abs=1e-4)
    assert len(set(round(s, 4) for s in batched)) > 1


def test_hub_ids_need_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="teacher.download=true"):
        crossencoder.resolve("cross-encoder/ms-marco-MiniLM-L-6-v2")


def _groups(data, n_neg=4):
    docs = sorted(data.corpus)
    return {q: {"positives": [p for p in judged], "negatives": [d for d in docs[:10] if d not in judged]}
            for q, judged in list(data.qrels["train"].items())[:16]}


def test_teacher_fine_tuning_learns_and_resumes(tiny_ce_dir, small_beir, tmp_path):
    from scaling.config import TeacherConfig, TeacherTrainConfig
    data = formats.load_beir(small_beir)
    groups = _groups(data)
    cfg = TeacherConfig(init=str(tiny_ce_dir), max_len=64,
                        train=TeacherTrainConfig(steps=4, batch_size=4, n_negatives=2, lr=1e-3, checkpoint_every=2))
    before, tok = crossencoder.load(str(tiny_ce_dir))
    out = train_teacher(data, groups, cfg, tmp_path / "t", depth=10)
    assert (out / "config.json").exists() and not (tmp_path / "t" / "ckpt").exists()
    after, _ = crossencoder.load(str(out))
    changed = [n for n, p in after.named_parameters() if not torch.equal(p, dict(before.named_parameters())[n])]
    assert "classifier.weight" in changed and len(changed) > 10
    # a run killed after step 2 resumes from ckpt/last.ckpt and ends where an unbroken one does
    cfg2 = TeacherConfig(init=str(tiny_ce_dir), max_len=64,
                         train=TeacherTrainConfig(steps=2, batch_size=4, n_negatives=2, lr=1e-3, checkpoint_every=2))
    import shutil
    train_teacher(data, groups, cfg2, tmp_path / "k", depth=10)
    # rebuild the state a kill at step 2 of 4 leaves: a checkpoint, no final model
    shutil.rmtree(tmp_path / "k" / "model")
    _half_checkpoint(data, groups, cfg, tmp_path / "k")
    resumed = train_teacher(data, groups, cfg, tmp_path / "k", depth=10)
    a, _ = crossencoder.load(str(resumed))
    for n, p in a.named_parameters():
        assert torch.allclose(p, dict(after.named_parameters())[n], atol=1e-5), n


def _half_checkpoint(data, groups, cfg, out):
    """Train 2 of cfg.train.steps steps with the same schedule and leave only ckpt/last.ckpt."""
    import dataclasses

    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch.utils.data import DataLoader

    from teachers.train import CrossEncoderModule, PairGroups
    L.seed_everything(0, verbose=False)
    model, tok = crossencoder.load(cfg.init, num_labels=1)
    t = cfg.train
    module = CrossEncoderModule(model.train(), tok, cfg.max_len, t.lr, t.warmup_ratio, t.steps)
    from scaling.data.resume import DataPosition, EpochSampler
    ds = PairGroups(data, groups, t.n_negatives, 10, 0)
    sampler = EpochSampler(len(ds), t.batch_size, 0)
    loader = DataLoader(ds, batch_size=t.batch_size, sampler=sampler, drop_last=True, collate_fn=module.collate)
    trainer = L.Trainer(accelerator="cpu", max_steps=2, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, gradient_clip_val=1.0,
                        callbacks=[DataPosition(sampler), ModelCheckpoint(dirpath=str(out / "ckpt"), every_n_train_steps=2,
                                                   save_last=True, save_top_k=0)])
    trainer.fit(module, loader)
    assert (out / "ckpt" / "last.ckpt").exists()
    del dataclasses
