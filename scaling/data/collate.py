"""Text -> padded token tensors, with the model's prefixes, optional EOS and either padding side."""

from __future__ import annotations

import torch


class Tokenize:
    """Callable: list of texts -> {"input_ids": (B, L), "attention_mask": (B, L)}.

    Truncates to ``max_len`` tokens including the appended EOS (so EOS pooling always reads it)
    and pads to the longest sequence of the batch on ``padding_side``.
    """

    def __init__(self, tokenizer, max_len: int, prefix: str = "", append_eos: bool = False,
                 padding_side: str = "right"):
        self.tok, self.max_len, self.prefix = tokenizer, max_len, prefix
        self.append_eos, self.padding_side = append_eos, padding_side
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids per text, truncated, EOS appended when asked; no padding."""
        room = self.max_len - int(self.append_eos)
        out = self.tok([self.prefix + t for t in texts], add_special_tokens=True, truncation=True,
                       max_length=room)["input_ids"]
        if self.append_eos:
            out = [ids + [self.tok.eos_token_id] for ids in out]
        return out

    def pad(self, ids: list[list[int]]) -> dict[str, torch.Tensor]:
        L = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), L), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), L), dtype=torch.long)
        for i, x in enumerate(ids):
            sl = slice(L - len(x), L) if self.padding_side == "left" else slice(0, len(x))
            input_ids[i, sl] = torch.tensor(x, dtype=torch.long)
            mask[i, sl] = 1
        return {"input_ids": input_ids, "attention_mask": mask}

    def __call__(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self.pad(self.ids(texts))


def tokenizers_for(tokenizer, model_cfg, query_len: int, doc_len: int,
                   query_instruction: str = "") -> tuple[Tokenize, Tokenize]:
    """(query, document) tokenisers from the model's prefixes, EOS and padding choices."""
    common = dict(append_eos=model_cfg.append_eos, padding_side=model_cfg.padding_side)
    return (Tokenize(tokenizer, query_len, model_cfg.query_prefix + query_instruction, **common),
            Tokenize(tokenizer, doc_len, model_cfg.doc_prefix, **common))
