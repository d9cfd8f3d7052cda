"""Term names of a sparse head's output dimensions: the tokenizer's vocabulary, or a folded one.

Lucene's pretokenized impact index needs one whitespace-free, unique string per term. Unfolded,
each id is its own term (``token_names``). Folded (``fold``), ids whose text is the same once the
byte-level space marker is decoded and stripped and the text lower-cased share a term: on code,
``Ġabstract`` (a query word) and ``abstract`` (inside an identifier) then match. Ids whose text is
empty after stripping (whitespace runs) keep a term of their own each.
"""

from __future__ import annotations

import torch


def _safe(text: str) -> str:
    return "".join("␣" if c.isspace() else c for c in text)


def token_names(tokenizer, vocab_size: int) -> list[str]:
    """One whitespace-free, unique name per vocabulary id (whitespace -> '␣'; clashes get '#id')."""
    names, seen = [], set()
    for i in range(vocab_size):
        tok = tokenizer.convert_ids_to_tokens(i) if i < len(tokenizer) else None
        name = _safe(tok or "") or f"[{i}]"
        if name in seen:
            name = f"{name}#{i}"
        seen.add(name)
        names.append(name)
    return names


def fold_key(tokenizer, i: int, raw: str) -> str:
    """The folded term of id ``i`` (``raw`` is its unfolded name): its decoded text, stripped of
    surrounding whitespace and WordPiece's '##', lower-cased; ``raw`` when nothing is left."""
    text = tokenizer.decode([i]) if i < len(tokenizer) else ""
    key = text.strip().removeprefix("##").lower()
    return _safe(key) if key else raw


def fold(tokenizer, vocab_size: int) -> tuple[torch.Tensor, list[str]]:
    """(V,) long tensor mapping each id to its folded term, and the folded terms' names (F,)."""
    index, names, where = [], [], {}
    for i, raw in enumerate(token_names(tokenizer, vocab_size)):
        key = fold_key(tokenizer, i, raw)
        if key not in where:
            where[key] = len(names)
            names.append(key)
        index.append(where[key])
    return torch.tensor(index, dtype=torch.long), names
