"""Training groups: (query, one positive, n negatives), tokenised in the collate function.

Negatives are sampled uniformly from the corpus minus the query's positives, seeded by
(seed, epoch, index) so a resumed run sees the same groups. Each batch carries the group ids
(qid, [docids]) so teacher scores can be joined to it later.
"""

from __future__ import annotations

import random

import lightning as L
from torch.utils.data import DataLoader, Dataset

from scaling.data.collate import Tokenize
from scaling.data.formats import Dataset as IRDataset


class TrainGroups(Dataset):
    def __init__(self, data: IRDataset, split: str, n_negatives: int, seed: int = 0,
                 max_queries: int | None = None):
        qrels = data.qrels[split]
        self.items = [(qid, sorted(d for d, rel in docs.items() if rel > 0))
                      for qid, docs in qrels.items()]
        self.items = [(q, pos) for q, pos in self.items if pos]
        if max_queries is not None:
            self.items = self.items[:max_queries]
        if not self.items:
            raise ValueError(f"dataset {data.name!r} split {split!r} has no query with a positive")
        self.data, self.n_negatives, self.seed, self.epoch = data, n_negatives, seed, 0
        self.doc_ids = list(data.corpus)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        qid, positives = self.items[i]
        rng = random.Random(f"{self.seed}/{self.epoch}/{i}")
        pos = rng.choice(positives)
        banned, negs = set(positives), []
        while len(negs) < self.n_negatives:
            d = self.doc_ids[rng.randrange(len(self.doc_ids))]
            if d not in banned:
                negs.append(d)
                banned.add(d)
        return qid, [pos] + negs


class Collate:
    """[(qid, [docids])] -> {"q": tokens (B, Lq), "d": tokens (B*G, Ld), "qids", "docids"}."""

    def __init__(self, data: IRDataset, q_tok: Tokenize, d_tok: Tokenize):
        self.data, self.q_tok, self.d_tok = data, q_tok, d_tok

    def __call__(self, groups):
        qids = [q for q, _ in groups]
        docids = [d for _, ds in groups for d in ds]  # (B*G,) grouped per query
        return {"q": self.q_tok([self.data.queries[q] for q in qids]),
                "d": self.d_tok([self.data.corpus[d] for d in docids]),
                "qids": qids, "docids": docids}


class GroupDataModule(L.LightningDataModule):
    def __init__(self, data: IRDataset, tokenizer, data_cfg, model_cfg, batch_size: int,
                 seed: int = 0, num_workers: int = 0):
        super().__init__()
        self.train_set = TrainGroups(data, data_cfg.train_split, data_cfg.n_negatives, seed,
                                     data_cfg.max_train_queries)
        q_tok = Tokenize(tokenizer, data_cfg.query_len, model_cfg.query_prefix,
                         model_cfg.append_eos, model_cfg.padding_side)
        d_tok = Tokenize(tokenizer, data_cfg.doc_len, model_cfg.doc_prefix,
                         model_cfg.append_eos, model_cfg.padding_side)
        self.collate = Collate(data, q_tok, d_tok)
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers

    def train_dataloader(self):
        import torch
        gen = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True,
                          drop_last=True, collate_fn=self.collate, generator=gen,
                          num_workers=self.num_workers)
