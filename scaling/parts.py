"""Typed configs of the registered parts: heads (``paradigm.head``) and loss terms (``loss.terms``,
``paradigm.terms``), each chosen by its ``name`` (a tagged union).

They live here, apart from the torch modules that implement them, so that a typo in a head or a
loss term fails when the configuration is parsed (before torch is imported), not after a backbone
has loaded. Each implementation is registered under the same name with its config class
(``scaling.heads.base.register`` / ``scaling.losses.base.register``), and the two registries are
checked against each other there and in the tests.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from scaling.registry import registrar
from scaling.schema import check

HEAD_CONFIGS: dict[str, type["HeadConfig"]] = {}
TERM_CONFIGS: dict[str, type["TermConfig"]] = {}
POOLINGS = ("eos", "mean", "cls", "normalized_mean")
"""Dense poolings (``scaling.heads.dense.POOLINGS`` implements each)."""

head_config = registrar(HEAD_CONFIGS)
term_config = registrar(TERM_CONFIGS)


# ---------------------------------------------------------------- heads

@dataclass
class HeadConfig:
    """Fields every head has."""

    name: str = ""
    skip_sink: bool = False
    """Pool without the first real position: the attention sink (the BOS token where the tokenizer
    adds one, else the first prefix token). The model still reads that token, so no other
    position becomes the sink; only the head ignores its output."""
    skip_prefix: bool = False
    """Pool without the lead: the query/passage prefix and the tokenizer's start tokens (BOS, CLS).
    Under causal attention those positions are the same for every text, so what they add to a
    representation is a constant, not evidence about the text."""


@head_config("dense")
@dataclass
class DenseHeadConfig(HeadConfig):
    """One pooled vector per text (``paradigm=dense``)."""

    name: str = "dense"
    pooling: str = "mean"
    """eos | mean | cls | normalized_mean (see scaling/heads/dense.py)."""
    normalize: bool = True
    """L2-normalise the pooled vector (scores are cosines)."""

    def __post_init__(self):
        check(self.pooling in POOLINGS, "pooling",
              f"unknown pooling {self.pooling!r} (known: {', '.join(POOLINGS)})")


@head_config("sparse")
@dataclass
class SparseHeadConfig(HeadConfig):
    """SPLADE-style vocabulary weights (``paradigm=sparse``); see scaling/heads/sparse.py."""

    name: str = "sparse"
    skip_sink: bool = True
    skip_prefix: bool = True
    scale_logits: bool = True
    """Multiply LM-head logits by hidden_size^-0.25 (Zeng et al.)."""
    lexical: bool = True
    """Weigh only the text's own (pooled) tokens: no expansion, the bag of words re-weighted by the
    LM head (naver/splade's lexical-only variants). Only those logits are computed, so the head
    costs 2 x hidden x length FLOPs per token instead of 2 x hidden x vocabulary."""
    fold: bool = True
    """Fold the vocabulary: ids whose text is the same once the space marker is stripped and it is
    lower-cased (``Ġabstract``, ``abstract``, ``Abstract``) become one term, weighted by the max
    over its ids. The index and the scores use the folded terms."""
    chunk: int = 32
    """Sequence positions per LM-head block: at most one (batch, chunk, vocabulary) block of logits
    lives at a time, in training too (each block is recomputed in the backward), so the head's
    peak memory scales with it (benchmarks/sparse_head_memory.py)."""
    recompute: bool = True
    """Recompute each block of logits in the backward (memory bounded by one block). false keeps
    every block for the backward: the (batch, length, vocabulary) logits held, no second forward
    of the projection, faster where they fit (a small vocabulary model on a CPU)."""
    query_top_k: int | None = None
    """Keep the top-k query weights at encode time (null keeps all)."""
    doc_top_k: int | None = None
    """Keep the top-k document weights at encode time (null keeps all)."""

    def __post_init__(self):
        check(self.chunk > 0, "chunk", f"must be positive, got {self.chunk}")
        for key in ("query_top_k", "doc_top_k"):
            v = getattr(self, key)
            check(v is None or v > 0, key, f"must be positive or null, got {v}")


# ---------------------------------------------------------------- loss terms

@dataclass
class TermConfig:
    """Fields every loss term has: its registry ``name`` and its ``weight`` in the sum."""

    name: str = ""
    weight: float = 1.0
    needs_teacher: ClassVar[bool] = False
    """True for distillation terms: the run must supply teacher scores and negatives."""
    follows_paradigm: ClassVar[tuple[str, ...]] = ()
    """Temperature fields whose null means the paradigm's score temperature (``paradigm.temperature``:
    cosine scores need a small one, raw dot products 1)."""

    def bind(self, temperature: float) -> None:
        for key in self.follows_paradigm:
            if getattr(self, key) is None:
                setattr(self, key, temperature)

    def needs_scorer(self) -> bool:
        """True when the term needs a teacher that scores any (query, document) pair at training
        time, not only the score file's candidates (``kl`` with ``in_batch``)."""
        return False

    def kwargs(self) -> dict:
        """The term class's constructor arguments (everything but name and weight)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("name", "weight")}

    def _positive(self, *keys: str) -> None:
        for key in keys:
            v = getattr(self, key)
            check(v is None or v > 0, key, f"must be positive, got {v}")


@term_config("infonce")
@dataclass
class InfoNCEConfig(TermConfig):
    """InfoNCE over every gathered document (in-batch, cross-device and hard negatives)."""

    name: str = "infonce"
    temperature: float | None = None
    """null: paradigm.temperature."""
    bidirectional: bool = False
    """Add GTR's document->query direction."""
    follows_paradigm: ClassVar[tuple[str, ...]] = ("temperature",)

    def __post_init__(self):
        self._positive("temperature")


@term_config("kl")
@dataclass
class KLConfig(TermConfig):
    """KL(teacher || student) over each query's own candidates (needs teacher scores)."""

    name: str = "kl"
    needs_teacher: ClassVar[bool] = True
    student_temperature: float | None = None
    """null: paradigm.temperature."""
    teacher_temperature: float = 1.0
    in_batch: bool = False
    """Distil over every document of this device's batch (B*G columns per query), not only the
    query's own G candidates, so the student also learns how far the other queries' documents
    lie. Needs a teacher that scores any pair, supplied at training time by a scorer
    (``GroupDataModule(scorer=...)``); a score file of candidates is not enough."""
    follows_paradigm: ClassVar[tuple[str, ...]] = ("student_temperature",)

    def __post_init__(self):
        self._positive("student_temperature", "teacher_temperature")

    def needs_scorer(self) -> bool:
        return self.in_batch


@term_config("margin_mse")
@dataclass
class MarginMSEConfig(TermConfig):
    """MarginMSE: the student's positive-negative margins regress onto the teacher's."""

    name: str = "margin_mse"
    needs_teacher: ClassVar[bool] = True


@term_config("flops")
@dataclass
class FlopsConfig(TermConfig):
    """FLOPS sparsity regulariser on queries and documents, ramped in quadratically."""

    name: str = "flops"
    query_weight: float = 0.05
    doc_weight: float = 0.04
    warmup_fraction: float = 0.333
    """The ramp reaches full weight after this fraction of training."""

    def __post_init__(self):
        check(self.query_weight >= 0, "query_weight", "must be >= 0")
        check(self.doc_weight >= 0, "doc_weight", "must be >= 0")
        check(0 <= self.warmup_fraction <= 1, "warmup_fraction", "must be in [0, 1]")
