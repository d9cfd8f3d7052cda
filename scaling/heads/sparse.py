"""SPLADE-style sparse head for decoder LLMs and masked LMs (Zeng et al.; Formal et al.'s SPLADE).

w_v = log(1 + relu(max_t logit_{t,v})) over the pooled positions t (``Head.pool_mask``: the
text's real tokens, without the prefix and the attention sink when asked), where logit = LM head
(hidden) x scale (hidden_size^-0.25 when ``scale_logits``, as Zeng et al.). The max is taken
over raw logits first (log1p(relu) is monotone, so the result is the same with one fewer
(B, L, V) tensor), chunk by chunk over the sequence so 128k vocabularies fit: only one
(B, chunk, V) block lives at a time. In training each block is computed under non-reentrant
checkpoint, so its logits are not kept for the backward either (autograd would otherwise hold
every block, the whole (B, L, V), for the max's gradient): the backward recomputes one block at
a time, and the plan reports that forward as recompute. ``recompute=False`` trades that memory
for the time: every block is kept and the projection runs once. ``benchmarks/sparse_head_memory.py``
measures the peak. The output is a non-negative vector over the vocabulary,
or over the folded vocabulary (``fold``: each folded term takes the max over its ids).

``lexical`` keeps only the text's own tokens: only their logits are computed (the LM head's rows
for those ids, (B, L, L) per batch instead of (B, L, V)) and every other term is 0, so there is
no expansion. The LM head is the backbone's own module: a Linear for decoders (tied weights stay
tied), a transform followed by a Linear for BERT's masked-LM head.

At encode time (``postprocess``) query and document vectors keep their top-k weights
(``query_top_k`` / ``doc_top_k``), the pruning the decoder-SPLADE recipes use for documents.
"""

from __future__ import annotations

import torch
from torch import nn

from scaling.heads.base import Head, register
from scaling.heads.vocab import fold, token_names


def split_lm_head(lm_head: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """(transform, projection) of an LM head: (identity, itself) for a Linear, else (everything
    before the last module, the last module) for a Sequential ending in the vocabulary Linear."""
    if isinstance(lm_head, nn.Linear):
        return nn.Identity(), lm_head
    if isinstance(lm_head, nn.Sequential) and isinstance(lm_head[-1], nn.Linear):
        return lm_head[:-1], lm_head[-1]
    raise TypeError(f"the sparse head needs an LM head that ends in a Linear, got {type(lm_head).__name__}")


@register("sparse")
class SparseHead(Head):
    kind = "sparse"

    def __init__(self, lm_head: nn.Module, hidden_size: int, vocab_size: int,
                 scale_logits: bool = True, chunk: int = 32, query_top_k: int | None = None,
                 doc_top_k: int | None = None, skip_sink: bool = False, skip_prefix: bool = False,
                 lexical: bool = False, tokenizer=None, fold_vocab: bool = False, recompute: bool = True):
        super().__init__(skip_sink, skip_prefix)
        if lm_head is None:
            raise ValueError("the sparse head needs a backbone with an LM head (a decoder LLM or a masked LM)")
        self.lm_head = lm_head  # the backbone's own module (tied weights stay tied)
        self.parts = split_lm_head(lm_head)  # a plain tuple: the same modules, not registered twice
        self.hidden_size, self.vocab_size = hidden_size, vocab_size
        self.scale = hidden_size ** -0.25 if scale_logits else 1.0
        self.chunk, self.top_k, self.lexical = chunk, {"query": query_top_k, "doc": doc_top_k}, lexical
        self.recompute = recompute
        self.tokenizer, self.folded_names = tokenizer, None
        if fold_vocab:
            if tokenizer is None:
                raise ValueError("fold needs the tokenizer (it names the folded terms)")
            index, self.folded_names = fold(tokenizer, vocab_size)
            self.register_buffer("fold_index", index, persistent=False)  # (V,) id -> folded term

    @classmethod
    def from_config(cls, cfg, backbone):
        return cls(backbone.lm_head, backbone.hidden_size, backbone.vocab_size, cfg.scale_logits,
                   cfg.chunk, cfg.query_top_k, cfg.doc_top_k, cfg.skip_sink, cfg.skip_prefix,
                   cfg.lexical, backbone.tokenizer, cfg.fold, cfg.recompute)

    @property
    def dim(self) -> int:
        """Output width: the vocabulary, or the folded vocabulary."""
        return len(self.folded_names) if self.folded_names is not None else self.vocab_size

    def term_names(self) -> list[str]:
        """One whitespace-free, unique name per output dimension (the index's terms)."""
        if self.folded_names is not None:
            return self.folded_names
        if self.tokenizer is None:
            return [f"[{i}]" for i in range(self.vocab_size)]
        return token_names(self.tokenizer, self.vocab_size)

    def _block_max(self, hidden, pad):
        """(B, c, H) positions, (B, c, 1) padding -> (B, V) max logit over the block's positions."""
        logits = self.lm_head(hidden)  # (B, c, V); scaled and masked in place: one block, not three
        return logits.mul_(self.scale).masked_fill_(pad, float("-inf")).amax(dim=1)

    def _max_logits(self, hidden, mask):
        """(B, V) max over pooled positions of every vocabulary logit, in sequence chunks (each
        recomputed in the backward when training, so no (B, c, V) block outlives its chunk;
        without ``recompute`` each is kept for the backward)."""
        from torch.utils.checkpoint import checkpoint
        best = None
        checkpointed = torch.is_grad_enabled() and hidden.requires_grad and self.recompute
        for s in range(0, hidden.shape[1], self.chunk):
            h, pad = hidden[:, s:s + self.chunk], (mask[:, s:s + self.chunk] == 0).unsqueeze(-1)  # (B, c, H), (B, c, 1)
            block = (checkpoint(self._block_max, h, pad, use_reentrant=False) if checkpointed
                     else self._block_max(h, pad))  # (B, V)
            best = block if best is None else torch.maximum(best, block)
        return best[:, : self.vocab_size]

    def _lexical_logits(self, hidden, mask, ids):
        """(B, L) max over pooled positions of the logit of each input token; -inf for tokens not
        pooled. Only (B, L, L) logits are computed: the projection's rows for ``ids``."""
        transform, proj = self.parts
        rows = proj.weight[ids]  # (B, L, H): one vocabulary row per input token
        logits = transform(hidden) @ rows.transpose(1, 2)  # (B, L positions, L tokens)
        if proj.bias is not None:
            logits = logits + proj.bias[ids].unsqueeze(1)  # (B, 1, L tokens)
        off = mask == 0  # (B, L)
        per_token = (logits * self.scale).masked_fill(off.unsqueeze(-1), float("-inf")).amax(dim=1)
        return per_token.masked_fill(off, float("-inf"))  # (B, L tokens): only the pooled ones

    def pool(self, hidden, mask, ids=None):
        folded = self.folded_names is not None
        if self.lexical:
            if ids is None:
                raise ValueError("lexical needs the input ids")
            w = torch.log1p(torch.relu(self._lexical_logits(hidden, mask, ids)))  # (B, L), >= 0
            terms = self.fold_index[ids] if folded else ids  # (B, L) output dimension per token
        else:
            w = torch.log1p(torch.relu(self._max_logits(hidden, mask)))  # (B, V), >= 0
            if not folded:
                return w
            terms = self.fold_index.unsqueeze(0).expand(w.shape[0], -1)  # (B, V)
        # the max over the tokens (or ids) of each term; log1p(relu) is monotone, so it commutes
        return w.new_zeros(w.shape[0], self.dim).scatter_reduce(1, terms, w, reduce="amax")  # (B, dim)

    def postprocess(self, reps, role):
        k = self.top_k.get(role)
        if not k or k >= reps.shape[1]:
            return reps
        top = reps.topk(k, dim=1)  # keep k weights per row
        return torch.zeros_like(reps).scatter_(1, top.indices, top.values)

    @classmethod
    def planned_flops(cls, cfg, hidden, vocab, transform):
        """The LM head per token: a masked LM's transform (hidden x hidden), then the projection
        onto the whole vocabulary, or in ``lexical`` mode onto the ``seq_len`` tokens of the text."""
        return lambda seq_len: (2.0 * hidden ** 2 if transform else 0.0) + 2.0 * hidden * (
            seq_len if cfg.lexical else vocab)

    @classmethod
    def recomputes(cls, cfg) -> bool:
        return not cfg.lexical and cfg.recompute  # the vocabulary projection is checkpointed per block

    def batch_stats(self, q, d):
        """Mean non-zeros per query/document, the batch FLOPS (sum_v P(q_v>0) P(d_v>0)), the mean
        cosine between the batch's documents and the share of document weight on terms present in
        at least half of them (near 1: every document says the same thing)."""
        qa, da = (q > 0).float(), (d > 0).float()
        return {"q_nonzero": qa.sum(1).mean(), "d_nonzero": da.sum(1).mean(),
                "flops": (qa.mean(0) * da.mean(0)).sum(), **spread(d)}


def spread(d: torch.Tensor) -> dict[str, torch.Tensor]:
    """How alike (N, V) non-negative document vectors are (see ``spread_from_sums``)."""
    unit = torch.nn.functional.normalize(d.float(), dim=1)
    return spread_from_sums(unit.sum(0), (unit * unit).sum(), (d > 0).sum(0), d.float().sum(0), d.shape[0])


def spread_from_sums(unit_sum, unit_sq, df, mass, n: int) -> dict:
    """``d_cosine``, the mean cosine between distinct documents, and ``common_share``, the share of
    all weight on terms present in at least half of them, from sums a corpus can be streamed
    into block by block (torch tensors or numpy arrays alike): ``unit_sum`` (V,) the sum of the
    L2-normalised rows, ``unit_sq`` their summed squared norms (n, less empty rows), ``df`` (V,)
    documents per term, ``mass`` (V,) weight per term, ``n`` documents."""
    cosine = (unit_sum @ unit_sum - unit_sq) / max(1, n * (n - 1))  # off-diagonal mean
    total = mass.sum()
    share = mass[df >= 0.5 * n].sum() / total if total > 0 else total * 0
    return {"d_cosine": cosine, "common_share": share}
