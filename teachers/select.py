"""Choose a teacher on the dev split: every component alone and weighted fusions of them, each
re-ranking the report card's pool, ranked by nDCG@10.

    python -m teachers.select                                   # pycode dev, bm25/minilm/mpnet
    python -m teachers.select --ce minilm-ce=~/.cache/scaling/prepared/pycode/teachers/minilm-ce/model
    python -m teachers.select --split dev --depth 30 --out docs/teacher/select.json data=beir data.path=DIR

Only ``--split`` is read (dev by default): a teacher chosen on the split it is reported on would
look better than it is. Every component scores the pool once; each weighting is then a cheap
fusion of those scores (teachers/fusion.py), so a grid of weightings costs little beyond the
cross-encoders' scoring. What goes to disk: ``--out`` (JSON), when given.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from scaling.evaluation import format_table, score_run
from teachers.fusion import fuse

WEIGHTS = (0.0, 0.25, 0.5, 1.0)
"""Each component's weight in the grid (the best component is fixed at 1: weights are relative)."""


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m teachers.select", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default="dev", help="the split to choose on (default: dev)")
    parser.add_argument("--components", default="bm25,minilm,mpnet", help="packaged components")
    parser.add_argument("--ce", action="append", default=[], metavar="NAME=FOLDER",
                        help="a trained cross-encoder to include (repeatable)")
    parser.add_argument("--depth", type=int, default=30, help="the pool: union of BM25's and MiniLM's top N")
    parser.add_argument("--max-len", type=int, default=128)
    parser.add_argument("overrides", nargs="*", help="run-config overrides (data=..., cache_dir=...)")
    parser.add_argument("--out", default=None, help="write the ranked table as JSON")
    args = parser.parse_args(argv)

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from scaling import cli
    from scaling.config import parse
    from scaling.grid import CONF_DIR
    from scaling.data import corpora
    from teachers import crossencoder
    from teachers.report import MEASURES, as_run, pool
    from teachers.teacher import Teacher
    cli.register()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        conf = compose("config", [*args.overrides, f"teacher.max_len={args.max_len}", "teacher.fusion.ce=0",
                                  "teacher.fusion.bm25=1"])
    cfg = parse(OmegaConf.to_container(conf, resolve=True))
    dataset = corpora.load(cfg.data, Path(cfg.cache_dir).expanduser())
    teacher = Teacher(cfg, dataset)
    qrels = dataset.qrels[args.split]
    qids = list(qrels)
    pools = pool(teacher, qids, "bm25+minilm", args.depth)
    pairs = [(q, d) for q in qids for d in pools[q]]
    parts: dict[str, dict] = {}
    for name in args.components.split(","):
        parts[name] = as_run(pairs, teacher.component(name, pairs))
    for spec in args.ce:
        name, folder = spec.split("=", 1)
        model, tok = crossencoder.load(str(Path(folder).expanduser()))
        parts[name] = as_run(pairs, crossencoder.score_pairs(model, tok, [(dataset.queries[q], dataset.corpus[d])
                                                                            for q, d in pairs], args.max_len))
    alone = {name: score_run(run, qrels, MEASURES)["nDCG@10"] for name, run in parts.items()}
    best = max(alone, key=alone.get)
    others = [n for n in parts if n != best]
    rows = []
    for combo in itertools.product(WEIGHTS, repeat=len(others)):
        weights = {best: 1.0, **{n: w for n, w in zip(others, combo) if w}}
        fused = fuse({n: parts[n] for n in weights}, weights)
        rows.append({"weights": weights, **score_run(fused, qrels, MEASURES)})
    rows.sort(key=lambda r: -r["nDCG@10"])
    print(f"[select] {args.split}: {len(qids)} queries, {len(pairs) / len(qids):.0f} documents each "
          f"(BM25's and MiniLM's top {args.depth}); components alone: "
          + ", ".join(f"{n} {v:.4f}" for n, v in sorted(alone.items(), key=lambda kv: -kv[1])))
    print(format_table({" + ".join(f"{w:g} {n}" for n, w in r["weights"].items()):
                        {args.split: {m: r[m] for m in MEASURES}} for r in rows[:12]}))
    out = {"split": args.split, "depth": args.depth, "queries": len(qids), "alone": alone, "ranked": rows}
    if args.out:
        from scaling.io import write_json_atomic
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(Path(args.out), out)
    return out


if __name__ == "__main__":
    main()
