"""Typed run configuration, checked before anything heavy is imported or loaded.

Hydra composes YAML groups from ``recipes/conf``; ``parse`` turns the composed mapping into
these dataclasses, rejecting unknown keys and wrong types with the dotted key that is wrong.
Each class documents its fields; ``__post_init__`` checks ranges so a bad grid point fails
in a second, not after the model has loaded.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A configuration value that cannot work; the message starts with its dotted key."""


def _check(cond: bool, key: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"{key}: {message}")


def _check_shard(spec: str | None, key: str) -> None:
    """null, 'auto' or 'i/n' with 0 <= i < n (see scaling.distributed.resolve_shard)."""
    if spec in (None, "auto"):
        return
    from scaling.distributed import parse_shard
    try:
        parse_shard(spec)
    except ValueError as e:
        raise ConfigError(f"{key}: {e}") from None


@dataclass
class LoraConfig:
    enabled: bool = True
    r: int = 16
    alpha: int = 32
    dropout: float = 0.1
    targets: list[str] = field(default_factory=lambda: [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    """Module names LoRA wraps (peft ``target_modules``)."""

    def __post_init__(self):
        _check(self.r > 0, "model.lora.r", f"must be positive, got {self.r}")
        _check(0 <= self.dropout < 1, "model.lora.dropout", f"must be in [0, 1), got {self.dropout}")


@dataclass
class ModelConfig:
    """The backbone (``size=`` group). ``name`` is a preset of ``scaling.sizes``."""

    name: str = "tiny"
    path: str | None = None
    """Local folder with HF weights (config.json + safetensors); overrides the preset's source."""
    hf_id: str | None = None
    """Hub id used only when ``download`` is true and ``path`` is unset."""
    download: bool = False
    """Allow fetching ``hf_id`` from the HF hub (online machines only)."""
    num_layers: int | None = None
    """Keep only the first N transformer layers (the CPU ladder); null keeps all."""
    lora: LoraConfig = field(default_factory=LoraConfig)
    query_prefix: str = "query: "
    doc_prefix: str = "passage: "
    append_eos: bool = False
    """Append the EOS token to every input (what ``eos`` pooling reads)."""
    padding_side: str = "right"
    bidirectional: bool = False
    """Let a decoder attend in both directions (a padding-only mask replaces the causal one)."""
    dtype: str = "float32"
    gradient_checkpointing: bool = False

    def __post_init__(self):
        _check(self.padding_side in ("left", "right"), "model.padding_side",
               f"must be 'left' or 'right', got {self.padding_side!r}")
        _check(self.dtype in ("float32", "bfloat16", "float16"), "model.dtype",
               f"must be float32, bfloat16 or float16, got {self.dtype!r}")
        _check(self.num_layers is None or self.num_layers > 0, "model.num_layers",
               f"must be positive or null, got {self.num_layers}")


@dataclass
class HeadConfig:
    """The representation head (set by ``paradigm=``); ``name`` is a key of ``scaling.heads``."""

    name: str = "dense"
    pooling: str = "mean"
    """dense: eos | mean | cls | normalized_mean."""
    normalize: bool = False
    """dense: L2-normalise the pooled vector."""
    scale_logits: bool = True
    """sparse: multiply LM-head logits by hidden_size^-0.25 (Zeng et al.)."""
    chunk: int = 32
    """sparse: sequence positions per LM-head block (memory for 128k vocabularies)."""
    query_top_k: int | None = None
    """sparse: keep the top-k query weights at encode time (null keeps all)."""
    doc_top_k: int | None = None
    """sparse: keep the top-k document weights at encode time (null keeps all)."""
    drop_bos: bool = False
    """Encode without the BOS token (decoder-SPLADE: BOS acts as an attention sink)."""


@dataclass
class ParadigmConfig:
    name: str = "dense"
    temperature: float = 0.02
    """Score temperature the loss configs read (${paradigm.temperature}): cosine vs raw dot products."""
    head: HeadConfig = field(default_factory=HeadConfig)
    terms: list[dict] = field(default_factory=list)
    """Loss terms the paradigm adds to the loss group's (e.g. a sparsity regulariser)."""


@dataclass
class LossConfig:
    """Weighted loss terms (``loss=`` group). Each term: {name: <registry key>, weight, ...}."""

    name: str = "cl"
    terms: list[dict] = field(default_factory=lambda: [{"name": "infonce", "weight": 1.0}])

    def __post_init__(self):
        _check(len(self.terms) > 0, "loss.terms", "needs at least one term")
        for i, t in enumerate(self.terms):
            _check(isinstance(t, dict) and "name" in t, f"loss.terms[{i}]",
                   "each term is a mapping with a 'name'")


@dataclass
class BM25Config:
    """Lucene BM25 (``data.bm25``): hard negatives, the teacher's candidates, a baseline."""

    k1: float = 0.9
    b: float = 0.4
    hits: int = 100
    """Candidates retrieved per query (hard-negative pool and re-ranking depth)."""
    split_identifiers: bool = False
    """Add the parts of compound identifiers (snake_case, camelCase) to the indexed text (code)."""

    def __post_init__(self):
        _check(self.k1 > 0 and 0 <= self.b <= 1, "data.bm25", "needs k1 > 0 and 0 <= b <= 1")
        _check(self.hits > 0, "data.bm25.hits", "must be positive")


@dataclass
class DataConfig:
    """Training and evaluation data (``data=`` group)."""

    name: str = "pycode"
    path: str | None = None
    """``data=beir``: a BEIR folder or zip; ``data=msmarco``: the folder of MS MARCO/TREC DL files."""
    beir_name: str | None = None
    """``data=beir`` without a path: a BEIR dataset name (scifact, nfcorpus, ...), read from
    ``<cache>/downloads/<name>.zip`` or fetched there with ``download``."""
    download: bool = False
    """Allow fetching a BEIR zip (online machines only)."""
    train_split: str = "train"
    eval_splits: list[str] = field(default_factory=lambda: ["test"])
    query_len: int = 32
    doc_len: int = 128
    n_negatives: int = 1
    """Negatives per training group, beside its one positive."""
    negatives: str = "random"
    """random: sampled from the corpus; bm25: from BM25's top candidates minus the positives
    (built by ``recipes/prepare.py``). With teacher scores the scored candidates are the pool."""
    negatives_depth: int = 50
    """bm25 negatives are drawn from the first N candidates."""
    bm25: BM25Config = field(default_factory=BM25Config)
    max_train_queries: int | None = None
    """Use only the first N training queries (data-efficiency studies); null uses all."""
    teacher_scores: str | None = None
    """TSV qid<TAB>docid<TAB>score for distillation terms; null reads the scores
    ``recipes/prepare.py`` made with the ``teacher=`` config. Read only when a loss term needs a
    teacher; then negatives come from each query's scored candidates."""
    missing_teacher: str = "error"
    """error: fail on groups lacking teacher scores (with a count and examples); drop: skip them."""

    def __post_init__(self):
        _check(self.query_len > 1 and self.doc_len > 1, "data.query_len/doc_len", "must be > 1")
        _check(self.n_negatives >= 0, "data.n_negatives", "must be >= 0")
        _check(self.missing_teacher in ("error", "drop"), "data.missing_teacher",
               f"must be 'error' or 'drop', got {self.missing_teacher!r}")
        _check(self.negatives in ("random", "bm25"), "data.negatives",
               f"must be 'random' or 'bm25', got {self.negatives!r}")
        _check(self.negatives_depth > 0, "data.negatives_depth", "must be positive")


@dataclass
class TeacherTrainConfig:
    """Fine-tuning a cross-encoder teacher (``teacher.train``) on BM25 negatives."""

    steps: int = 200
    batch_size: int = 8
    """Queries per step; each brings its positive and ``n_negatives`` BM25 negatives."""
    n_negatives: int = 3
    lr: float = 1.0e-4
    warmup_ratio: float = 0.1
    checkpoint_every: int = 50
    seed: int = 0
    """The teacher's own seed (students with other seeds share one teacher)."""


@dataclass
class TeacherConfig:
    """A cross-encoder teacher (``teacher=`` group) whose scores distillation reads."""

    name: str = "minilm-ce"
    """Folder name of its prepared outputs (scores, report card, trained weights)."""
    model: str | None = None
    """A trained cross-encoder: local folder or HF id (AutoModelForSequenceClassification);
    null fine-tunes one from ``init``."""
    init: str = "minilm"
    """Start of a fine-tuned teacher: 'minilm' (the packaged all-MiniLM-L6-v2) or a folder/HF id."""
    download: bool = False
    """Allow fetching HF ids (online machines only)."""
    max_len: int = 128
    """Tokens per (query, document) pair."""
    batch_size: int = 64
    """Pairs per scoring batch."""
    candidates: int = 7
    """BM25 negatives scored per training query, beside its positives (the KL's candidate pool)."""
    shard: str | None = None
    """'i/n' scores only shard i of n (0-based); null reads SLURM_ARRAY_TASK_ID/COUNT, else the
    launcher's RANK/WORLD_SIZE, else 0/1."""
    report_split: str = "dev"
    report_depth: int = 100
    """The report card re-ranks BM25's top-N on ``report_split``."""
    report_max_queries: int | None = None
    train: TeacherTrainConfig = field(default_factory=TeacherTrainConfig)

    def __post_init__(self):
        _check(self.max_len > 8, "teacher.max_len", "must be > 8")
        _check(self.candidates >= 0, "teacher.candidates", "must be >= 0")
        _check_shard(self.shard, "teacher.shard")


@dataclass
class BudgetConfig:
    """Training compute (``budget=`` group): exactly one of ``flops`` and ``steps``."""

    name: str = "cpu"
    flops: float | None = None
    """Training FLOPs; steps = floor(flops / flops_per_step)."""
    steps: int | None = None
    """Fixed number of optimiser steps (the FLOPs are then reported, not planned)."""

    def __post_init__(self):
        _check((self.flops is None) != (self.steps is None), "budget",
               "set exactly one of budget.flops and budget.steps")
        _check(self.flops is None or self.flops > 0, "budget.flops", "must be positive")
        _check(self.steps is None or self.steps > 0, "budget.steps", "must be positive")


@dataclass
class TrainerConfig:
    """Optimisation and the Lightning Trainer (``trainer=`` group)."""

    name: str = "cpu"
    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    precision: str = "32-true"
    batch_size: int = 16
    """Queries per device per step (each brings 1 + n_negatives documents)."""
    accumulate: int = 1
    lr: float = 3e-4
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    checkpoint_every: int = 50
    """Save a resumable checkpoint every N steps (and at the end)."""
    log_every: int = 5
    num_workers: int = 0
    threads: int | None = None
    """torch CPU threads; null leaves torch's default."""

    def __post_init__(self):
        _check(self.batch_size > 0, "trainer.batch_size", "must be positive")
        _check(self.lr > 0, "trainer.lr", "must be positive")
        _check(0 <= self.warmup_ratio < 1, "trainer.warmup_ratio", "must be in [0, 1)")


@dataclass
class LoggerConfig:
    name: str = "csv"
    """csv (Lightning CSVLogger in the run dir), wandb, or none."""
    project: str = "scaling"
    mode: str = "offline"

    def __post_init__(self):
        _check(self.name in ("csv", "wandb", "none"), "logger.name",
               f"must be csv, wandb or none, got {self.name!r}")


@dataclass
class EvalConfig:
    """Evaluation after training (``eval=`` group)."""

    name: str = "default"
    batch_size: int = 64
    device: str = "auto"
    """Where to encode: auto (this process's GPU when CUDA is present, else the CPU), cpu, cuda:N."""
    precision: str = "32"
    """Encoding precision: 32 (float32) or bf16 (bfloat16 autocast)."""
    shard: str | None = None
    """'i/n' encodes only corpus blocks i, i+n, ... (then exits unless the corpus is complete);
    'auto' reads the Slurm array task, else the launcher's RANK/WORLD_SIZE; null: all blocks."""
    block: int = 4096
    """Documents per encoded block file under RUN_DIR/encoded/ (the unit of sharding and resume)."""
    doc_len: int | None = None
    """Maximum document tokens at evaluation; null uses data.doc_len."""
    query_len: int | None = None
    query_instruction: str = ""
    """Text prepended to every evaluation query (after the model's query prefix)."""
    k: int = 1000
    untrained: bool = True
    """Also evaluate the untrained backbone (step 0), cached across runs."""
    baselines: list[str] = field(default_factory=lambda: ["bm25", "minilm"])
    """Reference systems on the same table: bm25 (Lucene), minilm (the packaged all-MiniLM-L6-v2)."""
    index: str = "flat"
    """Dense export: flat (exact inner product), hnsw or ivfpq (FAISS)."""
    quantization: float = 100.0
    """Sparse export: impact = int(weight x quantization)."""
    measures: list[str] = field(default_factory=lambda: ["nDCG@10", "RR@10", "R@100", "R@1000"])

    def __post_init__(self):
        self.precision = str(self.precision)  # eval.precision=32 arrives as an int
        _check(self.precision in ("32", "bf16"), "eval.precision", f"must be 32 or bf16, got {self.precision!r}")
        _check(self.block > 0, "eval.block", "must be positive")
        for name in ("doc_len", "query_len"):
            v = getattr(self, name)
            _check(v is None or v > 0, f"eval.{name}", "must be positive or null")
        _check_shard(self.shard, "eval.shard")
        _check(self.index in ("flat", "hnsw", "ivfpq"), "eval.index",
               f"must be flat, hnsw or ivfpq, got {self.index!r}")
        _check(self.quantization > 0, "eval.quantization", "must be positive")
        bad = [b for b in self.baselines if b not in ("bm25", "minilm")]
        _check(not bad, "eval.baselines", f"unknown baseline {bad[:1]}; known: bm25, minilm")

    def result_settings(self) -> dict:
        """The settings a result depends on (not where or in how many pieces it ran): cache keys."""
        skip = ("baselines", "untrained", "device", "shard", "block", "batch_size")
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in skip}


@dataclass
class RunConfig:
    paradigm: ParadigmConfig = field(default_factory=ParadigmConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    run_dir: str | None = None
    cache_dir: str = "~/.cache/scaling"
    seed: int = 0
    overwrite: bool = False
    """Replace a finished run_dir (otherwise a finished run is never overwritten)."""

    def __post_init__(self):
        if not self.cache_dir:  # SCALING_CACHE set but empty: the default, not the cwd
            self.cache_dir = "~/.cache/scaling"


def _matches(value, tp) -> bool:
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is list:
        (item,) = typing.get_args(tp)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    return isinstance(value, tp)


def build(cls, data: dict, prefix: str = ""):
    """Build dataclass ``cls`` from a plain mapping; unknown keys and wrong types raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown key (known: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in data.items():
        tp, key = hints[name], f"{prefix}{name}"
        if dataclasses.is_dataclass(tp):
            kwargs[name] = build(tp, value, key + ".")
            continue
        if isinstance(value, int) and not isinstance(value, bool) and _matches(1.0, tp) \
                and not _matches(1, tp):
            value = float(value)
        if not _matches(value, tp):
            raise ConfigError(f"{key}: expected {tp}, got {value!r}")
        kwargs[name] = value
    return cls(**kwargs)


def parse(data: dict) -> RunConfig:
    """Validate a composed config mapping into a RunConfig."""
    return build(RunConfig, data)


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def from_hydra(conf) -> RunConfig:
    """A composed Hydra config -> RunConfig; exits with the offending key on a bad value."""
    import sys

    from omegaconf import OmegaConf
    try:
        return parse(OmegaConf.to_container(conf, resolve=True, throw_on_missing=True))
    except ConfigError as e:
        sys.exit(f"config error: {e}")
