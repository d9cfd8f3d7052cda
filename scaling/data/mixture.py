"""Multi-task training (``data.mixture``, Luo et al.): several datasets in one run.

The run's dataset and each mixture dataset become one training set: the ids of ``data.mixture[i]``
are prefixed with ``tag(i)`` (``mix0::zsh``), so no two datasets' ids meet (two BEIR folders may
share a name) and a group's candidates stay in its own corpus. Each epoch holds every dataset's training groups in
proportion to the weights (``weighted``: a dataset over its share is cut, one under it repeated,
by a fixed draw that does not depend on the seed, so every seed sees the same mixture), and the
usual seeded sampler shuffles them into mixed batches. A query is tokenised with its own
dataset's instruction (``MixedQueries``). Nothing here reads files or imports torch models.
"""

from __future__ import annotations

import random

from scaling.data.formats import Dataset

SEP = "::"


def tag(i: int) -> str:
    """The id prefix of ``data.mixture[i]``."""
    return f"mix{i}"


def prefixed(name: str, ident: str) -> str:
    return f"{name}{SEP}{ident}"


def source_of(ident: str) -> str:
    """The tag of the mixture dataset an id belongs to ("" for the run's own dataset)."""
    return ident.split(SEP, 1)[0] if SEP in ident else ""


def merge(main: Dataset, parts: list[Dataset]) -> Dataset:
    """One dataset holding ``main`` as it is and part i under ``tag(i)``-prefixed ids (what
    training reads: the corpus and queries; the qrels stay ``main``'s)."""
    corpus, queries = dict(main.corpus), dict(main.queries)
    for i, part in enumerate(parts):
        corpus.update({prefixed(tag(i), d): t for d, t in part.corpus.items()})
        queries.update({prefixed(tag(i), q): t for q, t in part.queries.items()})
    return Dataset(main.name, corpus, queries, dict(main.qrels))


def prefix_items(name: str, items: list[tuple]) -> list[tuple]:
    """Training groups (``groups.training_items``: qid, positives[, pool]) under prefixed ids."""
    return [tuple([prefixed(name, item[0])] + [[prefixed(name, d) for d in part] for part in item[1:]])
            for item in items]


def weighted(sources: list[list], weights: list[float]) -> list:
    """The items of several datasets in proportion to ``weights``: dataset i contributes
    round(w_i / sum(w) x total) items, total being all datasets' items together; fewer than it
    holds are a fixed sample of them, more repeat every item and add a fixed sample. In dataset order."""
    total = sum(len(s) for s in sources)
    out = []
    for i, (items, w) in enumerate(zip(sources, weights)):
        want = max(1, round(w / sum(weights) * total))
        rng = random.Random(f"data.mixture/{i}")
        whole, rest = divmod(want, len(items))
        picked = list(items) * whole + rng.sample(list(items), rest)
        out.extend(picked)
    return out


class MixedQueries:
    """Callable like ``collate.Tokenize`` on queries, each tokenised with its dataset's instruction
    (``tokenizers``: {source: Tokenize}, "" the run's own), then padded together."""

    def __init__(self, tokenizers: dict):
        self.tokenizers = tokenizers
        self.pad_with = tokenizers[""]

    def __call__(self, texts: list[str], qids: list[str]):
        ids, leads = [None] * len(texts), [0] * len(texts)
        rows: dict[str, list[int]] = {}
        for i, qid in enumerate(qids):
            rows.setdefault(source_of(qid), []).append(i)
        for source, where in rows.items():  # one tokenizer call per dataset in the batch
            tok = self.tokenizers[source]
            for i, x in zip(where, tok.ids([texts[i] for i in where])):
                ids[i], leads[i] = x, tok.lead_len(x)
        return self.pad_with.pad(ids, leads)
