"""An ad-hoc multirun (not a named grid) collected into one report folder, end to end, as the
README documents it: each run's folder is named from its Hydra overrides under runs/mine, and
``recipes/report.py runs/mine`` shows every point as its own row, its size named as typed.

Two 2-step runs of the tiny model on the small BEIR folder (about 30 s in all on two cores). The
test runs in a fresh folder with the data linked in as ``small`` and the cache in SCALING_CACHE,
so that the command line has no path with a slash in it beyond the documented ``run_dir``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT, tiny_args

DOCUMENTED = ["-m", "size=tiny", "model.num_layers=1,2", "run_dir=runs/mine/${hydra:job.override_dirname}"]
"""``python recipes/run.py -m size=tiny model.num_layers=1,2 'run_dir=runs/mine/${hydra:job.override_dirname}'``
(README, Grids and reports; recipes/conf/config.yaml keeps run_dir out of the folder's name)."""


def table_rows(markdown: str, split: str) -> list[list[str]]:
    section = markdown.split(f"## Results: {split}\n", 1)[1].split("\n## ", 1)[0]
    return [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()
            if line.startswith("|") and not line.startswith("| ---")]


def test_an_adhoc_multirun_collects_into_one_report(small_beir, tmp_path):
    (tmp_path / "small").symlink_to(small_beir)
    fixed = [a for a in tiny_args(small_beir, tmp_path / "cache")
             if not a.startswith(("cache_dir=", "data.path=", "budget.steps=", "size="))]
    fixed += ["data.path=small", "budget.steps=2", "eval.untrained=false"]
    env = {**os.environ, "SCALING_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, str(ROOT / "recipes" / "run.py"), *DOCUMENTED, *fixed],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]

    mine = tmp_path / "runs" / "mine"
    results = sorted(mine.glob("*/result.json"))
    assert len(results) == 2, sorted(p.relative_to(tmp_path) for p in mine.rglob("result.json"))
    folders = {json.loads(p.read_text())["config"]["model"]["num_layers"]: p.parent.name for p in results}
    assert set(folders) == {1, 2}  # one folder per point, no collision
    for layers, name in folders.items():
        assert f"model.num_layers={layers}" in name.split(",") and "size=tiny" in name.split(",")
        assert "run_dir" not in name

    report = subprocess.run([sys.executable, str(ROOT / "recipes" / "report.py"), "runs/mine", "--resamples", "0"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    md = (mine / "report" / "report.md").read_text()
    assert "2 result records under `runs/mine`, 2 points." in md
    split = next(iter(json.loads(results[0].read_text())["metrics"]))
    header, *rows = table_rows(md, split)
    col = {name: i for i, name in enumerate(header)}
    by_size = {r[col["size"]]: r for r in rows}
    assert set(by_size) == {"tiny model.num_layers=1", "tiny model.num_layers=2"}
    for path in results:
        rec = json.loads(path.read_text())
        row = by_size[f"tiny model.num_layers={rec['config']['model']['num_layers']}"]
        assert row[col["params (M)"]] == f"{rec['budget']['plan']['params_nonembedding'] / 1e6:.2f}"
        assert row[col["nDCG@10"]] == f"{rec['metrics'][split]['nDCG@10']:.4f}"
    one, two = by_size["tiny model.num_layers=1"], by_size["tiny model.num_layers=2"]
    assert one[col["params (M)"]] != two[col["params (M)"]]
