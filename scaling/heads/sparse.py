"""SPLADE-style sparse head for decoder LLMs (Zeng et al.; Formal et al.'s SPLADE max pooling).

w_v = log(1 + relu(max_t logit_{t,v})) over the text's non-pad tokens t, where logit = LM head
(hidden) x scale (hidden_size^-0.25 when ``scale_logits``, as Zeng et al.). The max is taken
over raw logits first (log1p(relu) is monotone, so the result is the same with one fewer
(B, L, V) tensor), chunk by chunk over the sequence so 128k vocabularies fit: only one
(B, chunk, V) block lives at a time. The output is a vocabulary-sized non-negative vector.

At encode time (``postprocess``) query and document vectors keep their top-k weights
(``query_top_k`` / ``doc_top_k``), the pruning the decoder-SPLADE recipes use for documents.
"""

from __future__ import annotations

import torch

from scaling.heads.base import Head, register


@register("sparse")
class SparseHead(Head):
    kind = "sparse"

    def __init__(self, lm_head: torch.nn.Module, hidden_size: int, vocab_size: int,
                 scale_logits: bool = True, chunk: int = 32, query_top_k: int | None = None,
                 doc_top_k: int | None = None, skip_sink: bool = False):
        super().__init__(skip_sink)
        if lm_head is None:
            raise ValueError("the sparse head needs a backbone with an LM head (a decoder LLM)")
        self.lm_head = lm_head  # the backbone's own module (tied weights stay tied)
        self.hidden_size, self.vocab_size = hidden_size, vocab_size
        self.scale = hidden_size ** -0.25 if scale_logits else 1.0
        self.chunk, self.top_k = chunk, {"query": query_top_k, "doc": doc_top_k}

    @classmethod
    def from_config(cls, cfg, backbone):
        return cls(backbone.lm_head, backbone.hidden_size, backbone.vocab_size, cfg.scale_logits,
                   cfg.chunk, cfg.query_top_k, cfg.doc_top_k, cfg.skip_sink)

    def pool(self, hidden, mask):
        lm_head, best = self.lm_head, None
        for s in range(0, hidden.shape[1], self.chunk):
            logits = lm_head(hidden[:, s:s + self.chunk]) * self.scale  # (B, c, V)
            pad = (mask[:, s:s + self.chunk] == 0).unsqueeze(-1)  # (B, c, 1)
            block = logits.masked_fill(pad, float("-inf")).amax(dim=1)  # (B, V)
            best = block if best is None else torch.maximum(best, block)
        return torch.log1p(torch.relu(best[:, : self.vocab_size]))  # (B, V), >= 0

    def postprocess(self, reps, role):
        k = self.top_k.get(role)
        if not k or k >= reps.shape[1]:
            return reps
        top = reps.topk(k, dim=1)  # keep k weights per row
        return torch.zeros_like(reps).scatter_(1, top.indices, top.values)

    def extra_flops_per_token(self) -> float:
        return 2.0 * self.hidden_size * self.vocab_size

    def batch_stats(self, q, d):
        """Mean non-zeros per query/document and the batch FLOPS: sum_v P(q_v>0) P(d_v>0)."""
        qa, da = (q > 0).float(), (d > 0).float()
        return {"q_nonzero": qa.sum(1).mean(), "d_nonzero": da.sum(1).mean(),
                "flops": (qa.mean(0) * da.mean(0)).sum()}
