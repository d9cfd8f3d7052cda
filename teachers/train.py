"""Fine-tune a cross-encoder teacher offline: listwise softmax cross-entropy over BM25 groups.

No cross-encoder weights ship in any package here, so the teacher starts from an encoder
(by default the packaged all-MiniLM-L6-v2) with a fresh one-logit head, and learns to put each
training query's positive above its BM25 negatives: for a group (q, d+, d1-..dn-),
loss = -log softmax([s(q,d+), s(q,d1-), ...])[0] (the usual cross-encoder recipe).

What goes to disk, under ``out_dir``: ``ckpt/last.ckpt`` (Lightning; a killed run resumes from
it) and, when training ends, ``model/`` (save_pretrained: config, safetensors, tokenizer),
written to a temporary sibling and renamed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import Dataset

from scaling.data.resume import DataPosition, EpochSampler, draw, loader
from scaling.io import atomic_dir
from teachers.crossencoder import encode_pairs, load, logits_to_scores


class PairGroups(Dataset):
    """(query text, [positive, n negatives] texts) per training query, seeded by (seed, epoch, index)."""

    def __init__(self, data, groups: dict[str, dict], n_negatives: int, depth: int, seed: int = 0):
        self.items = [(q, g["positives"], g["negatives"][:depth]) for q, g in groups.items()
                      if g["positives"] and len(g["negatives"][:depth]) >= n_negatives]
        if not self.items:
            raise ValueError(f"no training group has a positive and {n_negatives} BM25 negatives")
        self.data, self.n, self.seed = data, n_negatives, seed

    def __len__(self):
        return len(self.items)

    def __getitem__(self, key):
        """``(epoch, index)`` from EpochSampler (scaling/data/resume.py), or an index (epoch 0)."""
        i, rng = draw(self.seed, key)
        qid, pos, negs = self.items[i]
        docs = [rng.choice(pos)] + rng.sample(negs, self.n)
        return self.data.queries[qid], [self.data.corpus[d] for d in docs]


class CrossEncoderModule(L.LightningModule):
    def __init__(self, model, tokenizer, max_len: int, lr: float, warmup_ratio: float, steps: int):
        super().__init__()
        self.model, self.tokenizer, self.max_len = model, tokenizer, max_len
        self.lr, self.warmup, self.steps = lr, max(1, int(warmup_ratio * steps)), steps

    def collate(self, items):
        queries = [q for q, docs in items for _ in docs]  # (B*G,) grouped per query
        docs = [d for _, ds in items for d in ds]
        batch = encode_pairs(self.tokenizer, queries, docs, self.max_len)
        batch["group"] = torch.tensor(len(items[0][1]))
        return batch

    def training_step(self, batch, _):
        g = int(batch.pop("group"))
        scores = logits_to_scores(self.model(**batch).logits).view(-1, g)  # (B*G,) -> (B, G)
        loss = torch.nn.functional.cross_entropy(scores, torch.zeros(len(scores), dtype=torch.long,
                                                                     device=scores.device))
        self.log("teacher/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=0.01)

        def schedule(step):
            if step < self.warmup:
                return (step + 1) / self.warmup
            return max(0.0, (self.steps - step) / max(1, self.steps - self.warmup))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, schedule),
                                                   "interval": "step"}}


def train_teacher(data, groups: dict[str, dict], cfg, out_dir: Path, depth: int, seed: int = 0) -> Path:
    """Fine-tune ``cfg.init`` on ``groups`` for ``cfg.train.steps``; returns ``out_dir/model``."""
    out_dir = Path(out_dir)
    final = out_dir / "model"
    if (final / "config.json").exists():
        return final
    L.seed_everything(seed, verbose=False)
    model, tokenizer = load(cfg.init, cfg.download, num_labels=1)
    t = cfg.train
    module = CrossEncoderModule(model.train(), tokenizer, cfg.max_len, t.lr, t.warmup_ratio, t.steps)
    groups_ds = PairGroups(data, groups, t.n_negatives, depth, seed)
    sampler = EpochSampler(len(groups_ds), t.batch_size, seed)
    stream = loader(groups_ds, sampler, module.collate)
    from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar

    from scaling.notices import quiet_known
    quiet_known()  # Lightning's known-harmless notices (srun hint under a Slurm array, device report)
    ckpt_dir = out_dir / "ckpt"
    trainer = L.Trainer(accelerator="auto", devices=1, max_steps=t.steps, max_epochs=-1,
                        precision="bf16-mixed" if torch.cuda.is_available() else "32-true",
                        gradient_clip_val=1.0, logger=False, enable_model_summary=False,
                        callbacks=[DataPosition(sampler),
                                   ModelCheckpoint(dirpath=str(ckpt_dir), every_n_train_steps=t.checkpoint_every,
                                                   save_last=True, save_top_k=0),
                                   TQDMProgressBar(refresh_rate=1)],
                        default_root_dir=str(out_dir), num_sanity_val_steps=0, use_distributed_sampler=False)
    last = ckpt_dir / "last.ckpt"
    trainer.fit(module, stream, ckpt_path=str(last) if last.exists() else None)
    with atomic_dir(final) as tmp:
        module.model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return final
