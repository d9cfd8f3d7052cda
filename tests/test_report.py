"""recipes/report.py end to end on tests/fixtures/report: 2 paradigms x 2 losses x 4 sizes from a
grid (one more grid point not run), a second seed of one point, two data fractions of another, and
an ad-hoc single-point series that is too short to fit. Errors there follow err = c * L^-alpha
with alpha 0.20 (dense/cl), 0.25 (dense/kd), 0.15 (sparse/cl), 0.30 (sparse/kd) and +-1% noise."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
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
    assert ("dense", "margin_mse", "smollm2-l2", "1") in by_key  # ad-hoc run: the size option it ran as
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
            # fits go through each seed's value: dense-cl-smollm2-l10 ran with two seeds
            assert f["status"] == "ok" and f["form"] == "power" and len(f["points"]) == 4
            assert f["n_points"] == sum(len(p["per_seed"]) for p in f["points"]) == \
                4 + (series == "dense/cl" and any(p["size"] == "smollm2-l10" for p in f["points"]))
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
    # the repeated seed is averaged first (0.31), so it does not count twice against the other (0.40)
    assert point.metrics["pycode/test"]["nDCG@10"] == pytest.approx((0.31 + 0.40) / 2)
    assert point.seed_values("pycode/test", "nDCG@10") == pytest.approx([0.31, 0.40])
    s = point.spread["pycode/test"]["nDCG@10"]
    assert (s.n, s.lo, s.hi) == (2, None, None) and s.sd == pytest.approx(0.09 / 2 ** 0.5)  # no interval from two


# --- a report needs a result ---------------------------------------------------------------------

def failed_run(folder: Path, with_budget: bool = True) -> Path:
    """A run folder as a run that stopped before its result leaves it: config.json (the run writes
    it first), its plan and a checkpoint folder, no result.json."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(fixture_record("dense-cl-smollm2-l1")["config"]))
    if with_budget:
        (folder / "budget.json").write_text(json.dumps(fixture_record("dense-cl-smollm2-l1")["budget"]["plan"]))
        (folder / "ckpt").mkdir()
    return folder


def test_an_empty_folder_is_refused_and_nothing_written(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_report(str(empty))
    assert proc.returncode == 2, proc.stdout
    assert proc.stderr.startswith(f"error: {empty} holds no result.json and no run folder"), proc.stderr
    assert "Nothing written" in proc.stderr
    assert list(empty.iterdir()) == []  # no report/ folder either


def test_a_failed_run_alone_is_refused_naming_it(tmp_path):
    runs = tmp_path / "runs" / "x"
    run = failed_run(runs / "20260101-120000-dense-cl-tiny", with_budget=False)
    other = failed_run(runs / "20260101-120100-dense-cl-tiny")
    out = tmp_path / "out"
    proc = run_report(str(runs), "--out", str(out))
    assert proc.returncode == 2, proc.stdout
    assert (f"error: {runs} holds no result.json; 2 run folders without one (unfinished or failed): "
            f"{run} (config.json; no result.json), {other} (config.json, budget.json, ckpt/; no result.json)"
            in proc.stderr), proc.stderr
    assert not out.exists() and not (runs / "report").exists()


def test_unusable_records_alone_are_refused(tmp_path):
    runs = tmp_path / "runs"
    (runs / "broken").mkdir(parents=True)
    (runs / "broken" / "result.json").write_text('{"config": {')
    proc = run_report(str(runs))
    assert proc.returncode == 2
    assert f"warning: skipped {runs / 'broken' / 'result.json'}: (file): not JSON" in proc.stderr
    assert f"error: {runs} holds 1 result.json, none usable" in proc.stderr
    assert not (runs / "report").exists()


def test_a_failed_run_beside_a_result_is_listed_not_refused(tmp_path):
    runs = tmp_path / "runs"
    (runs / "done").mkdir(parents=True)
    shutil.copy(FIXTURE / "dense-cl-smollm2-l1" / "result.json", runs / "done" / "result.json")
    run = failed_run(runs / "failed")
    proc = run_report(str(runs), "--resamples", "0")
    assert proc.returncode == 0, proc.stderr
    md = (runs / "report" / "report.md").read_text()
    assert f"- `{run}` (config.json, budget.json, ckpt/)" in md
    assert f"1 run folder(s) without result.json (unfinished or failed): {run}" in proc.stdout
    rows = table_rows(md)
    assert [r[2] for r in rows[1:] if r[1] != "(reference)"] == ["smollm2-l1"]


# --- rung names: as the command line names them -------------------------------------------------

def test_every_size_option_is_named_as_typed():
    """Each ``size=X`` composed by Hydra (independently of the report's YAML reading) gives a
    model that the report names X, and a depth no option has is named by what one would type,
    which composes back to the same model."""
    from tests.conftest import compose
    options = sorted(p.stem for p in (ROOT / "recipes" / "conf" / "size").glob("*.yaml"))
    assert {"tiny", "smollm2-135m", "smollm2-l1", "smollm2-l30"} <= set(options)
    for option in options:
        model = compose([f"size={option}"])["model"]
        assert records.rung_name(model["name"], model["num_layers"]) == option
    model = compose(["size=smollm2-135m", "model.num_layers=1"])["model"]
    assert records.rung_name(model["name"], model["num_layers"]) == "smollm2-l1"
    for size, layers in (("tiny", 1), ("smollm2-135m", 5)):
        model = compose([f"size={size}", f"model.num_layers={layers}"])["model"]
        name = records.rung_name(model["name"], model["num_layers"])
        assert name == f"{size} model.num_layers={layers}"
        first, rest = name.split(" ", 1)
        assert compose([f"size={first}", rest])["model"] == model


def test_a_grid_point_names_its_rung_unless_an_axis_changes_the_depth():
    assert records.rung_name("smollm2-135m", 10, {"size": "smollm2-l10"}) == "smollm2-l10"  # not an option here
    assert records.rung_name("smollm2-135m", 30, {"size": "smollm2-l30"}) == "smollm2-l30"  # null: every layer
    point = {"size": "tiny", "model.num_layers": "1"}
    assert records.rung_name("tiny", 1, point) == "tiny model.num_layers=1"
    assert records.rung_name("smollm2-135m", 2, {"size": "smollm2-135m", "model.num_layers": "2"}) == "smollm2-l2"
    assert records.rung_name("smollm2-135m", 2, {"size": "smollm2-l1"}) == "smollm2-l2"  # the record wins
    # a backbone option names a size with its pooling: two poolings of one size are two rows
    assert records.rung_name("smollm2-135m", None, {"backbone": "smollm2-eos"}) == "smollm2-eos"


# --- figures: readable ticks, labelled points --------------------------------------------------

def _render(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _x_labels(ax, renderer) -> list[tuple[str, float, float]]:
    """Every drawn x tick label (major and minor): text, left and right edge in pixels."""
    ticks = ax.xaxis.get_major_ticks() + ax.xaxis.get_minor_ticks()
    lo, hi = ax.get_xlim()
    out = []
    for tick in ticks:
        label = tick.label1
        if label.get_visible() and label.get_text() and lo <= tick.get_loc() <= hi:
            box = label.get_window_extent(renderer)
            out.append((label.get_text(), box.x0, box.x1))
    return sorted(out, key=lambda t: t[1])


def assert_readable(ax, renderer):
    labels = _x_labels(ax, renderer)
    assert len(labels) >= 1
    for (a, _, a1), (b, b0, _) in zip(labels, labels[1:]):
        assert b0 - a1 >= 2, f"tick labels {a!r} and {b!r} overlap or touch ({a1:.1f} px, {b0:.1f} px)"
    return [t for t, _, _ in labels]


def budget_grid(tmp_path) -> list[records.Point]:
    """dense/cl and sparse/cl at three sizes under two FLOP budgets; dense realises 6% less than
    the budget and sparse 0.5% (whole steps of different sizes): their exact FLOPs (1.6e10 and
    1.69e10) are a hair apart on the axis."""
    for budget in (1.7e10, 5e10):
        for paradigm, short in (("dense", 0.94), ("sparse", 0.995)):
            for i, size in enumerate(("smollm2-l1", "smollm2-l3", "smollm2-l10")):
                rec = fixture_record(f"{paradigm}-cl-{size}")
                rec["config"]["budget"] = {"name": "cpu", "flops": budget, "tokens": None, "steps": None}
                rec["budget"]["realised"]["flops"] = budget * short * (1 - 0.001 * i)
                rec["metrics"]["pycode/test"]["nDCG@10"] += 0.01 * i * (budget / 1e10)
                folder = tmp_path / f"{paradigm}-{size}-{budget:g}"
                folder.mkdir()
                (folder / "result.json").write_text(json.dumps(rec))
    return records.average(records.load_runs(tmp_path)[0])


def test_flops_ticks_are_the_budgets_and_points_carry_their_rung(tmp_path):
    from scaling.analysis import plots
    points = budget_grid(tmp_path)
    series = records.flops_series(points, "pycode/test", "nDCG@10")
    fig = plots.scaling_figure(series, {}, "flops", "pycode/test", "nDCG@10", {}, background=points)
    renderer = _render(fig)
    (ax,) = fig.axes
    assert assert_readable(ax, renderer) == ["1.7e10", "5e10"]
    lo, hi = ax.get_xlim()
    assert [t for t in ax.get_xticks() if lo <= t <= hi] == [1.7e10, 5e10]
    frontier = {(p.size, p.flops) for pts in series.values() for p in pts}
    labels = {(t.get_text(), t.xy[0]) for t in ax.texts}
    assert labels == frontier  # one label per frontier point, its rung, at its marker
    assert {size for size, _ in labels} <= {"smollm2-l1", "smollm2-l3", "smollm2-l10"}


def test_params_ticks_are_the_rungs_per_budget_panel(tmp_path):
    from scaling.analysis import plots
    points = budget_grid(tmp_path)
    series = records.params_series(points, "pycode/test", "nDCG@10")
    fig = plots.scaling_figure(series, {}, "params", "pycode/test", "nDCG@10", {})
    renderer = _render(fig)
    assert len(fig.axes) == 2  # one panel per budget
    rungs = sorted({p.params for p in points})
    for ax in fig.axes:
        assert assert_readable(ax, renderer) == [f"{x / 1e6:.3g}M" for x in rungs]
        # a rung's points share one label: the size name, once per rung
        assert sorted((t.get_text(), t.xy[0]) for t in ax.texts) == \
            sorted({(p.size, p.params) for p in points})


def _synthetic(params: list[float], flops: list[float]) -> list[records.Point]:
    """Points of one series with the given parameters and FLOP budgets (realised 1% short)."""
    out = []
    for i, (n, c) in enumerate(zip(params, flops)):
        out.append(records.Point(paradigm="dense", loss="cl", size=f"r{i}", fraction=1.0, budget=f"{c:.3g} FLOPs",
                                 params=n, flops=0.99 * c, steps=10, metrics={"s/t": {"m": 0.1 + 0.01 * i}},
                                 baseline={}, seeds=1, runs=[], budget_flops=c))
    return out


@pytest.mark.parametrize("params, flops, decades", [
    # 13 rungs over four decades: too many to label, so the decades
    (list(np.geomspace(1e5, 1e9, 13)), list(np.geomspace(1e12, 1e20, 13)), True),
    # three rungs, two of them 5% apart: one label would cover the other
    ([1e6, 1.05e6, 1e8], [1e13, 1.05e13, 1e15], True),
    # two far-apart rungs: each labelled
    ([3.5e6, 1.06e8], [4.2e13, 1.3e15], False),
])
def test_ticks_stay_readable_at_any_grid_size(params, flops, decades):
    from scaling.analysis import plots
    points = _synthetic(params, flops)
    for vs, xs in (("params", params), ("flops", flops)):
        fig = plots.scaling_figure({"dense/cl": points}, {}, vs, "s/t", "m", {})
        renderer = _render(fig)
        (ax,) = fig.axes
        texts = assert_readable(ax, renderer)
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert len(ticks) == len(texts) >= 2
        if decades:
            assert all(math.log10(t) == round(math.log10(t)) for t in ticks), ticks
        else:
            assert ticks == pytest.approx(sorted(xs))
        assert sorted(t.get_text() for t in ax.texts) == sorted(p.size for p in points)


def test_students_of_different_teachers_are_different_points_and_drawn_against_them(tmp_path):
    """The same kd point distilled from three teachers: three points (never averaged as repeats),
    a series per teacher, the students-and-teachers table and the supervision figure."""
    rec = fixture_record("dense-kd-smollm2-l1")
    for name, teacher, student in (("bm25", 0.39, 0.20), ("minilm", 0.57, 0.31), ("ensemble", 0.60, 0.35)):
        r = json.loads(json.dumps(rec))
        r["metrics"]["pycode/test"]["nDCG@10"] = student
        r["teacher"] = {"name": name, "scores": f"/x/{name}.tsv",
                        "card": {"pycode/test": {"nDCG@10": teacher, "RR@10": teacher - 0.05}}}
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text(json.dumps(r))
    points = records.average([records.read_run(p) for p in records.find_results(tmp_path)])
    assert sorted(p.series for p in points) == ["dense/kd@bm25", "dense/kd@ensemble", "dense/kd@minilm"]
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in table.supervision_table(points, "pycode/test").splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0][3:] == ["teacher", "teacher nDCG@10", "student nDCG@10", "student / teacher"]
    assert [r[3:] for r in rows[1:]] == [["bm25", "0.3900", "0.2000", "0.51"], ["minilm", "0.5700", "0.3100", "0.54"],
                                         ["ensemble", "0.6000", "0.3500", "0.58"]]
    proc = run_report(str(tmp_path), "--resamples", "50")
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## Students and their teachers: nDCG@10 on pycode/test" in md and "kd @minilm" in md
    assert (tmp_path / "report" / "supervision.png").read_bytes().startswith(PNG)


def test_points_differing_on_an_unnamed_axis_are_rows_not_seeds(tmp_path):
    """luo_instructions' points differ only in ``instruction``: two rows with a variant column."""
    from scaling.analysis import table
    for i, (option, value) in enumerate((("seen", 0.4), ("dropped", 0.3))):
        rec = fixture_record("dense-cl-smollm2-l10")
        rec["grid"] = {"experiment": "luo_instructions", "name": f"seed0-{option}",
                       "point": {"seed": "0", "instruction": option, "size": "smollm2-l10"}}
        split = next(iter(rec["metrics"]))
        rec["metrics"][split]["nDCG@10"] = value
        (tmp_path / option).mkdir()
        (tmp_path / option / "result.json").write_text(json.dumps(rec))
    runs, problems = records.load_runs(tmp_path)
    points = records.average(runs)
    assert not problems and sorted(p.variant for p in points) == ["instruction=dropped", "instruction=seen"]
    assert all(p.seeds == 1 for p in points)
    text = table.runs_table(points, split)
    assert "| variant |" in text and "instruction=seen" in text and "0.4000" in text and "0.3000" in text


def test_a_numeric_variant_is_drawn_against_its_axis(tmp_path):
    """luo_long_docs: nDCG@10 against eval.doc_len, one line per size; a non-numeric variant is not drawn."""
    from scaling.analysis import plots
    split = None
    for size in ("smollm2-l4", "gemma3-l4"):
        for length, value in (("256", 0.30), ("1024", 0.34), ("8192", 0.31)):
            rec = fixture_record("dense-cl-smollm2-l10")
            rec["grid"] = {"experiment": "luo_long_docs", "name": f"seed0-{size}-doc_len{length}",
                           "point": {"seed": "0", "size": size, "eval.doc_len": length}}
            rec["config"]["model"].update(name="gemma3-270m" if size == "gemma3-l4" else "smollm2-135m", num_layers=4)
            rec["config"]["paradigm"]["head"] = {"name": "dense", "pooling": "eos"}
            split = next(iter(rec["metrics"]))
            rec["metrics"][split]["nDCG@10"] = value + (0.01 if size == "gemma3-l4" else 0)
            (tmp_path / "runs" / f"{size}-{length}").mkdir(parents=True)
            (tmp_path / "runs" / f"{size}-{length}" / "result.json").write_text(json.dumps(rec))
    points = records.average(records.load_runs(tmp_path / "runs")[0])
    assert len(points) == 6 and {p.size for p in points} == {"smollm2-l4", "gemma3-l4"}
    assert plots.numeric_variant(points[0])[0] == "eval.doc_len"
    # a size law never runs through two families, nor through two evaluations: 6 one-point series
    series = records.params_series(points, split, "nDCG@10")
    assert len(series) == 6 and all(len(v) == 1 for v in series.values())
    assert "dense/cl gemma3-270m eos eval.doc_len=1024" in series, sorted(series)
    assert set(records.flops_series(points, split, "nDCG@10")) == set(series)
    one = [p for p in points if p.variant == "eval.doc_len=256" and p.size == "smollm2-l4"]
    assert list(records.params_series(one, split, "nDCG@10")) == ["dense/cl"]  # one family, one way: the plain name
    out = plots.variant_plot(points, split, "nDCG@10", tmp_path / "variant.png")
    assert out is not None and out.stat().st_size > 10_000
    for p in points:
        p.variant = "instruction=seen"
    assert plots.variant_plot(points, split, "nDCG@10", tmp_path / "none.png") is None


def test_runs_from_other_starting_points_are_rows_and_compare_against_the_packaged_one(tmp_path):
    """gtr_finetune and gtr_finetune_only share every axis; only result["start"] tells a stage-2 run
    (from a stage-1 checkpoint) from the same run on the packaged weights: two rows, never two
    seeds, and ``--versus start=packaged`` pairs them per data fraction."""
    from scaling.analysis import marks, table
    rec = fixture_record("dense-cl-smollm2-l1")
    split = next(iter(rec["metrics"]))
    qids = [f"q{i:02d}" for i in range(40)]
    stage = {"kind": "checkpoint", "model": "smollm2-135m", "path": "runs/gtr/x/checkpoint",
             "from": {"kind": "packaged", "model": "smollm2-135m", "path": None},
             "stage": {"data": "pycode", "loss": "cl", "flops": 1e12, "steps": 150}, "flops_before": 1e12}
    for name, start, fraction, shift in (("ft", stage, 0.1, 0.3), ("ft_only", None, 0.1, 0.0),
                                         ("ft_full", stage, 1.0, 0.3), ("ft_only_full", None, 1.0, 0.0)):
        r = json.loads(json.dumps(rec))
        r["start"] = start or {"kind": "packaged", "model": "smollm2-135m", "path": None}
        r["config"]["data"]["fraction"] = fraction
        r["metrics"][split]["per_query"] = {"nDCG@10": {q: 0.3 + shift * (i % 3 > 0) for i, q in enumerate(qids)}}
        r["metrics"][split]["nDCG@10"] = sum(r["metrics"][split]["per_query"]["nDCG@10"].values()) / len(qids)
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text(json.dumps(r))
    runs, problems = records.load_runs(tmp_path)
    points = records.average(runs)
    assert not problems and len(points) == 4 and all(len(p.runs) == 1 for p in points)
    assert sorted(p.variant for p in points) == ["", "", "start=pycode-cl-150steps", "start=pycode-cl-150steps"]
    pairs = marks.versus(points, split, "start", "packaged")
    assert sorted((p.fraction, a.fraction, marks.setting(a, "start")) for p, a, _ in pairs) == \
        [(0.1, 0.1, "packaged"), (1.0, 1.0, "packaged")]
    assert all(c.diff > 0 for _, _, c in pairs)
    text = table.versus_table(pairs, split, "nDCG@10", "start")
    assert "| data | start |" in text and "| 0.1 | pycode-cl-150steps |" in text and "(packaged)" in text
    by_part = marks.versus(points, split, "data.fraction", "1")  # within each start: its rows name it
    lines = table.versus_table(by_part, split, "nDCG@10", "data.fraction").splitlines()
    assert "| data | variant |" in lines[0] and len(by_part) == 2
    assert sum("| 0.1 | start=pycode-cl-150steps |" in line for line in lines) == 1
    assert sum("| 0.1 |  |" in line for line in lines) == 1  # the packaged run: no other variant
    mntp = {"kind": "mntp", "made_by": {"mntp_steps": 200}}
    assert records.start_label(mntp) == "mntp-200steps"
    assert records.start_label({**stage, "from": mntp}) == "mntp-200steps+pycode-cl-150steps"
    assert records.start_label(None) is None and records.start_label({"kind": "packaged"}) is None
