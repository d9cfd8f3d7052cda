"""recipes/report.py end to end on tests/fixtures/report: 2 paradigms x 2 losses x 4 sizes from a
grid (one more grid point not run), a second seed of one point, two data fractions of another, and
an ad-hoc single-point series that is too short to fit. Errors there follow err = c * L^-alpha
with alpha 0.20 (dense/cl), 0.25 (dense/kd), 0.15 (sparse/cl), 0.30 (sparse/kd) and +-1% noise."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scaling.analysis import records, table

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "report"
SCRIPT = ROOT / "recipes" / "report.py"
ALPHAS = {"dense/cl": 0.20, "dense/kd": 0.25, "sparse/cl": 0.15, "sparse/kd": 0.30}
PNG = b"\x89PNG\r\n\x1a\n"


def run_report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs") / "cpu_grid"
    shutil.copytree(FIXTURE, runs)
    proc = run_report(str(runs), "--resamples", "200")
    return proc, runs, runs / "report"


def table_rows(markdown: str, split: str = "pycode/test") -> list[list[str]]:
    """The cells of the results table for ``split`` (header first)."""
    section = markdown.split(f"## Results: {split}\n", 1)[1].split("\n## ", 1)[0]
    return [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()
            if line.startswith("|") and not line.startswith("| ---")]


def fixture_record(name: str) -> dict:
    return json.loads((FIXTURE / name / "result.json").read_text())


def test_exit_and_progress(report):
    proc, runs, out = report
    assert proc.returncode == 0, proc.stderr
    md = (out / "report.md").read_text()
    for text in (proc.stdout, md):
        assert "16 of 17 points done" in text
        assert "dense-cl-smollm2-l60" in text
    assert "warning" not in proc.stderr


def test_table_rows_and_numbers(report):
    _, _, out = report
    rows = table_rows((out / "report.md").read_text())
    header, body = rows[0], rows[1:]
    assert header[:4] == ["paradigm", "loss", "size", "data"]
    assert {"params (M)", "steps", "FLOPs", "nDCG@10", "RR@10", "R@100", "R@1000", "untrained nDCG@10",
            "seeds"} <= set(header)
    col = {name: i for i, name in enumerate(header)}
    by_key = {(r[0], r[1], r[2], r[3]): r for r in body}
    for paradigm in ("dense", "sparse"):
        for loss in ("cl", "kd"):
            for size in ("smollm2-l1", "smollm2-l3", "smollm2-l10", "smollm2-l30"):
                row = by_key[(paradigm, loss, size, "1")]
                rec = fixture_record(f"{paradigm}-{loss}-{size}")
                params = rec["budget"]["plan"]["params_nonembedding"]
                assert row[col["params (M)"]] == f"{params / 1e6:.2f}"
                assert row[col["FLOPs"]] == f"{rec['budget']['realised']['flops']:.3g}"
                assert row[col["steps"]] == str(rec["budget"]["realised"]["steps"])
                assert row[col["untrained nDCG@10"]] == f"{rec['baseline_metrics']['pycode/test']['nDCG@10']:.4f}"
                if (paradigm, loss, size) != ("dense", "cl", "smollm2-l10"):
                    for m in ("nDCG@10", "RR@10", "R@100", "R@1000"):
                        assert row[col[m]] == f"{rec['metrics']['pycode/test'][m]:.4f}"
                    assert row[col["seeds"]] == "1"
    # dense/cl at smollm2-l10 has two seeds: the row holds their mean
    two = [fixture_record("dense-cl-smollm2-l10"), fixture_record("seeds/dense-cl-smollm2-l10-seed1")]
    row = by_key[("dense", "cl", "smollm2-l10", "1")]
    assert row[col["seeds"]] == "2"
    assert row[col["nDCG@10"]] == f"{sum(r['metrics']['pycode/test']['nDCG@10'] for r in two) / 2:.4f}"
    # within a series, rows go by parameters; the partial-data runs have rows of their own
    dense_cl = [r[2] for r in body if r[:2] == ["dense", "cl"] and r[3] == "1"]
    assert dense_cl == ["smollm2-l1", "smollm2-l3", "smollm2-l10", "smollm2-l30"]
    assert ("dense", "cl", "smollm2-l3", "0.25") in by_key and ("dense", "cl", "smollm2-l3", "0.5") in by_key
    assert ("dense", "margin_mse", "smollm2-135m-L2", "1") in by_key  # ad-hoc run: model name + layers
    refs = {r[0]: r for r in body if r[1] == "(reference)"}
    assert list(refs) == ["bm25", "minilm", "splade"]
    assert refs["bm25"][col["nDCG@10"]] == "0.3886" and refs["minilm"][col["R@100"]] == "0.9198"


def test_fits_json_and_table(report):
    proc, _, out = report
    data = json.loads((out / "fits.json").read_text())
    assert data["measure"] == "nDCG@10" and data["split"] == "pycode/test" and data["resamples"] == 200
    fits = {(f["series"], f["vs"]): f for f in data["fits"]}
    for series, alpha in ALPHAS.items():
        for vs in ("params", "flops"):
            f = fits[(series, vs)]
            assert f["status"] == "ok" and f["form"] == "power" and f["n_points"] == 4
            assert f["paradigm"] + "/" + f["loss"] == series and f["objective"] == "huber"
            assert f["params"]["alpha"] == pytest.approx(alpha, abs=0.02)
            lo, hi = f["ci"]["alpha"]
            assert lo <= f["params"]["alpha"] <= hi and hi - lo < 0.1
            assert f["r2"] > 0.99
    refused = fits[("dense/margin_mse", "params")]
    assert refused["status"] == "refused" and "1 distinct x value" in refused["reason"]
    assert fits[("dense/margin_mse", "flops")]["status"] == "refused"
    md = (out / "report.md").read_text()
    fit_rows = [line for line in md.splitlines() if line.startswith("| dense/margin_mse |")]
    assert len(fit_rows) == 2 and all("refused:" in line for line in fit_rows)
    assert f"| dense/kd | params | power | {fits[('dense/kd', 'params')]['params']['alpha']:.3f} [" in md
    assert "refused" in proc.stdout


def test_figures_are_png(report):
    _, _, out = report
    md = (out / "report.md").read_text()
    for name in ("scaling_params.png", "scaling_flops.png", "curves.png", "fraction.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000, name
        assert f"]({name})" in md
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_bad_records_are_skipped_and_named(tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURE, runs)
    (runs / "broken").mkdir()
    (runs / "broken" / "result.json").write_text('{"config": {')
    rec = fixture_record("sparse-kd-smollm2-l30")
    del rec["budget"]["plan"]["params_nonembedding"]
    (runs / "nofield").mkdir()
    (runs / "nofield" / "result.json").write_text(json.dumps(rec))
    (runs / "sparse-kd-smollm2-l30" / "result.json").unlink()  # its grid point is now missing too

    proc = run_report(str(runs), "--out", str(tmp_path / "out"), "--resamples", "50")
    assert proc.returncode == 0, proc.stderr
    assert f"{runs / 'broken' / 'result.json'}: (file): not JSON" in proc.stderr
    assert f"{runs / 'nofield' / 'result.json'}: budget.plan.params_nonembedding: missing" in proc.stderr
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Skipped records" in md and "budget.plan.params_nonembedding" in md
    assert "15 of 17 points done" in md and "sparse-kd-smollm2-l30" in md
    fits = {(f["series"], f["vs"]): f for f in json.loads((tmp_path / "out" / "fits.json").read_text())["fits"]}
    assert fits[("sparse/kd", "params")]["n_points"] == 3

    strict = run_report(str(runs), "--out", str(tmp_path / "strict"), "--strict")
    assert strict.returncode == 2
    assert f"error: {runs / 'broken' / 'result.json'}: (file): not JSON" in strict.stderr
    assert not (tmp_path / "strict" / "report.md").exists()


def test_one_flop_budget_refuses_the_flops_fit_and_imports_no_torch(tmp_path):
    """Runs under one FLOP budget realise nearly the same FLOPs (short of it by up to a step): the
    FLOPs fit is refused, the parameter fit is not. The script also stays clear of torch, lightning and transformers."""
    runs = tmp_path / "runs"
    for i, size in enumerate(("smollm2-l1", "smollm2-l3", "smollm2-l10")):
        rec = fixture_record(f"dense-kd-{size}")
        rec["config"]["budget"] = {"name": "cpu", "flops": 1e13, "tokens": None, "steps": None}
        rec["budget"]["realised"]["flops"] = 1e13 * (1 - 0.03 * i)  # whole steps: up to a few % short
        rec.pop("curve", None)
        (runs / size).mkdir(parents=True)
        (runs / size / "result.json").write_text(json.dumps(rec))
    code = ("import runpy, sys\n"
            f"sys.argv = ['report.py', {str(runs)!r}, '--resamples', '100']\n"
            "try:\n"
            f"    runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
            "except SystemExit as e:\n"
            "    assert not e.code, e.code\n"
            "print('HEAVY', sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning', 'transformers')))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
    fits = {f["vs"]: f for f in json.loads((runs / "report" / "fits.json").read_text())["fits"]}
    assert fits["params"]["status"] == "ok"
    assert fits["flops"]["status"] == "refused" and "one FLOP budget (1e+13 FLOPs)" in fits["flops"]["reason"]
    assert "curves.png skipped" in proc.stdout and "fraction.png skipped" in proc.stdout
    assert not (runs / "report" / "curves.png").exists()


def test_several_flop_budgets_fit_the_compute_frontier(tmp_path):
    """Two folders (a size grid at one FLOP budget, a budget grid of two sizes) make one report:
    against parameters one series per budget, against FLOPs each budget's best size."""
    sizes_dir, budgets_dir = tmp_path / "sizes", tmp_path / "budgets"
    metric = {}  # (size, budget) -> nDCG@10; the best size moves up with the budget
    for budget, best in ((1e12, "smollm2-l1"), (1e13, "smollm2-l3"), (1e14, "smollm2-l10")):
        for size in ("smollm2-l1", "smollm2-l3", "smollm2-l10"):
            metric[(size, budget)] = 1 - 0.8 * (budget / 1e12) ** -0.1 + (0.01 if size == best else 0.0)
    for (size, budget), value in metric.items():
        if budget != 1e14 and size == "smollm2-l10":
            continue  # the deepest rung only at the largest budget
        rec = fixture_record(f"dense-cl-{size}")
        rec["config"]["budget"] = {"name": "cpu", "flops": budget, "tokens": None, "steps": None}
        rec["budget"]["realised"]["flops"] = budget * 0.99
        rec["metrics"]["pycode/test"]["nDCG@10"] = value
        rec.pop("curve", None)
        folder = (sizes_dir if budget == 1e14 else budgets_dir) / f"{size}-{budget:g}"
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(rec))
    proc = run_report(str(sizes_dir), str(budgets_dir), "--out", str(tmp_path / "out"), "--resamples", "100")
    assert proc.returncode == 0, proc.stderr
    fits = {(f["series"], f["vs"]): f for f in json.loads((tmp_path / "out" / "fits.json").read_text())["fits"]}
    frontier = fits[("dense/cl", "flops")]
    assert frontier["status"] == "ok" and frontier["n_points"] == 3
    assert [(p["size"], p["metric"]) for p in frontier["points"]] == \
        [(best, metric[(best, b)]) for b, best in ((1e12, "smollm2-l1"), (1e13, "smollm2-l3"), (1e14, "smollm2-l10"))]
    assert fits[("dense/cl @ 1e+14 FLOPs", "params")]["n_points"] == 3
    assert fits[("dense/cl @ 1e+13 FLOPs", "params")]["n_points"] == 2
    assert fits[("dense/cl @ 1e+14 FLOPs", "params")]["budget"] == "1e+14 FLOPs"
    md = (tmp_path / "out" / "report.md").read_text()
    assert "7 result records under" in md and "compute frontier" in md
    assert (tmp_path / "out" / "scaling_params.png").read_bytes().startswith(PNG)


def test_one_seed_in_two_grids_is_a_repeat_not_two_seeds(tmp_path):
    """The same point run in two grids (cpu_grid and cpu_data share one) is a repeat of one seed:
    averaged, and the table says "1 (2 runs)"; a run with another seed makes it "2 (3 runs)"."""
    rec = fixture_record("dense-cl-smollm2-l1")
    seed = rec["config"]["seed"]
    for folder, value, s in (("grid_a", 0.30, seed), ("grid_b", 0.32, seed), ("seed", 0.40, seed + 1)):
        r = json.loads(json.dumps(rec))
        r["metrics"]["pycode/test"]["nDCG@10"] = value
        r["config"]["seed"] = s
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "result.json").write_text(json.dumps(r))

    def seeds_cell(names):
        runs = [records.read_run(tmp_path / n / "result.json") for n in names]
        (point,) = records.average(runs)
        rows = [[c.strip() for c in line.strip("|").split("|")]
                for line in table.runs_table([point], "pycode/test").splitlines()
                if line.startswith("|") and not line.startswith("| ---")]
        return point, rows[1][rows[0].index("seeds")]

    point, cell = seeds_cell(["grid_a", "grid_b"])
    assert (point.seeds, len(point.runs), cell) == (1, 2, "1 (2 runs)")
    assert point.metrics["pycode/test"]["nDCG@10"] == pytest.approx(0.31)
    point, cell = seeds_cell(["grid_a", "grid_b", "seed"])
    assert (point.seeds, cell) == (2, "2 (3 runs)")
    assert point.metrics["pycode/test"]["nDCG@10"] == pytest.approx(1.02 / 3)
