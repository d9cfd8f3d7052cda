"""Backtests, the IsoFLOP compute-optimal size and Fang's form (scaling/analysis/laws.py),
checked on data drawn from known laws."""

import json
import math

import numpy as np
import pytest

from scaling.analysis import laws
from scaling.analysis.fit import fit_power_law


def test_a_law_predicts_its_held_out_point_and_a_point_off_the_law_is_missed():
    x = np.array([1e6, 2e6, 4e6, 8e6, 16e6, 16e6])
    rng = np.random.default_rng(0)
    y = 3.0 * x ** -0.2 * np.exp(rng.normal(0, 0.01, x.size))
    b = laws.backtest(x, y, resamples=300)
    assert b.held_runs == 2 and b.n_fit == 4 and b.held_x == 16e6   # both seeds at the largest x held out
    assert b.measured == pytest.approx(y[-2:].mean())
    assert b.predicted == pytest.approx(3.0 * 16e6 ** -0.2, rel=0.03) and b.inside and b.lo < b.predicted < b.hi
    off = y.copy()
    off[-2:] *= 0.7                                                 # the largest size far better than the law
    missed = laws.backtest(x, off, resamples=300)
    assert not missed.inside
    text = laws.backtest_table([b, missed], as_metric=True)
    assert text.count("**missed**") == 1 and "inside" in text
    refused = laws.backtest(x[:3], y[:3])                           # 2 distinct x left for 2 parameters
    assert refused.refused and not refused.inside and "refused" in laws.backtest_table([refused])


def test_exact_data_is_predicted_exactly():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    b = laws.backtest(x, 0.5 * x ** -0.3, resamples=50)
    assert b.predicted == pytest.approx(0.5 * 8 ** -0.3, rel=1e-6) and b.inside


def law(k=2e-4, a=0.6):
    return lambda c: k * c ** a


def synthetic(noise=0.0, seeds=1, budgets=(1e12, 1e13, 1e14), k=2e-4, a=0.6):
    rng = np.random.default_rng(1)
    c_, n_, y_ = [], [], []
    for c in budgets:
        star = law(k, a)(c)
        for n in star * np.array([0.25, 0.5, 1.0, 2.0, 4.0]):
            for _ in range(seeds):
                c_.append(c)
                n_.append(n)
                y_.append(0.5 + 0.05 * (math.log(n) - math.log(star)) ** 2 + rng.normal(0, noise))
    return np.array(c_), np.array(n_), np.array(y_)


def test_isoflop_recovers_the_optimal_size_per_budget_and_its_law():
    c, n, y = synthetic()
    fit = laws.isoflop(c, n, y, resamples=0)
    for b in fit.budgets:
        assert b.inside and b.n_star == pytest.approx(law()(b.flops), rel=1e-6)
    assert fit.a == pytest.approx(0.6, rel=1e-6) and fit.k == pytest.approx(2e-4, rel=1e-5)
    assert fit.predict(1e20) == pytest.approx(law()(1e20), rel=1e-5)


def test_isoflop_interval_covers_the_truth_with_noise_and_flags_an_end_minimum():
    c, n, y = synthetic(noise=0.005, seeds=3)
    fit = laws.isoflop(c, n, y, resamples=400, seed=0)
    lo, hi = fit.ci["a"]
    assert lo < 0.6 < hi and fit.skipped < 400
    plo, phi = fit.predict_interval(1e15)
    assert plo[0] < law()(1e15) < phi[0]
    # a fourth budget whose sizes all lie above its optimum: flagged, left out of the line
    n2 = law()(1e15) * np.array([2.0, 4.0, 8.0])
    y2 = 0.5 + 0.05 * np.log(n2 / law()(1e15)) ** 2
    both = laws.isoflop(np.r_[c, [1e15] * 3], np.r_[n, n2], np.r_[y, y2], resamples=0)
    (end,) = [b for b in both.budgets if b.flops == 1e15]
    assert not end.inside and "end of the ladder" in end.note and end.best_measured == pytest.approx(n2[0])
    assert both.a == pytest.approx(fit.a, rel=0.05)
    assert "vertex" in both.table() and "N* = k C^a" in both.table({"1b": 3e19})


def test_isoflop_refuses_the_line_with_one_usable_budget_and_bad_input():
    c, n, y = synthetic(budgets=(1e12,))
    fit = laws.isoflop(c, n, y)
    assert fit.refused and "needs 2" in fit.refused and fit.a is None
    with pytest.raises(ValueError):
        laws.isoflop([1e12], [1e6, 2e6], [0.5])
    with pytest.raises(ValueError):
        laws.isoflop([1e12], [-1.0], [0.5])


def test_isoflop_backtest_predicts_the_largest_budgets_vertex_and_flags_a_moved_one():
    c, n, y = synthetic(noise=0.005, seeds=3, budgets=(1e11, 1e12, 1e13, 1e14))
    b = laws.isoflop_backtest(c, n, y, resamples=300, seed=0)
    assert b.held_flops == 1e14 and b.inside and b.lo < 1 < b.hi
    assert b.predicted == pytest.approx(law()(1e14), rel=0.3) and b.measured == pytest.approx(law()(1e14), rel=0.3)
    # the largest budget's optimum moved to 4x the law's: its vertex is far outside the prediction
    last = c == 1e14
    n_moved, y_moved = n.copy(), y.copy()
    n_moved[last] = n[last] * 4
    y_moved[last] = 0.5 + 0.05 * np.log(n_moved[last] / (4 * law()(1e14))) ** 2
    moved = laws.isoflop_backtest(c, n_moved, y_moved, resamples=300, seed=0)
    assert not moved.inside and moved.hi < 1 and "**missed**" in moved.line()
    assert moved.measured == pytest.approx(4 * law()(1e14), rel=1e-6)
    two = laws.isoflop_backtest(*synthetic(budgets=(1e12, 1e13)))
    assert two.refused and "needs 3" in two.refused and not two.inside and "refused" in two.line()
    assert json.loads(json.dumps(two.as_dict(), allow_nan=False))["lo"] is None  # NaN: null in fits.json


def test_fang_form_is_power_floor_rewritten():
    n = np.array([1e6, 3e6, 1e7, 3e7, 1e8, 3e8])
    A, alpha, delta = 5e5, 0.4, 0.3
    fit = fit_power_law(n, (A / n) ** alpha + delta, form="power_floor", resamples=100)
    got = laws.fang(fit)
    assert got["A"] == pytest.approx(A, rel=1e-3) and got["alpha"] == pytest.approx(alpha, rel=1e-3)
    assert got["delta"] == pytest.approx(delta, rel=1e-3)
    assert "draws" not in fit.as_dict()


def test_the_report_sections_go_through_every_seed_and_draw_the_isoflop_figure(tmp_path):
    from pathlib import Path

    from scaling.analysis import law_report, records
    c, n, y = synthetic(noise=0.003, seeds=2)
    runs = [records.Run(path=Path(f"/r/{i}"), paradigm="dense", loss="cl", size=f"n{int(ni)}", fraction=1.0,
                        seed=i % 2, budget=f"{ci:.3g} FLOPs", params=int(ni), flops=ci, steps=10,
                        metrics={"x/test": {"nDCG@10": 1 - yi, "contrastive_entropy": 2 * yi}}, budget_flops=ci)
            for i, (ci, ni, yi) in enumerate(zip(c, n, y))]
    points = records.average(runs)
    text, record, path = law_report.isoflop(points, "x/test", "nDCG@10", 200, 0, tmp_path)
    (fit,) = record
    assert fit["a"] == pytest.approx(0.6, abs=0.05) and len(fit["budgets"]) == 3
    assert set(fit["predictions"]) == {"1b", "3b", "8b"} and "1b: C = 3.34e+19" in text
    assert path == tmp_path / "isoflop.png" and path.read_bytes().startswith(b"\x89PNG")
    assert fit["backtest"]["held_flops"] == 1e14 and fit["backtest"]["inside"] and "Backtest: refitted" in text
    text, rows = law_report.backtests(points, "x/test", "nDCG@10", 100, 0)
    assert any(r["held_runs"] == 2 for r in rows)   # both seeds of the largest size held out
