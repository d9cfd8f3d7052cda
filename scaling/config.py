"""Typed configuration of every recipe, checked before anything heavy is imported or loaded.

One source of defaults: each group's dataclass holds its keys, types, defaults and documentation,
and its defaults are the built-in run's (``RunConfig()`` is that run, but for ``model.num_layers``
and ``data.bm25.split_identifiers``, which the default options set). ``scaling.cli`` registers these
classes as Hydra structured configs; the YAML options under ``recipes/conf`` only override them.
The paradigm and loss choices are typed nodes here (``PARADIGMS``, ``LOSSES``) because their heads
and term lists are tagged unions of the part configs in ``scaling.parts``.

``parse`` builds the dataclasses from Hydra's composed mapping, rejecting unknown keys, wrong types
and unknown names with the dotted key that is wrong (``scaling.schema``); ``__post_init__`` checks
ranges with keys relative to the class, so a bad grid point fails in a second, not after the
model has loaded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaling.launch import parse_shard
from scaling.parts import (HEAD_CONFIGS, TERM_CONFIGS, DenseHeadConfig, FlopsConfig, HeadConfig,  # noqa: F401
                           InfoNCEConfig, KLConfig, MarginMSEConfig, SparseHeadConfig, TermConfig)
from scaling.schema import ConfigError, build, check, union  # noqa: F401

DEFAULT_CACHE = "~/.cache/scaling"
REFERENCE_SYSTEMS = ("bm25", "minilm", "mpnet", "splade")
"""Systems with no training that a results table can show (scaling/evaluation/systems.py)."""
DATASETS = ("pycode", "pyclass", "pkgdesc", "beir", "msmarco")
POOL_SYSTEMS = ("bm25", "minilm", "mpnet")
"""First-stage systems whose top candidates make candidate pools (``data.negatives``, ``teacher.pool``)."""
TEACHER_COMPONENTS = ("ce", "bm25", "minilm", "mpnet")
"""What a teacher's ``fusion`` weighs: its cross-encoder, BM25, the packaged bi-encoders."""
"""``data.name`` choices (scaling/data/corpora.py loads each)."""


def _check_shard(spec: str | None, key: str) -> None:
    """null, 'auto' or 'i/n' with 0 <= i < n (see scaling.launch.resolve_shard)."""
    if spec in (None, "auto"):
        return
    try:
        parse_shard(spec)
    except ValueError as e:
        raise ConfigError(key, str(e)) from None


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
        check(self.r > 0, "model.lora.r", f"must be positive, got {self.r}")
        check(0 <= self.dropout < 1, "model.lora.dropout", f"must be in [0, 1), got {self.dropout}")


@dataclass
class MNTPConfig:
    """Masked next-token prediction before training (``model.mntp``; scaling/mntp.py): adapts a
    decoder to bidirectional attention on the training corpus (LLM2Vec; Zeng et al.)."""

    steps: int = 0
    """0: no adaptation. Its FLOPs are not part of the training budget."""
    mask_ratio: float = 0.2
    batch_size: int = 16
    max_len: int = 128
    lr: float = 1.0e-4
    seed: int = 0

    def __post_init__(self):
        check(self.steps >= 0, "model.mntp.steps", "must be >= 0")
        check(0 < self.mask_ratio < 1, "model.mntp.mask_ratio", "must be in (0, 1)")
        check(self.batch_size > 0, "model.mntp.batch_size", "must be positive")
        check(self.max_len > 1, "model.mntp.max_len", "must be > 1")


@dataclass
class ModelConfig:
    """The backbone (``size=`` group). ``name`` is a preset of ``scaling.sizes``."""

    name: str = "smollm2-135m"
    path: str | None = None
    """Local folder with HF weights (config.json + safetensors); overrides the preset's source."""
    hf_id: str | None = None
    """Hub id used only when ``download`` is true and ``path`` is unset; null: the size preset's
    (scaling/sizes.py)."""
    download: bool = False
    """Allow fetching ``hf_id`` from the HF hub (online machines only)."""
    random_init: bool = False
    """Build a Llama-3 preset (tiny, 1b, 3b, 8b) from its architecture with random weights instead
    of loading any: for throughput and memory benchmarks, never for results."""
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
    mntp: MNTPConfig = field(default_factory=MNTPConfig)
    init_from: str | None = None
    """A finished run folder (or its ``checkpoint/``) whose trained weights (LoRA and head) this run
    starts from: a later training stage (GTR's pre-training then fine-tuning). Its model and head
    settings must be this run's; its data, loss, budget and optimiser may differ. The result records
    each stage's budget (scaling/start.py)."""

    def __post_init__(self):
        check(self.mntp.steps == 0 or self.bidirectional, "model.mntp.steps",
              "MNTP adapts a decoder to bidirectional attention: set model.bidirectional=true with it")
        check(self.padding_side in ("left", "right"), "model.padding_side",
               f"must be 'left' or 'right', got {self.padding_side!r}")
        check(self.dtype in ("float32", "bfloat16", "float16"), "model.dtype",
               f"must be float32, bfloat16 or float16, got {self.dtype!r}")
        check(self.num_layers is None or self.num_layers > 0, "model.num_layers",
               f"must be positive or null, got {self.num_layers}")


@dataclass
class ParadigmConfig:
    """Dense or sparse (``paradigm=`` group): the head, its score temperature, the terms it adds."""

    name: str = "dense"
    temperature: float = 0.02
    """Score temperature; a loss term's null temperature means this one (cosine scores need a
    small one, raw dot products of sparse weights 1)."""
    head: Any = field(default=None, metadata=union(HEAD_CONFIGS, "head"))
    """A head config chosen by ``name`` (scaling/parts.py); null: the dense head's defaults."""
    terms: list[Any] = field(default_factory=list, metadata=union(TERM_CONFIGS, "loss term"))
    """Loss terms the paradigm adds to the loss group's (e.g. the sparsity regulariser)."""

    def __post_init__(self):
        if self.head is None:
            self.head = DenseHeadConfig()
        check(self.temperature > 0, "paradigm.temperature", "must be positive")


@dataclass
class LossConfig:
    """Weighted loss terms (``loss=`` group), each chosen by ``name`` (scaling/parts.py)."""

    name: str = "cl"
    terms: list[Any] = field(default_factory=lambda: [InfoNCEConfig()],
                             metadata=union(TERM_CONFIGS, "loss term"))

    def __post_init__(self):
        check(len(self.terms) > 0, "loss.terms", "needs at least one term")


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
        check(self.k1 > 0, "data.bm25.k1", "must be positive")
        check(0 <= self.b <= 1, "data.bm25.b", "must be in [0, 1]")
        check(self.hits > 0, "data.bm25.hits", "must be positive")


DATA_CONFIGS: dict[str, type] = {}
"""Every dataset name -> DataConfig: the tagged union of ``data.mixture`` and ``eval.zero_shot``
entries (filled below, once DataConfig exists)."""


@dataclass
class DataConfig:
    """Training and evaluation data (``data=`` group)."""

    name: str = "pycode"
    path: str | None = None
    """``data=beir``: a BEIR folder or zip; ``data=msmarco``: the folder of MS MARCO/TREC DL files;
    ``data=pkgdesc``: a dpkg status file (default: the machine's own, /var/lib/dpkg/status)."""
    beir_name: str | None = None
    """``data=beir`` without a path: a BEIR dataset name (scifact, nfcorpus, ...), read from
    ``<cache>/downloads/<name>.zip`` or fetched there with ``download``."""
    download: bool = False
    """Allow fetching a BEIR zip (online machines only)."""
    train_split: str = "train"
    eval_splits: list[str] = field(default_factory=lambda: ["test"])
    weight: float = 1.0
    """In a mixture (``data.mixture``), this dataset's share of the training queries, relative to
    the other datasets' weights."""
    mixture: list[Any] = field(default_factory=list, metadata=union(DATA_CONFIGS, "dataset"))
    """Other datasets trained on in the same run (Luo et al.'s multi-task training): each composed
    as ``data=<name>`` composes it, then the entry's keys (``{name: pkgdesc, weight: 0.5,
    instruction: "..."}``), with its own instruction and candidate pools (BM25 groups when this
    run trains on negatives: ``data.mixture[i].negatives=bm25``). Each epoch draws the datasets'
    training queries in proportion to their weights; a batch mixes them, cut to this dataset's
    lengths. The run is evaluated on each one's ``eval_splits`` beside this one's. Not with
    distillation (teacher scores belong to one dataset)."""
    instruction: str = ""
    """Text prepended to this dataset's queries (after the model's query prefix) in training and,
    unless ``eval.query_instruction`` replaces it, at evaluation: Luo et al.'s per-dataset
    instruction ("Given a docstring, retrieve the Python function: "). Part of the prefix, so a
    head with ``skip_prefix`` does not pool it."""
    query_len: int = 32
    """Maximum query tokens in training (and evaluation unless eval.query_len)."""
    doc_len: int = 96
    """Maximum document tokens in training (and evaluation unless eval.doc_len)."""
    n_negatives: int = 0
    """Sampled negatives per training group, beside its one positive (0: in-batch negatives only)."""
    negatives: str = "random"
    """random: sampled from the corpus; a pool of systems' top candidates minus the positives:
    ``bm25``, ``minilm``, ``mpnet`` or a ``+``-joined mix (``bm25+minilm``: interleaved by rank),
    built by ``recipes/prepare.py``; ``file``: ``data.negatives_file``. With teacher scores the
    scored candidates are the pool."""
    negatives_depth: int = 50
    """Pool negatives are drawn from the first N candidates of the (interleaved) pool."""
    negatives_file: str | None = None
    """``data.negatives=file``: a file of candidates per training query in any layout
    ``scaling/data/teacher_files.py`` reads (hard-negatives jsonl, Tevatron, Zeng's triples, ...)."""
    negatives_systems: list[str] = field(default_factory=list)
    """A hard-negatives jsonl's systems to take (empty: all of them)."""
    bm25: BM25Config = field(default_factory=BM25Config)
    max_train_queries: int | None = None
    """Use only the first N training queries; null uses all."""
    fraction: float = 1.0
    """Train on this share of the training queries (data-efficiency curves): a fixed seeded draw,
    the same for every run seed, so smaller fractions are subsets of larger ones."""
    teacher_scores: str | None = None
    """A teacher-score file for distillation terms (TSV qid<TAB>docid<TAB>score, or any layout of
    ``scaling/data/teacher_files.py``: sentence-transformers' pickle, Hofstätter's MarginMSE
    triples, Zeng's and Tevatron's jsonl; gzip or plain); null reads the scores
    ``recipes/prepare.py`` made with the ``teacher=`` config. Read only when a loss term needs a
    teacher; then negatives come from each query's scored candidates."""
    teacher_format: str = "auto"
    """The layout of ``teacher_scores`` / ``negatives_file``: auto (detected from the content) or a
    name from ``scaling.data.teacher_files.FORMATS``."""
    missing_teacher: str = "error"
    """error: fail on groups lacking teacher scores (with a count and examples); drop: skip them."""
    ignore_identical_ids: bool = False
    """At evaluation, drop a retrieved document whose id is the query's own from that query's
    ranking before it is scored or written (BEIR's ``ignore_identical_ids``: in ArguAna and Quora a
    query is itself a corpus document, which would rank first). Searched ``eval.k + 1`` deep, so a
    ranking stays ``eval.k`` long. Not for datasets that judge a query's own id relevant (the
    built-in corpora, folders cut from them)."""

    def __post_init__(self):
        check(self.query_len > 1, "data.query_len", "must be > 1")
        check(self.doc_len > 1, "data.doc_len", "must be > 1")
        check(self.n_negatives >= 0, "data.n_negatives", "must be >= 0")
        check(0 < self.fraction <= 1, "data.fraction", f"must be in (0, 1], got {self.fraction}")
        check(self.missing_teacher in ("error", "drop"), "data.missing_teacher",
               f"must be 'error' or 'drop', got {self.missing_teacher!r}")
        bad = [x for x in self.negatives.split("+") if x not in POOL_SYSTEMS]
        check(self.negatives in ("random", "file") or not bad, "data.negatives",
              f"must be 'random', 'file' or systems joined by '+' from {', '.join(POOL_SYSTEMS)}; got {self.negatives!r}")
        check(self.negatives != "file" or bool(self.negatives_file), "data.negatives_file",
              "data.negatives=file needs data.negatives_file=FILE")
        check(self.negatives_depth > 0, "data.negatives_depth", "must be positive")
        check(self.name in DATASETS, "data.name", f"unknown dataset {self.name!r} (known: {', '.join(DATASETS)})")
        check(self.name != "msmarco" or bool(self.path), "data.path",
              "data=msmarco needs data.path=DIR with the MS MARCO files (see scaling/data/msmarco.py)")
        check(self.name != "beir" or bool(self.path or self.beir_name), "data.path",
              "data=beir needs data.path=DIR|FILE.zip, or data.beir_name=NAME (a zip under <cache_dir>/downloads)")
        check(self.weight > 0, "data.weight", f"must be positive, got {self.weight}")
        for i, m in enumerate(self.mixture):
            check(not m.mixture, f"data.mixture[{i}].mixture", "a mixture's datasets hold no mixtures of their own")
            check(m.n_negatives == self.n_negatives, f"data.mixture[{i}].n_negatives",
                  f"must be this run's data.n_negatives ({self.n_negatives}): a batch's groups are one size")
        named = [("data", self)] + [(f"data.mixture[{i}]", m) for i, m in enumerate(self.mixture)]
        for key, d in named if self.mixture and self.n_negatives else []:
            check(d.negatives != "random", f"{key}.negatives", "with data.mixture, negatives come from each "
                  "dataset's own pool (bm25, a mix, or file), not random documents of the merged corpus")


DATA_CONFIGS.update({name: DataConfig for name in DATASETS})


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
class FusionConfig:
    """A teacher's score as a weighted fusion of components (``teacher.fusion``); weight 0 leaves
    a component out. ``ce``: the teacher's cross-encoder (``teacher.model``, or fine-tuned from
    ``teacher.init``); ``bm25``: Lucene BM25 (a pair BM25 did not retrieve in its top
    ``data.bm25.hits`` gets the query's lowest retrieved score); ``minilm``/``mpnet``: the packaged
    bi-encoders' cosine. One component: its raw scores. Several: each standardised per query over
    the documents scored for it (z-scores), then summed with the weights, as Hofstätter et al.'s
    ensemble teachers combine their members."""

    ce: float = 0.0
    bm25: float = 0.25
    minilm: float = 1.0
    mpnet: float = 0.25
    """(The default fusion is ``teacher=ensemble``'s, chosen on pycode/dev: docs/teacher/README.md.)"""

    def __post_init__(self):
        check(any(w != 0 for w in dataclasses.asdict(self).values()), "ce",
              "a teacher needs at least one component with a non-zero weight")

    def active(self) -> dict[str, float]:
        """{component: weight} of the components in use, in TEACHER_COMPONENTS order."""
        return {k: w for k, w in dataclasses.asdict(self).items() if w != 0}


@dataclass
class TeacherConfig:
    """The teacher (``teacher=`` group) whose scores distillation reads: a cross-encoder, BM25, the
    packaged bi-encoders, or a weighted fusion of them (``fusion``)."""

    name: str = "ensemble"
    """Folder name of its prepared outputs (scores, report card, trained weights)."""
    model: str | None = None
    """A trained cross-encoder: local folder or HF id (AutoModelForSequenceClassification);
    null fine-tunes one from ``init``."""
    init: str | None = "minilm"
    """Start of a fine-tuned teacher: 'minilm' (the packaged all-MiniLM-L6-v2) or a folder/HF id."""
    download: bool = False
    """Allow fetching HF ids (online machines only)."""
    max_len: int = 128
    """Tokens per (query, document) pair."""
    batch_size: int = 64
    """Pairs per scoring batch."""
    fusion: FusionConfig = field(default_factory=FusionConfig)
    """The teacher's components and their weights (``teacher.fusion.minilm=1``; 0 leaves one out)."""
    standardise: bool = False
    """Write even a one-component teacher's scores as per-query z-scores (a fusion always is):
    teachers then differ in their ranking, not in the spread a KL at one temperature reads."""
    noise: float = 0.0
    """Gaussian noise added to every score, in units of its query's score spread (standard
    deviation over the query's scored documents), seeded by the pair: a deliberately corrupted
    teacher for supervision-quality experiments."""
    pool: str = "bm25"
    """Where the scored candidates come from: ``bm25``, ``minilm``, ``mpnet`` or a ``+``-joined mix
    (interleaved by rank)."""
    candidates: int = 7
    """Pool negatives scored per training query, beside its positives (the KL's candidate pool)."""
    shard: str | None = None
    """'i/n' scores only shard i of n (0-based); null reads SLURM_ARRAY_TASK_ID/COUNT, else the
    launcher's RANK/WORLD_SIZE, else 0/1."""
    report_splits: list[str] = field(default_factory=lambda: ["dev", "test"])
    """The report card's splits (the first one is what a teacher is chosen on; never choose on test)."""
    report_references: list[str] = field(default_factory=lambda: ["bm25", "minilm"])
    """The references the card re-ranks the pool with (``bm25``, ``minilm``, ``mpnet``)."""
    report_pool: str = "bm25+minilm"
    """The report card re-ranks, per query, the union of these systems' top ``report_depth``."""
    report_depth: int = 30
    report_max_queries: int | None = None
    train: TeacherTrainConfig = field(default_factory=TeacherTrainConfig)

    def __post_init__(self):
        check(self.model is not None or self.init is not None or not self.fusion.ce, "teacher.model",
              "set teacher.model=FOLDER|HF_ID (a trained cross-encoder), or teacher.init to fine-tune one")
        check(self.max_len > 8, "teacher.max_len", "must be > 8")
        check(self.candidates >= 0, "teacher.candidates", "must be >= 0")
        check(self.noise >= 0, "teacher.noise", "must be >= 0")
        for key, pool in (("teacher.pool", self.pool), ("teacher.report_pool", self.report_pool)):
            bad = [x for x in pool.split("+") if x not in POOL_SYSTEMS]
            check(not bad, key, f"systems joined by '+' from {', '.join(POOL_SYSTEMS)}; got {pool!r}")
        check(self.report_depth > 0, "teacher.report_depth", "must be positive")
        bad = [r for r in self.report_references if r not in POOL_SYSTEMS]
        check(not bad, "teacher.report_references", f"unknown reference {bad[:1]} (known: {', '.join(POOL_SYSTEMS)})")
        _check_shard(self.shard, "teacher.shard")


@dataclass
class BudgetConfig:
    """Training compute (``budget=`` group): exactly one of ``flops``, ``tokens`` and ``steps``
    (scaling/budget.py counts them; ``dry_run=true`` prints the plan without loading weights)."""

    name: str = "cpu"
    flops: float | None = 2.6e13
    """Training FLOPs; steps = floor(flops / flops_per_step). The default (cpu_grid's budget) buys
    the built-in run (sparse, size=smollm2-l1, 8 queries a step) 489 steps, about 6 minutes on 2 CPU cores."""
    tokens: float | None = None
    """Training tokens (at the maximum lengths); steps = floor(tokens / tokens_per_step)."""
    steps: int | None = None
    """Fixed number of optimiser steps (the FLOPs are then reported, not planned)."""

    def __post_init__(self):
        check(sum(x is not None for x in (self.flops, self.tokens, self.steps)) == 1, "budget",
               "set exactly one of budget.flops, budget.tokens and budget.steps (null the others)")
        check(self.flops is None or self.flops > 0, "budget.flops", "must be positive")
        check(self.tokens is None or self.tokens > 0, "budget.tokens", "must be positive")
        check(self.steps is None or self.steps > 0, "budget.steps", "must be positive")


@dataclass
class TrainerConfig:
    """Optimisation and the Lightning Trainer (``trainer=`` group)."""

    name: str = "cpu"
    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    precision: str = "32-true"
    batch_size: int = 32
    """Queries per device per forward (each brings 1 + n_negatives documents)."""
    accumulate: int = 1
    """Forwards per optimiser step (derived instead when ``global_batch`` is set)."""
    global_batch: int | None = None
    """Queries per optimiser step over all devices. Set, it is the invariant: each of W devices
    takes global_batch / W per step, in forwards of at most ``batch_size`` (the rest accumulated),
    so the plan and the steps do not change with W. Null: the per-device batch is fixed and the
    global one is batch_size x accumulate x W."""
    grad_cache_chunk: int | None = None
    """Gradient caching (Gao et al., GradCache): encode each micro-batch's queries and documents in
    chunks of this many rows without keeping their graphs, compute the loss and its gradients with
    respect to the representations on the whole batch, then re-encode each chunk (with the random
    state of its first pass, so dropout repeats) and back-propagate the cached gradients. Memory is
    bounded by one chunk instead of the batch, so with ``global_batch`` a device takes its whole
    share in one micro-batch (``batch_size`` no longer caps it); the re-encoding costs one more
    forward per step, reported under the budget's ``not_charged``. Null: off."""
    num_nodes: int = 1
    lr: float = 1.0e-3
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    checkpoint_every: int = 50
    """Save a resumable checkpoint every N steps (and at the end)."""
    log_every: int = 1
    """Log the losses and FLOP ledger every N optimiser steps (logs/metrics.csv, W&B); 1: every step."""
    num_workers: int = 0
    threads: int | None = None
    """torch CPU threads; null: the task's CPUs inside a Slurm job (SLURM_CPUS_PER_TASK), else
    torch's default (every core of the machine, which tasks sharing a node would oversubscribe)."""

    def __post_init__(self):
        check(self.batch_size > 0, "trainer.batch_size", "must be positive")
        check(self.accumulate > 0, "trainer.accumulate", "must be positive")
        check(self.global_batch is None or self.global_batch > 0, "trainer.global_batch", "must be positive or null")
        check(self.num_nodes > 0, "trainer.num_nodes", "must be positive")
        check(self.grad_cache_chunk is None or self.grad_cache_chunk > 0, "trainer.grad_cache_chunk",
              "must be positive or null")
        check(self.lr > 0, "trainer.lr", "must be positive")
        check(0 <= self.warmup_ratio < 1, "trainer.warmup_ratio", "must be in [0, 1)")


@dataclass
class LoggerConfig:
    """Where per-step metrics go (``logger=`` group; scaling/tracking.py): csv (Lightning's
    CSVLogger, RUN_DIR/logs/metrics.csv), wandb (one W&B run per grid point, and the same CSV
    unless ``logger.csv=false``), or none."""

    name: str = "csv"
    project: str = "scaling"
    entity: str | None = None
    """W&B entity (team or user); null: the account's default. Ignored inside a sweep."""
    group: str | None = None
    """W&B group outside a grid (a grid's runs are grouped by the grid's name)."""
    tags: list[str] = field(default_factory=list)
    mode: str = "auto"
    """W&B mode: auto (online only when credentials are present: WANDB_API_KEY or a netrc entry),
    online, offline (RUN_DIR/wandb/offline-run-*, ``wandb sync`` later) or disabled. WANDB_MODE wins."""
    csv: bool = True
    """With logger=wandb, also write RUN_DIR/logs/metrics.csv (Lightning's CSVLogger beside the
    WandbLogger, continued across resumes like logger=csv's), so the run folder holds its own
    per-step numbers whatever happens to the W&B run. logger=csv always writes it."""

    def __post_init__(self):
        check(self.name in ("csv", "wandb", "none"), "logger.name",
               f"must be csv, wandb or none, got {self.name!r}")
        check(self.mode in ("auto", "online", "offline", "disabled"), "logger.mode",
              f"must be auto, online, offline or disabled, got {self.mode!r}")
        check(self.csv or self.name != "csv", "logger.csv",
              "false leaves logger=csv nothing to write (logger=none logs nothing)")


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
    query_instruction: str | None = None
    """Text prepended to every evaluation query (after the model's query prefix) instead of the
    dataset's ``data.instruction``: an unseen paraphrase, or "" for none; null: the dataset's own."""
    k: int = 1000
    wait_s: float = 3600.0
    """After encoding its share, how long rank 0 of a multi-process launch waits for the other
    ranks' corpus blocks before it stops with an error naming the missing ones."""
    untrained: bool = True
    """Also evaluate the untrained backbone (step 0), cached across runs."""
    baselines: list[str] = field(default_factory=lambda: ["bm25", "minilm", "splade"])
    """Reference systems on the same table: bm25 (Lucene), minilm (the packaged all-MiniLM-L6-v2),
    splade (the packaged SPLADE-tiny)."""
    index: str = "flat"
    """Dense export: flat (exact inner product), hnsw or ivfpq (FAISS)."""
    quantization: float = 100.0
    """Sparse export: impact = weight x quantization, made an integer by ``rounding``."""
    rounding: str = "round"
    """Sparse export: round (to the nearest integer) or floor (truncate, as int() does)."""
    measures: list[str] = field(default_factory=lambda: ["nDCG@10", "RR@10", "R@100", "R@1000"])
    every_n_steps: int | None = None
    """Also evaluate every N training steps on ``curve_split`` (a learning curve in result.json's
    ``curve``; each point encodes the corpus once more); null: only after training."""
    curve_split: str = "dev"
    entropy_negatives: int = 63
    """Contrastive entropy (scaling/evaluation/entropy.py): each evaluated query's positive against
    this many random negatives, drawn once per dataset and split and saved; 0: not measured."""
    entropy_seed: int = 0
    """The candidate sets' seed (the same for every run, whatever its ``seed``)."""
    zero_shot: list[Any] = field(default_factory=list, metadata=union(DATA_CONFIGS, "dataset"))
    """Other datasets the trained model is also evaluated on, unseen in training: each a data
    config as ``data=<name>`` composes it, then the entry's keys (``{name: pkgdesc}``,
    ``{name: beir, path: DIR}``; its ``eval_splits``, test by default), its rows beside the training
    data's in the same table and result (``<dataset>/<split>``), with the references and the
    untrained backbone on them too. Queries and documents are cut to each one's own lengths."""
    beir_root: str | None = None
    """A local folder holding one BEIR dataset per name of ``beir_sets``: ``<root>/<name>/``
    (corpus.jsonl, queries.jsonl, qrels/test.tsv) or ``<root>/<name>.zip``. Each is evaluated
    zero-shot on its test split after ``zero_shot``'s datasets, its rows ``<name>/test``; a missing
    one fails before any work, naming it (scaling/data/beir.py: ``suite``)."""
    beir_sets: list[str] = field(default_factory=list)
    """BEIR dataset names read from ``beir_root`` (``eval=beir13``: the 13 public sets Zeng et al.
    report), each with ``data.ignore_identical_ids`` (BEIR's evaluator's default). The table and
    result.json add the plain mean over exactly these rows of each of ``measures``
    (``beir<N>/mean``; each set counts once, whatever its number of queries)."""
    compare_to: str | None = "bm25"
    """The results table marks each system's difference from this column (a reference system or
    ``untrained``) when significant: a paired t-test (*) and a paired randomization test (†) on
    the per-query values, Holm-corrected over the table's systems (scaling/analysis/significance.py);
    null: no marks."""
    alpha: float = 0.05
    """Significance level of those marks."""

    def __post_init__(self):
        check(self.entropy_negatives >= 0, "eval.entropy_negatives", "must be >= 0")
        check(0 < self.alpha < 1, "eval.alpha", "must be in (0, 1)")
        check(self.compare_to in (None, "untrained", *REFERENCE_SYSTEMS), "eval.compare_to",
              f"must be untrained, one of {', '.join(REFERENCE_SYSTEMS)}, or null; got {self.compare_to!r}")
        check(self.every_n_steps is None or self.every_n_steps > 0, "eval.every_n_steps", "must be positive or null")
        self.precision = str(self.precision)  # eval.precision=32 arrives as an int
        check(self.precision in ("32", "bf16"), "eval.precision", f"must be 32 or bf16, got {self.precision!r}")
        check(self.block > 0, "eval.block", "must be positive")
        check(self.wait_s > 0, "eval.wait_s", "must be positive")
        for name in ("doc_len", "query_len"):
            v = getattr(self, name)
            check(v is None or v > 0, f"eval.{name}", "must be positive or null")
        _check_shard(self.shard, "eval.shard")
        check(self.index in ("flat", "hnsw", "ivfpq"), "eval.index",
               f"must be flat, hnsw or ivfpq, got {self.index!r}")
        check(self.quantization > 0, "eval.quantization", "must be positive")
        check(self.rounding in ("floor", "round"), "eval.rounding", f"must be floor or round, got {self.rounding!r}")
        bad = [b for b in self.baselines if b not in REFERENCE_SYSTEMS]
        check(not bad, "eval.baselines", f"unknown reference system {bad[:1]} (known: {', '.join(REFERENCE_SYSTEMS)})")
        check(bool(self.beir_root) or not self.beir_sets, "eval.beir_root",
              f"the {len(self.beir_sets)} sets of eval.beir_sets are read from eval.beir_root=DIR: a folder "
              "holding <name>/ (corpus.jsonl, queries.jsonl, qrels/test.tsv) or <name>.zip for each")
        check(bool(self.beir_sets) or not self.beir_root, "eval.beir_sets",
              "eval.beir_root is set but names no set: list them (eval.beir_sets=[scifact,nfcorpus]) "
              "or take eval=beir13")
        odd = [n for n in self.beir_sets if not n or "/" in n or n in (".", "..") or n.endswith(".zip")]
        check(not odd, "eval.beir_sets", f"{odd[:1]} is not a dataset name (the folder's name under eval.beir_root)")
        twice = sorted({n for n in self.beir_sets if self.beir_sets.count(n) > 1})
        check(not twice, "eval.beir_sets", f"{twice[0]!r} is listed twice" if twice else "")

    def result_settings(self) -> dict:
        """The settings a result depends on (not where or in how many pieces it ran): cache keys."""
        skip = ("baselines", "untrained", "device", "shard", "block", "batch_size", "wait_s", "every_n_steps",
                "curve_split", "compare_to", "alpha", "zero_shot", "beir_root", "beir_sets")
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in skip}


@dataclass
class GridConfig:
    """A grid of runs (``experiment=`` configs set it; scaling/grid.py). ``axes`` maps a group
    (paradigm, loss, size, ...) or a dotted key (budget.flops) to its values; point i of the grid
    is the i-th combination, the last axis varying fastest."""

    name: str | None = None
    """The grid's name: its runs go to ``<root>/<name>/<point>`` and a finished point is skipped."""
    axes: dict[str, list[Any]] = field(default_factory=dict)
    brings: dict[str, dict[Any, dict[str, Any]]] = field(default_factory=dict)
    """Settings a point brings with one of its values: axis -> value -> {dotted key: value}, e.g.
    ``{loss: {kd: {data.n_negatives: 1, trainer.global_batch: 16}}}`` (distillation's own data
    shape). Applied before parsing, whichever launcher reached the point; a key the command line
    sets wins. The point's folder name stays its axes' values; grid.json lists what each brings."""
    index: int | None = None
    """Run only point ``index`` (a Slurm array task, a sweep agent); null: whatever the command
    line chose (``-m`` expands the whole grid)."""
    root: str = "runs"
    point: dict[str, str] = field(default_factory=dict)
    """This run's value on each axis: filled from the composed command line, not set by hand."""

    def __post_init__(self):
        check(self.name is None or bool(self.axes), "grid.axes", "a named grid needs at least one axis")
        check(self.index is None or self.index >= 0, "grid.index", "must be >= 0")


@dataclass
class RunConfig:
    """One grid point (``recipes/run.py``). Every default here is the built-in run's, except where
    a group's YAML option (``recipes/conf/<group>/<option>.yaml``) overrides it."""

    paradigm: ParadigmConfig = field(default_factory=ParadigmConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    run_dir: str | None = None
    """The run folder; null: ``<grid.root>/<grid.name>/<point>`` in a grid, else
    runs/<time>-<paradigm>-<loss>-<size>, fixed once per launch (every rank of a multi-process
    launch writes to the same one; see scaling/rundir.py)."""
    dry_run: bool = False
    """Print the budget plan (its last stdout line is one JSON object) and stop: no weights, data
    or run folder are touched."""
    cache_dir: str = DEFAULT_CACHE
    """Built corpora, converted models, prepared data and the cached reference/untrained metrics."""
    seed: int = 0
    overwrite: bool = False
    """Replace a finished run_dir (otherwise a finished run is never overwritten)."""

    def __post_init__(self):
        if not self.cache_dir:  # SCALING_CACHE set but empty: the default, not the cwd
            self.cache_dir = DEFAULT_CACHE
        for term in self.terms:
            term.bind(self.paradigm.temperature)
        check(not (self.data.mixture and any(t.needs_teacher for t in self.terms)), "data.mixture",
              "a mixture trains without distillation (teacher scores belong to one dataset): use loss=cl")

    def query_instruction(self) -> str:
        """What evaluation prepends to queries: ``eval.query_instruction``, else the dataset's own."""
        given = self.eval.query_instruction
        return self.data.instruction if given is None else given

    @property
    def terms(self) -> list[TermConfig]:
        """Every loss term of the run: the loss group's, then the paradigm's."""
        return list(self.loss.terms) + list(self.paradigm.terms)


RESUME_MAY_CHANGE = ("logger", "trainer.threads", "trainer.num_workers", "trainer.log_every",
                     "trainer.checkpoint_every", "eval.wait_s", "eval.device", "eval.batch_size", "eval.shard",
                     "eval.baselines", "eval.untrained", "grid.index", "run_dir", "overwrite", "dry_run")
"""What a rerun into an unfinished run folder may set differently and still resume it
(scaling/rundir.py): where and how fast it runs, what it logs and which reference systems the
table shows (evaluated afresh by the finishing attempt). Every other key shapes training or its
outputs: a difference there is refused, naming the keys."""


@dataclass
class EvaluateConfig:
    """``recipes/evaluate.py``: a checkpoint and/or reference systems on a dataset's splits."""

    checkpoint: str | None = None
    """A RUN_DIR/checkpoint folder written by run.py."""
    baseline: Any = None
    """Reference systems on the table: bm25 | minilm | splade | [bm25,splade] | none; null: eval.baselines.
    Without a checkpoint they are evaluated alone (one system's numbers are then ``metrics``)."""
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    run_dir: str | None = None
    """The output folder; null: a fresh one under runs/."""
    cache_dir: str = DEFAULT_CACHE
    overwrite: bool = False

    def __post_init__(self):
        if not self.cache_dir:
            self.cache_dir = DEFAULT_CACHE
        names = self.references
        if names is not None:
            bad = [n for n in names if n not in REFERENCE_SYSTEMS]
            check(not bad, "baseline", f"unknown reference system {bad[:1]} (known: {', '.join(REFERENCE_SYSTEMS)}, none)")
            self.eval = dataclasses.replace(self.eval, baselines=names)
        check(self.checkpoint is not None or bool(names), "checkpoint",
              "give checkpoint=RUN_DIR/checkpoint, or baseline=bm25|minilm|splade to evaluate a reference system alone")

    @property
    def references(self) -> list[str] | None:
        """``baseline``: bm25 | minilm | splade | [bm25,splade] | none -> a list; unset -> None."""
        if self.baseline is None:
            return None
        names = [self.baseline] if isinstance(self.baseline, str) else list(self.baseline)
        return [n for part in names for n in str(part).split(",") if n and n != "none"]


PREPARE_STEPS = ("data", "model", "mntp", "bm25", "pools", "teacher_model", "teacher")


def check_steps(steps) -> None:
    """Every prepare step named is one of PREPARE_STEPS (recipes/prepare.py and scaling.prepare)."""
    bad = [s for s in steps if s not in PREPARE_STEPS]
    check(not bad, "steps", f"unknown step {bad[:1]} (known: {', '.join(PREPARE_STEPS)})")


@dataclass
class PrepareConfig(RunConfig):
    """``recipes/prepare.py``: the run configuration plus the steps to prepare (in this order)."""

    steps: list[str] = field(default_factory=lambda: list(PREPARE_STEPS))

    def __post_init__(self):
        super().__post_init__()
        check_steps(self.steps)

    def run_config(self) -> RunConfig:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(RunConfig)}
        return RunConfig(**fields)


# The named choices of the paradigm and loss groups. They are typed nodes rather than YAML files
# because their heads and term lists are tagged unions: from these, Hydra knows every key of the
# chosen head and terms, so a typo (paradigm.head.chunk on a dense head, loss.terms.0.tempreature)
# fails while composing, and an omitted key still takes its dataclass default.
PARADIGMS = {
    "dense": ParadigmConfig(),
    "sparse": ParadigmConfig(name="sparse", temperature=1.0, head=SparseHeadConfig(), terms=[FlopsConfig()]),
    "sparse_zeng": ParadigmConfig(name="sparse_zeng", temperature=1.0, head=SparseHeadConfig(
        skip_sink=False, skip_prefix=False, lexical=False, fold=False), terms=[FlopsConfig()]),
}
PARADIGM_MODELS = {
    "sparse_zeng": {"bidirectional": True, "mntp": {"steps": 10000}},
}
"""Model settings a paradigm choice brings with it: Zeng et al.'s decoder reads bidirectionally
after MNTP adaptation (~10k steps on the corpus: a GPU setting)."""
LOSSES = {
    "cl": LossConfig(),
    "kd": LossConfig(name="kd", terms=[KLConfig()]),
    "cl+kd": LossConfig(name="cl+kd", terms=[InfoNCEConfig(weight=0.5), KLConfig(weight=0.5)]),
    "margin_mse": LossConfig(name="margin_mse", terms=[MarginMSEConfig()]),
    "kd_inbatch": LossConfig(name="kd_inbatch", terms=[KLConfig(in_batch=True)]),
}

CODE_GROUPS = {"paradigm": PARADIGMS, "loss": LOSSES}
"""Config groups whose options are defined here, not in a recipes/conf folder (scaling.cli files
them in Hydra's ConfigStore; scaling.grid names folders by their choices)."""


DATA_OPTIONS = Path(__file__).resolve().parents[1] / "recipes" / "conf" / "data"


def as_data_option(entry):
    """A dataset named inside another key (``eval.zero_shot``'s ``{name: pkgdesc}``) as ``data=<name>``
    composes it: the option's YAML (recipes/conf/data/<name>.yaml: pkgdesc's documents at 128
    tokens, BEIR's lengths) under the entry's own keys. Anything but such a mapping is left as is."""
    path = DATA_OPTIONS / f"{entry.get('name')}.yaml" if isinstance(entry, dict) else None
    if path is None or not path.exists():
        return entry
    from omegaconf import OmegaConf
    return OmegaConf.to_container(OmegaConf.merge(OmegaConf.load(path), entry))


def parse(data: dict, cls=RunConfig):
    """Validate a composed config mapping into ``cls`` (RunConfig by default)."""
    for group, key in (("eval", "zero_shot"), ("data", "mixture")):
        entries = (data.get(group) or {}).get(key) if isinstance(data, dict) else None
        if isinstance(entries, list):
            data = {**data, group: {**data[group], key: [as_data_option(e) for e in entries]}}
    return build(cls, data)


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)
