"""What runs read but nobody should compute twice: BM25 runs, hard-negative groups, teacher scores.

Steps (``recipes/prepare.py steps=[...]``), each cached and skipped when its output exists:

- ``data``: the dataset (the built-in corpus is built once; a BEIR folder is validated);
- ``model``: the backbone's local weights (the packaged SmolLM2 is converted once);
- ``mntp``: the backbone's starting point when ``model.mntp.steps`` > 0, an MNTP-adapted decoder
  (scaling/start.py; a training run makes it itself when missing, but never while building a model);
- ``bm25``: a Lucene index of the corpus, a BM25 run for the training split,
  and the training groups (each query's positives and its BM25 candidates minus them, topped
  up with random documents when BM25 finds fewer than ``data.bm25.hits``);
- ``pools``: the runs of the bi-encoders that ``data.negatives`` or ``teacher.pool`` name
  (``minilm``, ``mpnet``) over the training split, for mixed candidate pools (scaling/data/pools.py);
- ``teacher_model``: only the teacher and its report card (before a sharded ``teacher`` array);
- ``teacher``: the teacher (teachers/teacher.py: a cross-encoder fine-tuned from ``teacher.init``
  when ``teacher.model`` is null, BM25, the packaged bi-encoders, or a fusion of them), its report
  card, then its scores for every training query's positives and first ``teacher.candidates``
  negatives of ``teacher.pool``; the cross-encoder's part sharded (``teacher.shard=i/n`` or a Slurm
  array), fused once the last shard is done.

What goes to disk, under ``<cache_dir>/prepared/<dataset>/``::

    bm25/config.json, bm25/index/, bm25/<split>.run, bm25/<train split>.groups.jsonl
    pools/<name>/<train split>.run, encoders/<name>-<max_len>/ (bi-encoder vectors)
    teachers/<name>/config.json, model/ (a fine-tuned teacher), report.json,
    teachers/<name>/shards/scores.<i>-of-<n>.tsv, ce.scores.tsv, teachers/<name>/<train split>.scores.tsv

Each folder's config.json records what its outputs depend on; asking for different settings
under the same folder is an error (pick another ``teacher.name`` or delete the folder), never a
silent mix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from scaling.config import PREPARE_STEPS, ConfigError, RunConfig, check_steps
from scaling.data.formats import read_groups, write_groups, write_scores
from scaling.io import write_json_atomic

STEPS = PREPARE_STEPS


def dataset_key(cfg: RunConfig) -> str:
    """'pycode', a BEIR name, or '<folder name>-<hash of its absolute path>' for a local path."""
    if not cfg.data.path:
        return cfg.data.beir_name or cfg.data.name
    path = Path(cfg.data.path).expanduser().resolve()
    return f"{path.name}-{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"


@dataclass
class Paths:
    root: Path
    train_split: str
    teacher_name: str

    @property
    def bm25(self) -> Path:
        return self.root / "bm25"

    def run(self, split: str) -> Path:
        return self.bm25 / f"{split}.run"

    @property
    def groups(self) -> Path:
        return self.bm25 / f"{self.train_split}.groups.jsonl"

    @property
    def teacher(self) -> Path:
        return self.root / "teachers" / self.teacher_name

    @property
    def teacher_scores(self) -> Path:
        return self.teacher / f"{self.train_split}.scores.tsv"


def paths(cfg: RunConfig) -> Paths:
    return Paths(Path(cfg.cache_dir).expanduser() / "prepared" / dataset_key(cfg),
                 cfg.data.train_split, cfg.teacher.name)


def teacher_scores_path(cfg: RunConfig) -> Path:
    """data.teacher_scores when set, else where ``prepare`` writes the teacher's scores (checked
    to come from this run's teacher settings)."""
    if cfg.data.teacher_scores:
        return Path(cfg.data.teacher_scores).expanduser()
    p = paths(cfg)
    guard(p.teacher, teacher_record(cfg), write=False)
    return p.teacher_scores


def prepare_command(cfg: RunConfig, step: str) -> str:
    """The prepare call for ``step`` on this run's data (teacher options are the caller's to add)."""
    data = f"data={cfg.data.name}" + (f" data.path={cfg.data.path}" if cfg.data.path else "") + \
        (f" data.beir_name={cfg.data.beir_name}" if cfg.data.beir_name else "")
    return f"python recipes/prepare.py {data} steps=[{step}]"


def guard(folder: Path, record: dict, write: bool = True) -> None:
    """Record what ``folder``'s outputs depend on; refuse to mix outputs of different settings."""
    path = folder / "config.json"
    record = json.loads(json.dumps(record))
    if path.exists():
        old = json.loads(path.read_text())
        diff = sorted(k for k in set(old) | set(record) if old.get(k) != record.get(k))
        if diff:
            raise ConfigError(f"{folder} was prepared with other settings ({', '.join(diff)}: "
                              f"{[old.get(k) for k in diff]} there, {[record.get(k) for k in diff]} now); "
                              "delete the folder or choose another teacher.name")
        return
    if write:
        write_json_atomic(path, record)


def _top(docs: dict[str, float]) -> list[str]:
    return sorted(docs, key=lambda d: (-docs[d], d))


def make_groups(run, qrels, doc_ids: list[str], depth: int) -> tuple[list[dict], int]:
    """Each query's positives and its BM25 candidates minus the judged documents, best first.

    A query whose BM25 list is shorter than ``depth`` (few matching terms) is topped up to
    ``depth`` minus its judged documents with random documents (seeded by its id), so every
    query stays trainable. Returns (groups, topped).
    """
    import random
    groups, topped = [], 0
    for qid, judged in qrels.items():
        positives = sorted(d for d, rel in judged.items() if rel > 0)
        if not positives:
            continue
        negatives = [d for d in _top(run.get(qid, {})) if d not in judged]
        want = min(depth, len(doc_ids)) - len(judged)  # what BM25 gives when it finds >= depth
        if len(negatives) < want:
            topped += 1
            rng, seen = random.Random(qid), set(negatives) | set(judged)
            while len(negatives) < want:
                d = doc_ids[rng.randrange(len(doc_ids))]
                if d not in seen:
                    seen.add(d)
                    negatives.append(d)
        groups.append({"qid": qid, "positives": positives, "negatives": negatives})
    return groups, topped


def bm25_index(cfg: RunConfig, dataset, log=print) -> Path:
    """The dataset's BM25 index under the prepared folder (built once, settings guarded)."""
    from scaling.index import bm25
    p = paths(cfg)
    guard(p.bm25, dataclasses.asdict(cfg.data.bm25))
    t = time.time()
    index = bm25.build_index(dataset.corpus, p.bm25 / "index", cfg.data.bm25)
    log(f"[prepare] bm25 index: {index} ({time.time() - t:.1f} s)")
    return index


def mntp_dir(cfg: RunConfig) -> Path:
    """Where the MNTP-adapted weights of ``cfg``'s backbone live: under the dataset's prepared
    folder, keyed by the model settings (``model.mntp`` included; not ``init_from``, so the stages
    of a multi-stage run share their base)."""
    settings = {k: v for k, v in dataclasses.asdict(cfg.model).items() if k != "init_from"}
    key = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode())
    return paths(cfg).root / "mntp" / key.hexdigest()[:12]


def prepare_mntp(cfg: RunConfig, dataset, log=print) -> Path | None:
    """The ``mntp`` step: adapt the backbone on the training corpus once (scaling/mntp.py); the
    folder, or None when the run starts from unadapted weights."""
    if cfg.model.mntp.steps == 0:
        return None
    out = mntp_dir(cfg)
    if not (out / "mntp.json").exists():
        from scaling.mntp import adapt
        adapt(cfg.model, list(dataset.corpus.values()), out, cfg.cache_dir, log)
    return out


def prepare_bm25(cfg: RunConfig, dataset, log=print) -> dict:
    """Index, search the training split, write the groups; returns the runs."""
    from scaling.index import bm25, lucene
    p = paths(cfg)
    bm25_index(cfg, dataset, log)
    runs = {}
    for split in [cfg.data.train_split]:
        if split not in dataset.qrels:
            continue
        if p.run(split).exists():
            runs[split] = lucene.read_trec_run(p.run(split))
            continue
        t = time.time()
        from scaling.index.search import write_trec_run
        runs[split] = bm25.search(p.bm25 / "index", dataset.split_queries(split), cfg.data.bm25)
        write_trec_run(runs[split], p.run(split), tag="bm25")
        log(f"[prepare] bm25 {split}: {len(runs[split])} queries x top {cfg.data.bm25.hits} "
            f"({time.time() - t:.1f} s)")
    if not p.groups.exists():
        groups, topped = make_groups(runs[cfg.data.train_split], dataset.qrels[cfg.data.train_split],
                                     list(dataset.corpus), cfg.data.bm25.hits)
        write_groups(p.groups, groups)
        log(f"[prepare] groups: {len(groups)} training queries with up to {cfg.data.bm25.hits} BM25 "
            f"negatives ({topped} topped up with random documents: BM25 found fewer) -> {p.groups}")
    return runs


def teacher_record(cfg: RunConfig) -> dict:
    t = cfg.teacher
    record = {"model": t.model, "max_len": t.max_len, "candidates": t.candidates,
              "bm25": dataclasses.asdict(cfg.data.bm25)}
    if t.model is None and t.fusion.ce:
        record.update(init=t.init, train=dataclasses.asdict(t.train), negatives_depth=cfg.data.negatives_depth)
    # settings a plain cross-encoder teacher leaves at their defaults are recorded only when set,
    # so a folder prepared before they existed still matches
    if t.fusion.active() != {"ce": 1.0}:
        record["fusion"] = t.fusion.active()
    if t.standardise and len(t.fusion.active()) == 1:  # a fusion is standardised anyway
        record["standardise"] = True
    if t.pool != "bm25":
        record["pool"] = t.pool
    if t.noise:
        record.update(noise=t.noise, seed=t.train.seed)
    return record


def _cross_encoder_flops(cfg: RunConfig, pairs: int) -> tuple[Path | None, float | None]:
    """(the teacher's cross-encoder folder, the forward FLOPs of ``pairs`` through it at
    ``teacher.max_len`` tokens a pair, an upper bound); (None, None) when its config is not on
    disk (a score file from elsewhere, or no cross-encoder)."""
    folder = Path(cfg.teacher.model).expanduser() if cfg.teacher.model else paths(cfg).teacher / "model"
    if cfg.data.teacher_scores or not (folder / "config.json").exists():
        return None, None
    from transformers import AutoConfig

    from scaling import budget, sizes
    arch = sizes.arch_of(AutoConfig.from_pretrained(str(folder)))
    return folder, budget.scoring_flops(arch, pairs, cfg.teacher.max_len)


def teacher_scoring(cfg: RunConfig, scores: Path | None, pairs: int | None = None) -> dict | None:
    """What scoring the distillation inputs cost, reported beside a run and never charged to it:
    the pairs in the score file (``pairs`` when the caller has parsed it already) and, when the
    teacher's cross-encoder config is on disk (the prepared teacher, or a local ``teacher.model``),
    its forward FLOPs at ``teacher.max_len`` tokens a pair (an upper bound); ``flops`` is null for
    a score file from elsewhere. None without teacher scores."""
    if scores is None:
        return None
    if pairs is None:
        from scaling.data.teacher_files import read
        pairs = sum(map(len, read(scores, cfg.data.teacher_format).scores.values()))  # any layout, gzip or plain
    folder, flops = _cross_encoder_flops(cfg, pairs)
    return {"pairs": pairs, "max_len": cfg.teacher.max_len, "flops": flops,
            "teacher": str(folder) if folder is not None else str(scores)}


def in_batch_cost(cfg: RunConfig, pairs: dict[str, int] | None) -> dict | None:
    """What in-batch distillation's teacher cost a run, reported beside it and never charged: the
    pairs each component scored and, for a cross-encoder with its config on disk, their forward
    FLOPs (``_cross_encoder_flops``). The bi-encoders' vectors are encoded once per dataset and
    cached (their pairs are dot products)."""
    if pairs is None:
        return None
    return {"pairs": pairs, "ce_flops": _cross_encoder_flops(cfg, pairs["ce"])[1] if pairs.get("ce") else None}


def teacher_summary(cfg: RunConfig, scores: Path | None, dataset_name: str) -> dict | None:
    """What a distilling run records of its teacher: its name (``teacher.name``, or the score
    file's name for a file from elsewhere), the file, and, for a prepared teacher, its report
    card's own row ({split: {measure: value}}): the report plots students against it."""
    if scores is None:
        return None
    if cfg.data.teacher_scores:
        return {"name": Path(scores).name, "scores": str(scores), "card": {}}
    card_path = paths(cfg).teacher / "report.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    row = f"teacher {cfg.teacher.name!r}"
    return {"name": cfg.teacher.name, "scores": str(scores),
            "card": {f"{dataset_name}/{split}": part["systems"][row]
                     for split, part in card.get("splits", {}).items() if row in part.get("systems", {})}}


def teacher_pairs(groups: dict[str, dict], candidates: int, pools: dict[str, list[str]] | None = None) -> list[tuple[str, str]]:
    """(qid, docid) pairs a teacher scores: every positive and the first ``candidates`` negatives of
    the query's pool (``pools``; by default its BM25 groups' negatives)."""
    return [(q, d) for q, g in groups.items()
            for d in g["positives"] + (pools.get(q, []) if pools is not None else g["negatives"])[:candidates]]


def pool_hint(cfg: RunConfig) -> str:
    """The prepare command for a pool's files, ``{step}`` left to fill."""
    return prepare_command(cfg, "{step}")


def read_pools(cfg: RunConfig, pool: str, depth: int | None, qrels: dict) -> dict[str, list[str]]:
    """{qid: negatives} of the training split (judged ``qrels``) from ``pool``
    (scaling/data/pools.py), the first ``depth``."""
    from scaling.data import pools
    p = paths(cfg)
    return pools.read(p.root, pool, cfg.data.train_split, qrels, depth, p.groups, pool_hint(cfg))


def prepare_pools(cfg: RunConfig, dataset, log=print) -> None:
    """The bi-encoder runs of the training split that ``data.negatives`` and ``teacher.pool`` name."""
    from scaling.data import pools
    from scaling.index.search import write_trec_run
    from teachers.teacher import Teacher
    names = [s for spec in (cfg.data.negatives, cfg.teacher.pool) if spec not in ("random", "file")
             for s in pools.systems(spec) if s != "bm25"]
    teacher = Teacher(cfg, dataset, log=log)
    for name in dict.fromkeys(names):
        path = pools.run_path(paths(cfg).root, name, cfg.data.train_split)
        if path.exists():
            continue
        t = time.time()
        qids = list(dataset.qrels[cfg.data.train_split])
        write_trec_run(teacher.bi_encoder(name).search(qids, cfg.data.bm25.hits), path, tag=name)
        log(f"[prepare] pool {name}: {len(qids)} queries x top {cfg.data.bm25.hits} ({time.time() - t:.1f} s) -> {path}")


def load_teacher(cfg: RunConfig, dataset, groups, shard: tuple[int, int], log=print):
    """The teacher's (model, tokenizer): a given one, or one fine-tuned here (once)."""
    from teachers import crossencoder
    t, p = cfg.teacher, paths(cfg)
    if t.model is not None:
        return crossencoder.load(t.model, t.download)
    model_dir = p.teacher / "model"
    if not (model_dir / "config.json").exists():
        if shard[1] > 1:
            raise ConfigError(f"teacher {t.name!r} is not trained yet and shard {shard[0]}/{shard[1]} "
                              "would train it alongside the other shards: first run "
                              f"`{prepare_command(cfg, 'bm25,teacher_model')}` with this teacher's options "
                              "and no teacher.shard, then launch the array")
        from teachers.train import train_teacher
        log(f"[prepare] fine-tuning teacher {t.name!r} from {t.init!r} ({t.train.steps} steps)")
        t0 = time.time()
        train_teacher(dataset, groups, t, p.teacher, cfg.data.negatives_depth, t.train.seed)
        log(f"[prepare] teacher trained ({time.time() - t0:.0f} s) -> {model_dir}")
    return crossencoder.load(str(model_dir))


def prepare_teacher(cfg: RunConfig, dataset, log=print, score: bool = True) -> Path | None:
    """Report card and (this shard's) teacher scores; returns the merged file once complete.

    ``score=False`` stops after the model and its report card (train once, then shard the scoring).
    Only the cross-encoder component is sharded (the other components are cheap): shards hold its
    raw scores, and the last shard fuses them with the others into the teacher's score file.
    """
    from teachers import report, shards
    from teachers.teacher import Teacher
    t, p = cfg.teacher, paths(cfg)
    guard(p.teacher, teacher_record(cfg))
    if p.teacher_scores.exists() and score:
        log(f"[prepare] teacher scores: {p.teacher_scores} (done)")
        return p.teacher_scores
    shard = shards.resolve_shard(t.shard) if score else (0, 1)  # teacher_model: train/load only
    groups = read_groups(p.groups)
    teacher = Teacher(cfg, dataset, lambda: load_teacher(cfg, dataset, groups, shard, log), log)
    if t.fusion.ce:
        teacher.cross_encoder()  # trained (or refused) before anything else

    card_path = p.teacher / "report.json"
    card_key = {"splits": t.report_splits, "pool": t.report_pool, "depth": t.report_depth,
                "max_queries": t.report_max_queries}
    card = json.loads(card_path.read_text()) if card_path.exists() else None
    if shard[0] == 0 and (card is None or card.get("key") != card_key):
        t0 = time.time()
        card = report.report_card(teacher, dataset, t)
        card["key"], card["seconds"] = card_key, round(time.time() - t0, 1)
        write_json_atomic(card_path, card)
    if card is not None:
        report.print_card(card)
    if not score:
        return None

    pools = None if t.pool == "bm25" else read_pools(cfg, t.pool, None, dataset.qrels[cfg.data.train_split])
    pairs = shards.canonical(teacher_pairs(groups, t.candidates, pools))
    given = {}
    if t.fusion.ce:
        i, n = shard
        shard_dir = p.teacher / "shards"
        if i in shards.finished(shard_dir, n):
            log(f"[prepare] teacher shard {i}/{n} already finished")
        else:
            mine = shards.shard_pairs(pairs, i, n)
            log(f"[prepare] teacher shard {i}/{n}: {len(mine)} of {len(pairs)} pairs")
            shards.write_shard(shard_dir, i, n, dict(zip(mine, teacher.component("ce", mine))))
        done = shards.finished(shard_dir, n)
        if len(done) < n:
            log(f"[prepare] {len(done)} of {n} teacher shards finished; the last one merges them")
            return None
        given["ce"] = shards.merge(shard_dir, n, pairs, p.teacher / "ce.scores.tsv")
    fused = teacher.score(pairs, given)
    write_scores(p.teacher_scores, {(q, d): s for q, docs in fused.items() for d, s in docs.items()})
    log(f"[prepare] teacher scores: {len(pairs)} pairs ({', '.join(teacher.weights)}) -> {p.teacher_scores}")
    return p.teacher_scores


def prepare(cfg: RunConfig, steps=STEPS, log=print) -> dict:
    """Run ``steps`` in order; returns {step: what it produced}."""
    check_steps(steps)
    from scaling import sizes
    from scaling.data import corpora
    cache = Path(cfg.cache_dir).expanduser()
    out: dict = {}
    t = time.time()
    dataset = corpora.load(cfg.data, cache)
    if "data" in steps:
        log(f"[prepare] dataset {dataset.name}: {len(dataset.corpus)} documents, {len(dataset.queries)} "
            f"queries, splits {{{', '.join(f'{s}: {len(q)}' for s, q in dataset.qrels.items())}}} "
            f"({time.time() - t:.1f} s)")
        out["data"] = dataset.name
    if "model" in steps and sizes.get(cfg.model.name).source == "gguf" and cfg.model.path is None:
        from scaling.backbone import gguf_dir
        t = time.time()
        out["model"] = gguf_dir(cfg.model.name, cache)
        log(f"[prepare] model {cfg.model.name}: {out['model']} ({time.time() - t:.1f} s)")
    if "mntp" in steps and cfg.model.mntp.steps > 0:
        out["mntp"] = prepare_mntp(cfg, dataset, log)
        log(f"[prepare] starting point: {out['mntp']} (MNTP-adapted)")
    if {"bm25", "pools", "teacher_model", "teacher"} & set(steps):
        prepare_bm25(cfg, dataset, log)
        out["bm25"] = paths(cfg).groups
    if {"pools", "teacher_model", "teacher"} & set(steps):
        prepare_pools(cfg, dataset, log)
    if {"teacher_model", "teacher"} & set(steps):
        out["teacher"] = prepare_teacher(cfg, dataset, log, score="teacher" in steps)
    return out


def load_negative_pools(cfg: RunConfig, qrels: dict) -> dict[str, list[str]]:
    """{qid: the first data.negatives_depth negatives of the data.negatives pool}, from the
    prepared files (``qrels``: the training split's judgements, left out of every pool)."""
    return read_pools(cfg, cfg.data.negatives, cfg.data.negatives_depth, qrels)


def needs_teacher(terms: list) -> bool:
    """True when any configured term distils from teacher scores."""
    return any(t.needs_teacher for t in terms)


def check_data_for(terms: list, data_cfg, teacher_scores=None, how: str = "") -> None:
    """Fail before any model loads when a term needs teacher scores the run cannot find
    (scaling/checks.py calls it, after checking the term's negatives).

    ``teacher_scores`` is the resolved score file (data.teacher_scores or the prepared one);
    ``how`` says how to build it.
    """
    if not needs_teacher(terms):
        return
    name = next(t.name for t in terms if t.needs_teacher)
    path = teacher_scores or data_cfg.teacher_scores
    if not path or not Path(path).expanduser().exists():
        where = f" (none at {path})" if path else ""
        raise ConfigError(f"loss term {name!r} needs teacher scores{where}: set "
                         f"data.teacher_scores=FILE (TSV qid<TAB>docid<TAB>score){how}")
