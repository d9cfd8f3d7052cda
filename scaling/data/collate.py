"""Text -> padded token tensors, with the model's prefixes, optional EOS and either padding side."""

from __future__ import annotations

import torch


class Tokenize:
    """Callable: list of texts -> {"input_ids", "attention_mask", "content_mask"}, each (B, L).

    Truncates to ``max_len`` tokens including the appended EOS (so EOS pooling always reads it)
    and pads to the longest sequence of the batch on ``padding_side``. ``content_mask`` is the
    attention mask without the leading positions the prefix and the tokenizer's start tokens
    (BOS, CLS) put there: the same for every text, so a head can leave them out of its pooling.
    """

    def __init__(self, tokenizer, max_len: int, prefix: str = "", append_eos: bool = False,
                 padding_side: str = "right"):
        self.tok, self.max_len, self.prefix = tokenizer, max_len, prefix
        self.append_eos, self.padding_side = append_eos, padding_side
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        # The prefix without its trailing space: BPE merges that space into the text's first token.
        # Trailing special tokens (BERT's SEP) close the text, so they are not part of the lead.
        lead = tokenizer(prefix.rstrip(), add_special_tokens=True)["input_ids"]
        special = set(getattr(tokenizer, "all_special_ids", []))
        start = int(bool(lead) and lead[0] in special)  # a start token (BOS, CLS) stays
        while len(lead) > start and lead[-1] in special:
            lead = lead[:-1]
        self.lead = lead

    def ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids per text, truncated, EOS appended when asked; no padding."""
        room = self.max_len - int(self.append_eos)
        out = self.tok([self.prefix + t for t in texts], add_special_tokens=True, truncation=True,
                       max_length=room)["input_ids"]
        if self.append_eos:
            out = [ids + [self.tok.eos_token_id] for ids in out]
        return out

    def lead_len(self, ids: list[int]) -> int:
        """How many of ``ids``' first tokens are the shared lead (start tokens + prefix)."""
        n = 0
        for a, b in zip(ids, self.lead):
            if a != b:
                break
            n += 1
        return n

    def pad(self, ids: list[list[int]], leads: list[int] | None = None) -> dict[str, torch.Tensor]:
        """Pad ``ids`` into (B, L) tensors; ``leads``: each row's lead length when the rows were
        tokenised with other prefixes (a mixture's instructions), else this tokeniser's."""
        L = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), L), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), L), dtype=torch.long)
        content = torch.zeros((len(ids), L), dtype=torch.long)
        for i, x in enumerate(ids):
            start = L - len(x) if self.padding_side == "left" else 0
            input_ids[i, start:start + len(x)] = torch.tensor(x, dtype=torch.long)
            mask[i, start:start + len(x)] = 1
            lead = self.lead_len(x) if leads is None else leads[i]
            content[i, start + lead:start + len(x)] = 1
        return {"input_ids": input_ids, "attention_mask": mask, "content_mask": content}

    def __call__(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self.pad(self.ids(texts))


def tokenizers_for(tokenizer, model_cfg, query_len: int, doc_len: int,
                   query_instruction: str = "") -> tuple[Tokenize, Tokenize]:
    """(query, document) tokenisers from the model's prefixes, EOS and padding choices."""
    common = dict(append_eos=model_cfg.append_eos, padding_side=model_cfg.padding_side)
    return (Tokenize(tokenizer, query_len, model_cfg.query_prefix + query_instruction, **common),
            Tokenize(tokenizer, doc_len, model_cfg.doc_prefix, **common))
