"""Training groups: (query, one positive, n negatives), tokenised in the collate function.

Negatives come from one of three pools. Random: uniform over the corpus minus the query's
positives. BM25 (``data.negatives=bm25``): the query's prepared BM25 candidates minus its
positives. Teacher (a loss term needs one): the query's scored candidates, and each group
carries its teacher scores, positive first. A group whose positive is unscored, or whose pool
holds fewer than ``n_negatives`` negatives, fails with the count and examples, or is dropped
(and counted) with ``data.missing_teacher=drop``.

Sampling is seeded by (seed, epoch, index), the sampler handing each item its epoch, so a run
resumed at any step of any epoch sees the groups the unbroken run saw (scaling/data/resume.py).
"""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import Dataset

from scaling.data.collate import tokenizers_for
from scaling.data.formats import Dataset as IRDataset
from scaling.data.groups import training_items
from scaling.data.resume import EpochSampler, draw, loader


class TrainGroups(Dataset):
    def __init__(self, data: IRDataset, split: str, n_negatives: int, seed: int = 0,
                 max_queries: int | None = None, teacher: dict | None = None,
                 missing: str = "error", source: str | None = None,
                 pools: dict[str, list[str]] | None = None, fraction: float = 1.0, items: list | None = None):
        """The groups of ``split`` (``scaling.data.groups.training_items``), or ``items`` as the
        checks before the run already built them from the same settings."""
        self.teacher, self.dropped = teacher, 0
        if items is None:
            items, self.dropped = training_items(data.qrels[split], n_negatives, max_queries, fraction, teacher,
                                                 pools, missing, source)
        self.items, self.data, self.n_negatives, self.seed = items, data, n_negatives, seed
        self.doc_ids = list(data.corpus)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, key):
        """``(epoch, index)`` (what EpochSampler yields), or an index (epoch 0)."""
        i, rng = draw(self.seed, key)
        item = self.items[i]
        pos = rng.choice(item[1])
        if len(item) == 3:  # a candidate pool: teacher-scored or BM25
            group = [pos] + rng.sample(item[2], self.n_negatives)
            scores = None if self.teacher is None else [self.teacher[item[0]][d] for d in group]
            return item[0], group, scores
        banned, negs = set(item[1]), []
        while len(negs) < self.n_negatives:
            d = self.doc_ids[rng.randrange(len(self.doc_ids))]
            if d not in banned:
                negs.append(d)
                banned.add(d)
        return item[0], [pos] + negs, None


class Collate:
    """[(qid, [docids], scores)] -> {"q": (B, Lq), "d": (B*G, Ld), "teacher": (B, G) | None, ids},
    plus "teacher_all": (B, B*G) when a ``scorer`` is given.

    ``scorer(qids, docids) -> (len(qids), len(docids))`` float32 teacher scores of any pair: in-batch
    distillation (``kl`` with ``in_batch``) needs every query against every document of the batch,
    which a score file of each query's own candidates does not hold.
    """

    def __init__(self, data: IRDataset, q_tok, d_tok, scorer=None, mixed=None):
        self.data, self.q_tok, self.d_tok, self.scorer, self.mixed = data, q_tok, d_tok, scorer, mixed

    def __call__(self, groups):
        qids = [g[0] for g in groups]
        docids = [d for g in groups for d in g[1]]  # (B*G,) grouped per query
        teacher = None if groups[0][2] is None else torch.tensor([g[2] for g in groups])  # (B, G)
        texts = [self.data.queries[q] for q in qids]
        batch = {"q": self.q_tok(texts) if self.mixed is None else self.mixed(texts, qids),
                 "d": self.d_tok([self.data.corpus[d] for d in docids]),
                 "teacher": teacher, "qids": qids, "docids": docids}
        if self.scorer is not None:  # (B, B*G): row i = qids[i] against every docid, batch order
            batch["teacher_all"] = torch.as_tensor(self.scorer(qids, docids), dtype=torch.float32)
        return batch


class GroupDataModule(L.LightningDataModule):
    def __init__(self, data: IRDataset, tokenizer, data_cfg, model_cfg, batch_size: int,
                 seed: int = 0, num_workers: int = 0, teacher: dict | None = None, items: list | None = None,
                 accumulate: int = 1, scorer=None):
        """``batch_size``: queries per device per forward; ``accumulate``: forwards per optimiser step
        (an epoch holds whole steps). ``teacher``: {qid: {docid: score}} and ``items``: the
        training groups with their pools, both as scaling/checks.py read and checked them.
        ``scorer``: a teacher of any (query, document) pair for in-batch distillation (``Collate``)."""
        super().__init__()
        self.train_set = TrainGroups(data, data_cfg.train_split, data_cfg.n_negatives, seed, teacher=teacher,
                                     items=items)
        q_tok, d_tok = tokenizers_for(tokenizer, model_cfg, data_cfg.query_len, data_cfg.doc_len,
                                      data_cfg.instruction)
        mixed = None
        if data_cfg.mixture:  # each query with its own dataset's instruction, at this run's lengths
            from scaling.data.mixture import MixedQueries, tag
            mixed = MixedQueries({"": q_tok, **{tag(i): tokenizers_for(
                tokenizer, model_cfg, data_cfg.query_len, data_cfg.doc_len, m.instruction)[0]
                for i, m in enumerate(data_cfg.mixture)}})
        self.collate = Collate(data, q_tok, d_tok, scorer, mixed)
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.sampler = EpochSampler(len(self.train_set), batch_size, seed, accumulate=accumulate)

    def train_dataloader(self):
        """Whole batches in a (seed, epoch) order; resumable mid-epoch with ``DataPosition``."""
        return loader(self.train_set, self.sampler, self.collate, self.num_workers)
