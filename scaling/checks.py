"""Every check a run must pass, run before any work: ``dry_run=true`` and the real run share it.

A run that would fail should fail here, in seconds, not after the reference systems and the
untrained backbone were evaluated (minutes at 8B). ``run_inputs`` checks, cheapest first:

1. the loss's needs: a term that distils compares each query's candidates, so it needs
   ``data.n_negatives >= 1`` and teacher scores;
2. the backbone: ``model.num_layers`` within its depth (read from its HF config, no weights);
3. the budget: at least one optimiser step (the plan, from the architecture alone);
4. the dataset: ``data.path`` (folder or zip), the corpus file and every split the run reads
   (training, evaluation, learning curve), naming the file that is missing;
5. the training inputs: the teacher score file parsed line by line, or the prepared BM25 pools,
   and how many training queries each covers (``scaling.data.groups``, from the training split's
   qrels alone: no corpus is read).

``make_plan`` is the one way to the budget plan (scaling/budget.py's arithmetic on the backbone's
own HF config, read without weights): the checks make it, the run trains on it.

What goes to disk: nothing, except that the real run (``build=True``) builds the dataset folder
the checks read (the built-in corpus, an extracted BEIR zip: prepared once, cached). A dry run
builds nothing; what it could not check for want of that folder is listed in ``unchecked``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from scaling import launch
from scaling.config import EvaluateConfig, RunConfig
from scaling.schema import ConfigError


@dataclass
class Inputs:
    """What the checks read, handed on so that nothing is read twice."""

    plan: object
    """The budget plan (scaling.budget.Plan)."""
    data_dir: Path | None
    """The dataset's folder; None in a dry run before the folder is built."""
    teacher_path: Path | None = None
    teacher: dict | None = None
    """{qid: {docid: score}} when a loss term distils."""
    items: list | None = None
    """The training groups (``scaling.data.groups.training_items``) with their teacher-scored or
    BM25 pools; None in a dry run before the dataset folder is built."""
    unchecked: list[str] = field(default_factory=list)
    zero_shot: list[tuple] = field(default_factory=list)
    """(data config, folder) of each dataset evaluated zero-shot: ``eval.zero_shot``'s, then
    ``eval.beir_sets``' (the folder None in a dry run before one is built)."""
    mixture: list[Path | None] = field(default_factory=list)
    """The folders of ``data.mixture``'s datasets, in order (None in a dry run before one is built)."""


def world_size(cfg: RunConfig) -> int:
    """The number of processes the Trainer will run (the plan's world size)."""
    t = cfg.trainer
    try:
        return launch.planned_world_size(t.devices, t.accelerator, t.num_nodes)
    except ValueError as e:
        raise ConfigError("trainer.devices", str(e)) from None


def make_plan(cfg: RunConfig, hf_config=None):
    """The budget plan from the backbone's own HF config (read without weights unless given) and
    the head's planned FLOPs, on the world size the Trainer will run. A budget that buys no step,
    or a ``model.num_layers`` beyond the backbone's depth, is a ConfigError."""
    from scaling import backbone, sizes
    from scaling.budget import plan_run
    from scaling.heads import head_flops, head_recomputes
    source = sizes.get(cfg.model.name).source
    arch, counts = backbone.describe(hf_config or backbone.read_hf_config(cfg.model, cfg.cache_dir), source)
    extra = head_flops(cfg.paradigm.head, arch.hidden, arch.vocab, transform=source == "mlm")
    return plan_run(cfg, arch, counts, extra, world_size(cfg), head_recompute=head_recomputes(cfg.paradigm.head))


def loss_needs(cfg: RunConfig) -> None:
    """A distilling term compares a query's candidates: it needs negatives beside the positive."""
    name = next((t.name for t in cfg.terms if t.needs_teacher), None)
    if name is not None and cfg.data.n_negatives < 1:
        raise ConfigError("data.n_negatives", f"loss term {name!r} compares each query's candidates: set "
                                              "data.n_negatives to 1 or more (e.g. data.n_negatives=7)")


def needs_scorer(cfg: RunConfig) -> bool:
    """True when a term distils over the whole batch (``kl`` with ``in_batch``): the teacher then
    scores every query of a batch against every document of it while training."""
    return any(getattr(t, "in_batch", False) for t in cfg.terms)


def scorer_ready(cfg: RunConfig) -> None:
    """An in-batch teacher is only read while training, never trained there: its cross-encoder (if
    it has one) is given or already fine-tuned, and its BM25 index built."""
    from scaling import prepare
    t, p = cfg.teacher, prepare.paths(cfg)
    if t.fusion.ce and t.model is None and not (p.teacher / "model" / "config.json").exists():
        raise FileNotFoundError(f"in-batch distillation reads teacher {t.name!r}'s cross-encoder, not trained yet "
                                f"({p.teacher / 'model'}): run `{prepare.prepare_command(cfg, 'bm25,teacher_model')}` "
                                "with this run's teacher= options")
    if t.fusion.bm25 and not (p.bm25 / "index").exists():
        raise FileNotFoundError(f"in-batch distillation from a teacher with BM25 needs the BM25 index {p.bm25 / 'index'}: "
                                f"run `{prepare.prepare_command(cfg, 'bm25')}`")


def wanted_splits(cfg: RunConfig) -> dict[str, list[str]]:
    """{config key: splits} a training run reads."""
    wanted = {"data.train_split": [cfg.data.train_split], "data.eval_splits": list(cfg.data.eval_splits)}
    if cfg.eval.every_n_steps:
        wanted["eval.curve_split"] = [cfg.eval.curve_split]
    return wanted


def dataset(data_cfg, cache_dir, wanted: dict[str, list[str]], build: bool) -> Path | None:
    """The dataset's folder once its source and the files of ``wanted`` are known present (None
    when ``build`` is false and the folder is not built yet: then only the split names are checked
    where they are fixed, as the built-in corpus's are)."""
    from scaling.data import builtin, corpora
    corpora.check_source(data_cfg, cache_dir)
    root = corpora.dataset_dir(data_cfg, cache_dir, build=build)
    if root is not None:
        corpora.check_splits(data_cfg, root, wanted)
    elif data_cfg.name in corpora.BUILT_IN:  # their splits are fixed
        known = [name for name, _ in builtin.SPLITS]
        for key, splits in wanted.items():
            bad = [s for s in splits if s not in known]
            if bad:
                raise ConfigError(key, f"dataset {data_cfg.name!r} has no split {bad[0]!r} (it has {', '.join(known)})")
    return root


def training_inputs(cfg: RunConfig, data_dir: Path | None, unchecked: list[str]):
    """(teacher path, teacher scores, training groups): the score file or the BM25 pools read
    once, and the groups built from the training split's qrels (when ``data_dir`` is there), which
    counts how many training queries the scores or pools cover."""
    from scaling import prepare
    from scaling.data import corpora
    from scaling.data import teacher_files
    from scaling.data.formats import FormatError
    from scaling.data.groups import training_items
    path = teacher = pools = given = None
    if prepare.needs_teacher(cfg.terms):
        path = prepare.teacher_scores_path(cfg)
        prepare.check_data_for(cfg.terms, cfg.data, path,
                               f", or build them: `{prepare.prepare_command(cfg, 'teacher')}` with this run's "
                               "teacher= options")
        given = teacher_files.read(path, cfg.data.teacher_format)
        if not given.scores:
            raise FormatError(path, None, f"this {given.format} file holds candidates but no scores: give it as "
                              "data.negatives=file data.negatives_file=FILE, and teacher scores as data.teacher_scores")
        teacher = given.scores
    elif cfg.data.negatives == "file":
        path = Path(cfg.data.negatives_file).expanduser()
        given = teacher_files.read(path, cfg.data.teacher_format, cfg.data.negatives_systems or None)
        if not given.pools:
            raise FormatError(path, None, f"this {given.format} file names no negatives (data.negatives_file)")
        pools, path = given.pools, None
    elif cfg.data.negatives not in ("random", "file"):
        qrels = corpora.read_split_qrels(cfg.data, data_dir, cfg.data.train_split) if data_dir else {}
        pools = prepare.load_negative_pools(cfg, qrels)  # the prepared files exist, or which step makes them
    if data_dir is None:
        if teacher is not None or pools is not None:
            unchecked.append("how many training queries the teacher scores or the candidate pools cover (the "
                             "dataset folder is built by the first real run, or `python recipes/prepare.py steps=[data]`)")
        return path, teacher, None
    d = cfg.data
    qrels = corpora.read_split_qrels(d, data_dir, d.train_split)
    if given is not None:
        print("[data] " + teacher_files.describe(teacher_files.match_report(given, qrels)), flush=True)
    source = str(given.path) if given is not None else f"the {d.negatives} pool under {prepare.paths(cfg).root}"
    items, _ = training_items(qrels, d.n_negatives, d.max_train_queries, d.fraction, teacher, pools,
                              d.missing_teacher, source)
    return path, teacher, items


def run_inputs(cfg: RunConfig, build: bool = True) -> Inputs:
    """Every check of a training run (see the module's docstring); raises ConfigError,
    FileNotFoundError or FormatError, each naming the key or the file (and line) at fault."""
    loss_needs(cfg)
    listed = zero_shot_configs(cfg.eval)  # a set missing from eval.beir_root: only the folder's listing read
    from scaling import start
    earlier = start.check(cfg, build)  # an earlier training stage: finished, the same model and head
    plan = make_plan(cfg)  # the depth check (read_hf_config) and the budget's: at least one step
    data_dir = dataset(cfg.data, cfg.cache_dir, wanted_splits(cfg), build)
    unchecked: list[str] = [earlier] if earlier else []
    if data_dir is None:
        unchecked.append(f"the {cfg.data.name} dataset's files (not built yet)")
    path, teacher, items = training_inputs(cfg, data_dir, unchecked)
    mixed, items = mixture_inputs(cfg, data_dir, items, build, unchecked)
    if needs_scorer(cfg):
        scorer_ready(cfg)
    zero_shot = zero_shot_dirs(cfg, listed, data_dir, build, mixed)
    return Inputs(plan, data_dir, path, teacher, items, unchecked, zero_shot, mixed)


def mixture_inputs(cfg, data_dir: Path | None, items: list | None, build: bool, unchecked: list[str]):
    """(folders, training groups) of a ``data.mixture`` run: each dataset checked like the run's
    own (its splits, its candidate pools), its groups under prefixed ids, all of them weighted
    (``scaling.data.mixture``)."""
    import dataclasses

    from scaling.data import mixture
    if not cfg.data.mixture:
        return [], items
    dirs, sources = [], [items]
    for i, m in enumerate(cfg.data.mixture):
        key = f"data.mixture[{i}]"
        root = dataset(m, cfg.cache_dir, {f"{key}.train_split": [m.train_split], f"{key}.eval_splits": list(m.eval_splits)},
                       build)
        _another(key, m, root, {data_dir: "the run", **{d: "an earlier mixture" for d in dirs}})
        dirs.append(root)
        sources.append(None if root is None else mixture.prefix_items(
            mixture.tag(i), training_inputs(dataclasses.replace(cfg, data=m), root, unchecked)[2]))
    if any(s is None for s in sources):
        return dirs, None
    return dirs, mixture.weighted(sources, [cfg.data.weight] + [m.weight for m in cfg.data.mixture])


def zero_shot_configs(e) -> list[tuple[str, object]]:
    """(config key, data config) of every dataset evaluated zero-shot, in table order:
    ``eval.zero_shot``'s, then one per ``eval.beir_sets`` name under ``eval.beir_root``, composed
    as ``data=beir`` composes it (``scaling.data.beir.suite``: a set missing there fails here)."""
    from scaling.config import DataConfig, as_data_option
    from scaling.data import beir
    from scaling.schema import build
    listed = [(f"eval.zero_shot[{i}]", z) for i, z in enumerate(e.zero_shot)]
    entries = beir.suite(e.beir_root, e.beir_sets) if e.beir_sets else []
    return listed + [(f"eval.beir_sets[{j}]", build(DataConfig, as_data_option(x), f"eval.beir_sets[{j}]."))
                     for j, x in enumerate(entries)]


def zero_shot_dirs(cfg, listed: list[tuple[str, object]], data_dir: Path | None, build: bool,
                   trained: list = ()) -> list[tuple]:
    """(data config, folder) of each of ``listed`` (``zero_shot_configs``), its source and splits
    checked; one that is the training (or evaluated) dataset itself, one of ``trained`` (a
    mixture's), or listed twice, is a ConfigError."""
    dirs = []
    for key, z in listed:
        root = dataset(z, cfg.cache_dir, {f"{key}.eval_splits": list(z.eval_splits)}, build)
        _another(key, z, root, {data_dir: "the run", **{d: "a mixture" for d in trained},
                                **{d: "an earlier zero-shot" for d in dirs}})
        dirs.append(root)
    return [(z, root) for (_, z), root in zip(listed, dirs)]


def _another(key: str, data_cfg, root: Path | None, taken: dict) -> None:
    """A dataset listed beside the run's (``data.mixture``, ``eval.zero_shot``) must be another one
    than each of ``taken`` ({folder: whose}): the same folder would train or report twice."""
    if root is not None and root in taken:
        raise ConfigError(key, f"{data_cfg.name} ({root}) is {taken[root]}'s dataset already: list another dataset")


def evaluate_inputs(cfg: EvaluateConfig) -> tuple[RunConfig, Path, list[tuple]]:
    """recipes/evaluate.py's checks before a model loads: (the checkpoint's run configuration, or
    the defaults without one; a folder that is not a checkpoint fails with a hint), the dataset
    folder, its files for the evaluated splits present, and the zero-shot (data config, folder)s,
    the BEIR suite's sets found before the dataset is built."""
    from scaling.checkpoint import read_config
    base = read_config(cfg.checkpoint) if cfg.checkpoint else RunConfig()
    listed = zero_shot_configs(cfg.eval)
    root = dataset(cfg.data, cfg.cache_dir, {"data.eval_splits": list(cfg.data.eval_splits)}, build=True)
    return base, root, zero_shot_dirs(cfg, listed, root, build=True)
