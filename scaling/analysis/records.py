"""Result records of finished runs, read for the report: one ``result.json`` per run folder.

``load_runs(root)`` finds every ``result.json`` under ``root`` (recursively; hidden folders, such
as half-written temporary ones, are skipped) and reads each into a ``Run``. A record that is not
JSON or lacks a needed field is skipped, and the returned problems name its file and the dotted
field (``strict=True`` raises ``RecordError`` instead). Needed: ``config.paradigm.name``,
``config.loss.name``, ``config.model.name``, ``metrics`` (a mapping of "<dataset>/<split>" to
measures), ``budget.plan.params_nonembedding`` and the training FLOPs
(``budget.realised.flops``, else ``budget.plan.total_flops``).

A run's size is named as the command line names it (``rung_name``): the grid point's ``size``
when the record has one (and the point sets no ``model.num_layers``), else the option under ``recipes/conf/size/`` whose ``model.name`` and
``model.num_layers`` are the record's (``smollm2-135m`` cut to 1 layer is ``smollm2-l1``), else what
one would type (``tiny model.num_layers=1``), so that the report's rows read like the commands.

``average(runs)`` merges runs that differ only in their seed into one ``Point``: measures
averaged over seeds (repeats of one seed averaged first), their spread across seeds
(``Point.spread``: sd, and a 95% t-interval of the mean with three or more seeds), and each query's
measures averaged (``Point.per_query``, for paired tests); ``grid_progress(root)`` compares ``root/grid.json`` with the
run folders; ``unfinished_runs(root)`` finds run folders that never wrote a result (failed,
stopped or still running). Nothing here writes to disk.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

REFERENCE_SYSTEMS = ("bm25", "minilm", "mpnet", "splade")
SIZE_DIR = Path(__file__).resolve().parents[2] / "recipes" / "conf" / "size"
"""The ``size=`` options: their ``name`` and ``num_layers`` name a record's rung as the CLI does."""
RUN_FILES = ("config.json", "budget.json", "ckpt", "running.json")
"""What a run writes before its result (scaling/experiment.py): the first marks a run folder."""


class RecordError(ValueError):
    """A result record that cannot be used: names the file and the field."""

    def __init__(self, path: Path, field_name: str, message: str):
        self.path, self.field = Path(path), field_name
        super().__init__(f"{path}: {field_name}: {message}")


@dataclass
class Run:
    """One run's record, with the values the report needs pulled out of it."""

    path: Path
    paradigm: str
    loss: str
    size: str
    fraction: float
    seed: int | None
    budget: str
    """The configured budget as text (``1e+13 FLOPs``, ``200 steps``): runs differing in it are different points."""
    params: int
    """Non-embedding parameters of the backbone."""
    flops: float
    """Training FLOPs realised (else planned)."""
    steps: int | None
    metrics: dict[str, dict[str, float]]
    baseline: dict[str, dict[str, float]] = field(default_factory=dict)
    reference: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    curve: list[dict] = field(default_factory=list)
    budget_flops: float | None = None
    """The nominal FLOP budget (``config.budget.flops``) the run ran under; None under token or
    step budgets. The figures tick it: realised FLOPs fall short of it by up to a step."""
    teacher: str | None = None
    """The teacher a distilling run learnt from (its ``teacher.name``, or its score file's name);
    None for a run that does not distil."""
    teacher_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    """The teacher's report card ({split: {measure: value}}) as the run recorded it."""
    per_query: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict, repr=False)
    """{split: {measure: {qid: value}}} of the trained model (results written before per-query
    measures were kept have none)."""
    reference_per_query: dict[str, dict[str, dict[str, dict[str, float]]]] = field(default_factory=dict, repr=False)
    """{system: {split: {measure: {qid: value}}}} of the reference systems."""
    variant: str = ""
    """The grid point's values on axes the other fields do not name (``instruction=seen``): two
    points differing only there are two rows, not two seeds."""
    family: str = ""
    """The backbone family: ``model.name`` with a dense head's pooling (``smollm2-135m eos``). A size
    law runs through one family: sizes of two families are not one curve."""

    @property
    def key(self) -> tuple:
        """What a point is: everything but the seed."""
        return (self.paradigm, self.loss, self.size, self.fraction, self.budget, self.teacher, self.variant)


@dataclass
class Point:
    """Runs of one key averaged over seeds: ``metrics``/``baseline`` hold the means. ``seeds`` counts
    distinct seeds; two runs with one seed (the same point in two grids) are repeats, not seeds."""

    paradigm: str
    loss: str
    size: str
    fraction: float
    budget: str
    params: float
    flops: float
    steps: float | None
    metrics: dict[str, dict[str, float]]
    baseline: dict[str, dict[str, float]]
    seeds: int
    runs: list[Run]
    budget_flops: float | None = None
    """The nominal FLOP budget (``config.budget.flops``), None under token or step budgets."""
    teacher: str | None = None
    teacher_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    spread: dict[str, dict[str, "Spread"]] = field(default_factory=dict)
    """{split: {measure: Spread}} across seeds."""
    per_query: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict, repr=False)
    """{split: {measure: {qid: mean over the runs}}}, where every run kept them."""
    variant: str = ""
    family: str = ""

    def by_seed(self, split: str, measure: str) -> dict:
        """{seed: the measure} (repeats of a seed averaged), in seed order."""
        runs: dict = defaultdict(list)
        for r in self.runs:
            if measure in r.metrics.get(split, {}):
                runs[r.seed].append(r.metrics[split][measure])
        return {seed: sum(v) / len(v) for seed, v in sorted(runs.items(), key=lambda kv: str(kv[0]))}

    def seed_values(self, split: str, measure: str) -> list[float]:
        """The measure of each seed (repeats of a seed averaged): what fits go through."""
        return list(self.by_seed(split, measure).values())

    @property
    def series(self) -> str:
        """``paradigm/loss``, and ``@teacher`` for a distilling run: a loss is only as good as
        the teacher it copies, so runs from two teachers are two series."""
        return f"{self.paradigm}/{self.loss}" + (f"@{self.teacher}" if self.teacher else "")


@dataclass
class Spread:
    """A measure across seeds: their number, standard deviation (ddof 1; None for one seed) and a
    95% t-interval of the mean (None under three seeds: two say little about the spread)."""

    n: int
    mean: float
    sd: float | None
    lo: float | None
    hi: float | None


def spread(values: list[float]) -> Spread:
    import math

    from scipy import stats
    n, mean = len(values), sum(values) / len(values)
    if n < 2:
        return Spread(n, mean, None, None, None)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    if n < 3:
        return Spread(n, mean, sd, None, None)
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return Spread(n, mean, sd, mean - half, mean + half)


NAMED_AXES = ("paradigm", "loss", "size", "backbone", "seed", "data.fraction", "model.num_layers")
"""Grid axes a Run names in its own fields (with any ``budget.*``); the others make its ``variant``."""


def variant(point: dict | None) -> str:
    """``axis=value`` of the point's axes that the run's other fields do not name, in axis order."""
    return " ".join(f"{k}={v}" for k, v in (point or {}).items()
                    if k not in NAMED_AXES and not k.startswith("budget."))


def start_label(start: dict | None) -> str | None:
    """A run's starting point (``result["start"]``, scaling/start.py) as one word for its variant,
    None for the packaged weights (or a record without one). A later stage names the stages before
    it, earliest first (``pycode-cl-150steps``); an MNTP-adapted decoder its steps (``mntp-200steps``).
    Two runs equal in all else but started from different weights are two points, not two seeds."""
    if not isinstance(start, dict) or start.get("kind") in (None, "packaged"):
        return None
    if start["kind"] == "checkpoint":
        stage = start.get("stage") or {}
        here = f"{stage.get('data')}-{stage.get('loss')}-{stage.get('steps')}steps"
        earlier = start_label(start.get("from"))
        return f"{earlier}+{here}" if earlier else here
    if start["kind"] == "mntp":
        return f"mntp-{(start.get('made_by') or {}).get('mntp_steps')}steps"
    return str(start["kind"])


def variant_axes(label: str) -> dict[str, str]:
    """``variant``'s label back to {axis: value} (``"instruction=seen tasks=both"``)."""
    return dict(part.split("=", 1) for part in label.split() if "=" in part)


def _per_query(value) -> dict[str, dict[str, dict[str, float]]]:
    """{split: {measure: {qid: value}}} from a metrics mapping whose splits hold ``per_query``."""
    out = {}
    for split, m in (value or {}).items():
        pq = m.get("per_query") if isinstance(m, dict) else None
        if isinstance(pq, dict):
            out[split] = {k: {q: float(x) for q, x in v.items()} for k, v in pq.items() if isinstance(v, dict)}
    return out


def _get(data: dict, dotted: str, path: Path, required: bool = True):
    node = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node or node[part] is None:
            if required:
                raise RecordError(path, dotted, "missing")
            return None
        node = node[part]
    return node


def _number(value, path: Path, dotted: str, kind=float):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(path, dotted, f"expected a number, got {value!r}")
    return kind(value)


def _budget_label(budget: dict) -> str:
    if budget.get("flops") is not None:
        return f"{float(budget['flops']):.3g} FLOPs"
    if budget.get("tokens") is not None:
        return f"{float(budget['tokens']):.3g} tokens"
    if budget.get("steps") is not None:
        return f"{int(budget['steps'])} steps"
    return str(budget.get("name", "?"))


def _measures(value, path: Path, dotted: str) -> dict[str, dict[str, float]]:
    """A mapping split -> measure -> number; non-numeric measures are dropped."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise RecordError(path, dotted, 'expected {"<dataset>/<split>": {measure: number}}')
    return {split: {k: float(v) for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            for split, m in value.items()}


@lru_cache(maxsize=None)
def size_options(size_dir: Path = SIZE_DIR) -> dict[str, tuple[str, int | None]]:
    """``size=`` option -> (``model.name``, ``model.num_layers``) from ``size_dir/*.yaml``, read
    with yaml.safe_load (no Hydra: the report stays light). An option without ``num_layers``
    keeps ModelConfig's default, null (every layer); a file that is not a mapping with a name and
    an integer (or no) ``num_layers`` is left out (Hydra would refuse it anyway)."""
    import yaml
    options = {}
    for path in sorted(Path(size_dir).glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and data.get("name") is not None:
            layers = data.get("num_layers")
            if layers is None or (isinstance(layers, int) and not isinstance(layers, bool)):
                options[path.stem] = (str(data["name"]), layers)
    return options


def rung_name(model: str, layers: int | None, point: dict | None = None,
              options: dict[str, tuple[str, int | None]] | None = None) -> str:
    """A run's size as the command line names it. The grid point's ``backbone`` when it has one
    (``recipes/conf/backbone``: a size and its pooling, so two poolings of one size are two rows);
    else the grid point's ``size`` when the record has
    one, unless the point also sets ``model.num_layers`` (a size alone then names several rungs)
    or that option's model is not the record's (an option without ``num_layers`` keeps every
    layer, whatever their number). Else the ``size=`` option with this ``model.name`` and
    ``model.num_layers`` (the one named like the model when several match); else
    ``<model.name> model.num_layers=<n>``, what one would type (``tiny model.num_layers=1``), or
    the model's name when it keeps every layer."""
    options = size_options() if options is None else options
    point = point or {}
    if point.get("backbone") is not None:  # a backbone option names a size with its pooling (smollm2-eos)
        return str(point["backbone"])
    size = point.get("size")
    if size is not None and "model.num_layers" not in point:
        name, option_layers = options.get(str(size), (model, layers))
        if name == model and option_layers in (None, layers):
            return str(size)
    matches = sorted(o for o, spec in options.items() if spec == (model, layers))
    if matches:
        return model if model in matches else matches[0]
    return model if layers is None else f"{model} model.num_layers={layers}"


def read_run(path: Path) -> Run:
    """Read one ``result.json``; raises ``RecordError`` naming the file and field when unusable."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise RecordError(path, "(file)", f"unreadable: {e}") from None
    except json.JSONDecodeError as e:
        raise RecordError(path, "(file)", f"not JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(data, dict):
        raise RecordError(path, "(file)", "expected a JSON object")
    paradigm = str(_get(data, "config.paradigm.name", path))
    loss = str(_get(data, "config.loss.name", path))
    model = str(_get(data, "config.model.name", path))
    layers = _get(data, "config.model.num_layers", path, required=False)
    if layers is not None:
        layers = _number(layers, path, "config.model.num_layers", int)
    point = _get(data, "grid.point", path, required=False)
    size = rung_name(model, layers, point if isinstance(point, dict) else None)
    fraction = _get(data, "config.data.fraction", path, required=False)
    fraction = 1.0 if fraction is None else _number(fraction, path, "config.data.fraction")
    seed = _get(data, "config.seed", path, required=False)
    params = _number(_get(data, "budget.plan.params_nonembedding", path), path,
                     "budget.plan.params_nonembedding", int)
    flops = _get(data, "budget.realised.flops", path, required=False)
    flops_field = "budget.realised.flops"
    if flops is None:
        flops, flops_field = _get(data, "budget.plan.total_flops", path, required=False), "budget.plan.total_flops"
    if flops is None:
        raise RecordError(path, "budget.realised.flops", "missing (and no budget.plan.total_flops)")
    steps = _get(data, "budget.realised.steps", path, required=False)
    if steps is None:
        steps = _get(data, "budget.plan.max_steps", path, required=False)
    metrics = _measures(_get(data, "metrics", path), path, "metrics")
    if not metrics:
        raise RecordError(path, "metrics", "empty")
    reference = _get(data, "reference_metrics", path, required=False) or {}
    if not isinstance(reference, dict):
        raise RecordError(path, "reference_metrics", "expected {system: {split: {measure: number}}}")
    curve = _get(data, "curve", path, required=False) or []
    if not isinstance(curve, list):
        raise RecordError(path, "curve", "expected a list of {step, flops, metrics}")
    budget = _get(data, "config.budget", path, required=False) or {}
    budget_flops = budget.get("flops") if isinstance(budget, dict) else None
    teacher = _get(data, "teacher.name", path, required=False)
    card = _get(data, "teacher.card", path, required=False) or {}
    return Run(path=path, paradigm=paradigm, loss=loss, size=str(size), fraction=fraction,
               seed=None if seed is None else int(seed),
               budget=_budget_label(budget if isinstance(budget, dict) else {}),
               budget_flops=None if budget_flops is None else _number(budget_flops, path, "config.budget.flops"),
               params=params, flops=_number(flops, path, flops_field),
               steps=None if steps is None else _number(steps, path, "budget.realised.steps", int),
               metrics=metrics,
               baseline=_measures(_get(data, "baseline_metrics", path, required=False), path, "baseline_metrics"),
               reference={name: _measures(v, path, f"reference_metrics.{name}") for name, v in reference.items()},
               curve=[c for c in curve if isinstance(c, dict) and "step" in c and isinstance(c.get("metrics"), dict)],
               teacher=None if teacher is None else str(teacher),
               teacher_metrics=_measures(card, path, "teacher.card") if isinstance(card, dict) else {},
               per_query=_per_query(_get(data, "metrics", path)),
               reference_per_query={name: _per_query(v) for name, v in reference.items() if isinstance(v, dict)},
               variant=_with_start(variant(point if isinstance(point, dict) else None),
                                   start_label(_get(data, "start", path, required=False))),
               family=" ".join(str(x) for x in (model, _get(data, "config.paradigm.head.pooling", path, required=False))
                               if x is not None))


def _with_start(label: str, start: str | None) -> str:
    """The variant with ``start=<start_label>`` appended when the run did not start from the packaged weights."""
    return " ".join(part for part in (label, f"start={start}" if start else "") if part)


def find_results(root: Path) -> list[Path]:
    """Every ``result.json`` under ``root``, sorted, leaving out hidden (temporary) folders."""
    root = Path(root)
    return sorted(p for p in root.rglob("result.json")
                  if not any(part.startswith(".") for part in p.relative_to(root).parts[:-1]))


def unfinished_runs(root: Path) -> list[tuple[Path, list[str]]]:
    """Run folders under ``root`` without a ``result.json`` (failed, stopped, or still running),
    each with what it holds of ``RUN_FILES``: a folder holding ``config.json`` is a run's (the
    run writes it first). Hidden folders are left out, and so are folders inside a run folder."""
    root = Path(root)
    configs = sorted(p.parent for p in root.rglob("config.json")
                     if not any(part.startswith(".") for part in p.relative_to(root).parts[:-1]))
    runs = set(configs) | {p.parent for p in find_results(root)}
    out = []
    for folder in configs:
        above = [root / a for a in folder.relative_to(root).parents]  # up to root itself
        if (folder / "result.json").exists() or any(a in runs for a in above):
            continue
        out.append((folder, [n + ("/" if (folder / n).is_dir() else "") for n in RUN_FILES if (folder / n).exists()]))
    return out


def load_runs(root: Path, strict: bool = False) -> tuple[list[Run], list[str]]:
    """All usable runs under ``root`` and one line per skipped record (``FILE: FIELD: why``)."""
    runs, problems = [], []
    for path in find_results(root):
        try:
            runs.append(read_run(path))
        except RecordError as e:
            if strict:
                raise
            problems.append(str(e))
    return runs, problems


def _mean_measures(dicts: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Mean per split and measure over the records that hold it."""
    acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for d in dicts:
        for split, measures in d.items():
            for k, v in measures.items():
                acc[split][k].append(v)
    return {s: {k: sum(v) / len(v) for k, v in m.items()} for s, m in acc.items()}


def _mean_per_query(runs: list[Run]) -> dict[str, dict[str, dict[str, float]]]:
    """Each query's measure averaged over ``runs``, for the splits and measures every run kept."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for split in set.intersection(*(set(r.per_query) for r in runs)):
        for measure in set.intersection(*(set(r.per_query[split]) for r in runs)):
            tables = [r.per_query[split][measure] for r in runs]
            qids = set(tables[0])
            if all(set(t) == qids for t in tables):
                out.setdefault(split, {})[measure] = {q: sum(t[q] for t in tables) / len(tables) for q in qids}
    return out


def average(runs: list[Run]) -> list[Point]:
    """One point per (paradigm, loss, size, fraction, budget, teacher, variant): its measures averaged over
    seeds (repeats of a seed averaged first, so a repeated seed does not count twice), their spread
    across seeds, and each query's measures; sorted by paradigm, loss, then parameters."""
    groups: dict[tuple, list[Run]] = defaultdict(list)
    for run in runs:
        groups[run.key].append(run)
    points = []
    for (paradigm, loss, size, fraction, budget, teacher, label), group in groups.items():
        steps = [r.steps for r in group if r.steps is not None]
        by_seed: dict = defaultdict(list)
        for r in group:
            by_seed[r.seed].append(r)
        per_seed = [_mean_measures([r.metrics for r in rs]) for rs in by_seed.values()]
        point = Point(paradigm=paradigm, loss=loss, size=size, fraction=fraction, budget=budget,
                      params=sum(r.params for r in group) / len(group),
                      flops=sum(r.flops for r in group) / len(group),
                      steps=sum(steps) / len(steps) if steps else None,
                      metrics=_mean_measures(per_seed),
                      baseline=_mean_measures([r.baseline for r in group]),
                      seeds=len(by_seed), runs=group, budget_flops=group[0].budget_flops,
                      teacher=teacher, teacher_metrics=group[0].teacher_metrics,
                      per_query=_mean_per_query(group), variant=label, family=group[0].family)
        point.spread = {split: {m: spread([s[split][m] for s in per_seed if m in s.get(split, {})])
                                for m in measures} for split, measures in point.metrics.items()}
        points.append(point)
    return sorted(points, key=lambda p: (p.paradigm, p.loss, p.teacher or "", p.params, p.flops, p.fraction, p.budget,
                                         p.variant))


def per_seed_xy(points: list[Point], split: str, measure: str, vs: str) -> tuple[list[float], list[float]]:
    """(x, value) with one entry per seed of each point: x its non-embedding parameters
    (``vs="params"``) or training FLOPs; what fits go through, so their bootstrap sees the seeds' spread."""
    pairs = [(p.params if vs == "params" else p.flops, v) for p in points for v in p.seed_values(split, measure)]
    return [x for x, _ in pairs], [v for _, v in pairs]


def reference_per_query(runs: list[Run]) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """The reference systems' per-query measures (system -> split -> measure -> qid -> value),
    each taken from the first record that has it."""
    out: dict = {}
    for run in runs:
        for system, splits in run.reference_per_query.items():
            for split, measures in splits.items():
                for measure, values in measures.items():
                    out.setdefault(system, {}).setdefault(split, {}).setdefault(measure, values)
    return out


def references(runs: list[Run]) -> dict[str, dict[str, dict[str, float]]]:
    """The reference systems' measures (system -> split -> measure), each taken from the first
    record that has it: they do not depend on the run."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for run in runs:
        for system, splits in run.reference.items():
            for split, measures in splits.items():
                out.setdefault(system, {}).setdefault(split, measures)
    order = {name: i for i, name in enumerate(REFERENCE_SYSTEMS)}
    return dict(sorted(out.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def _holding(points: list[Point], split: str, measure: str) -> list[Point]:
    return [p for p in points if p.fraction == 1.0 and measure in p.metrics.get(split, {})]


def is_flop_budget(budget: str) -> bool:
    return budget.endswith(" FLOPs")


def params_series(points: list[Point], split: str, measure: str) -> dict[str, list[Point]]:
    """Series for fits against parameters: (paradigm, loss) -> its points at data fraction 1.0
    holding ``measure`` on ``split``; when the points ran under several budgets, one series per
    budget (``dense/cl @ 2.6e+13 FLOPs``), since a size curve compares sizes at equal compute."""
    held = _holding(points, split, measure)
    several = len({p.budget for p in held}) > 1
    out: dict[str, list[Point]] = defaultdict(list)
    series = series_namer(held)
    for p in held:
        out[f"{series(p)} @ {p.budget}" if several else series(p)].append(p)
    return dict(out)


def series_namer(held: list[Point]):
    """A function naming each point's series among ``held``: ``paradigm/loss`` (``@teacher``), then
    its backbone family when ``held`` spans several (``dense/cl gemma3-270m eos``) and its variant
    when they differ there (``dense/cl eval.doc_len=1024``): a size curve holds one family evaluated
    one way."""
    families = len({q.family for q in held}) > 1
    variants = len({q.variant for q in held}) > 1

    def name(p: Point) -> str:
        return " ".join([p.series] + ([p.family] if families else []) + ([p.variant] if variants and p.variant else []))
    return name


def flops_series(points: list[Point], split: str, measure: str) -> dict[str, list[Point]]:
    """Series for fits against training FLOPs: (paradigm, loss) -> the points at data fraction 1.0
    that say what a FLOP count buys. Under a FLOP budget every size spent the same compute, so the
    budget contributes its best point (the compute frontier: the size that did best with it, as in
    Kaplan et al.'s and Hoffmann et al.'s envelopes); under token or step budgets the FLOPs grow
    with the size and every point is kept."""
    out: dict[str, list[Point]] = defaultdict(list)
    best: dict[tuple[str, str], Point] = {}
    held = _holding(points, split, measure)
    series = series_namer(held)
    for p in held:
        name = series(p)
        if not is_flop_budget(p.budget):
            out[name].append(p)
        elif (name, p.budget) not in best or \
                p.metrics[split][measure] > best[(name, p.budget)].metrics[split][measure]:
            best[(name, p.budget)] = p
    for (name, _), p in best.items():
        out[name].append(p)
    return {name: sorted(pts, key=lambda p: p.flops) for name, pts in out.items()}


@dataclass
class Progress:
    """A grid's points against its run folders."""

    experiment: str
    total: int
    done: list[str]
    missing: list[str]

    def describe(self) -> str:
        return f"{len(self.done)} of {self.total} points done"


def grid_progress(root: Path) -> Progress | None:
    """``root/grid.json`` compared with ``root/<name>/result.json``; None without a grid.json.
    An unreadable grid.json raises ``RecordError`` naming it."""
    path = Path(root) / "grid.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        names = [str(p["name"]) for p in data["points"]]
    except json.JSONDecodeError as e:
        raise RecordError(path, "(file)", f"not JSON: {e.msg} at line {e.lineno}") from None
    except (KeyError, TypeError):
        raise RecordError(path, "points", 'expected [{"name": ..., "point": {...}}, ...]') from None
    done = [n for n in names if (Path(root) / n / "result.json").exists()]
    missing = [n for n in names if n not in set(done)]
    return Progress(experiment=str(data.get("experiment", path.parent.name)), total=len(names),
                    done=done, missing=missing)
