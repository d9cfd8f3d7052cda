"""Scaling-law fits on synthetic errors with known parameters: recovery, interval coverage, the
Huber loss against an outlier, refusals, warnings, and the batched bootstrap refit against scipy."""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
import pytest
from scipy.optimize import least_squares

from scaling.analysis import fit as F
from scaling.analysis.fit import FitWarning, fit_metric, fit_power_law

X = np.geomspace(1e6, 1e9, 7)  # 1000x: wide enough to identify exponent and floor
A, ALPHA, E = 30.0, 0.3, 0.1


def noisy(x, sigma, seed, floor=0.0):
    rng = np.random.default_rng(seed)
    return (A * x ** -ALPHA + floor) * np.exp(rng.normal(0.0, sigma, x.size))


def test_power_recovers_exponent_and_interval_covers_it():
    fit = fit_power_law(X, noisy(X, 0.05, seed=0), series="synthetic", resamples=1000, seed=0)
    assert abs(fit.params["alpha"] - ALPHA) < 0.03
    lo, hi = fit.ci["alpha"]
    assert lo < ALPHA < hi and lo < fit.params["alpha"] < hi
    assert hi - lo < 0.1
    lo_a, hi_a = fit.ci["A"]
    assert lo_a < A < hi_a  # A is reported in the original units of x
    assert fit.skipped_resamples == 0 and fit.resamples == 1000 and fit.n_points == 7
    assert fit.x_range == (pytest.approx(1e6), pytest.approx(1e9))


def test_power_interval_coverage_over_noise_draws():
    """About 95% of intervals should hold the truth; a 7-point bootstrap runs a little short."""
    covered = 0
    for seed in range(20):
        lo, hi = fit_power_law(X, noisy(X, 0.05, seed), resamples=1000, seed=0).ci["alpha"]
        covered += lo <= ALPHA <= hi
    assert covered >= 16


def test_floor_form_recovers_exponent_and_floor():
    x = np.geomspace(1e6, 1e9, 8)
    fit = fit_power_law(x, noisy(x, 0.02, seed=0, floor=E), form="power_floor", resamples=1000, seed=0)
    assert abs(fit.params["alpha"] - ALPHA) < 0.08
    assert abs(fit.params["E"] - E) < 0.03
    for name, truth in (("alpha", ALPHA), ("E", E)):
        lo, hi = fit.ci[name]
        assert lo < truth < hi, (name, lo, hi)
    assert fit.r2 > 0.99


@pytest.mark.parametrize("seed", range(5))
def test_huber_resists_an_outlier_that_moves_plain_least_squares(seed):
    y = noisy(X, 0.02, seed)
    y[-1] *= 1.8  # the largest model's error 80% too high: a bad run at the highest leverage
    robust = fit_power_law(X, y, resamples=0).params["alpha"]
    plain = fit_power_law(X, y, resamples=0, loss="linear").params["alpha"]
    assert abs(robust - ALPHA) < 0.035
    assert abs(plain - ALPHA) > abs(robust - ALPHA) + 0.015


def test_too_few_points_are_refused_naming_the_series():
    with pytest.raises(ValueError, match="dense/cl vs params.*1 distinct"):
        fit_power_law([1e7], [0.5], series="dense/cl vs params")
    with pytest.raises(ValueError, match="sparse/kd.*2 distinct.*3 parameters"):
        fit_power_law([1e7, 1e8], [0.5, 0.4], form="power_floor", series="sparse/kd")
    # the realised FLOPs of runs under one FLOP budget differ by tenths of a percent: one point
    with pytest.raises(ValueError, match="flops.*1 distinct x value"):
        fit_power_law([9.83e12, 9.97e12, 9.91e12], [0.6, 0.5, 0.4], series="dense/cl vs flops")


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match="error 1 - metric must be finite and > 0"):
        fit_metric([1e6, 1e7, 1e8], [0.5, 0.9, 1.0], series="s")
    with pytest.raises(ValueError, match="x must be finite and > 0"):
        fit_power_law([0.0, 1e7, 1e8], [0.5, 0.4, 0.3], series="s")
    with pytest.raises(ValueError, match="unknown form"):
        fit_power_law(X, noisy(X, 0.0, 0), form="cubic")


def test_short_range_warns():
    x = np.geomspace(1e8, 8e8, 5)
    with pytest.warns(FitWarning, match="range under 10x"):
        fit = fit_power_law(x, noisy(x, 0.01, 0), resamples=100)
    assert any("under 10x" in w for w in fit.warnings)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitWarning)  # a 1000x range raises no warning
        assert fit_power_law(X, noisy(X, 0.01, 0), resamples=100).warnings == []


def test_alpha_at_its_bound_warns():
    # error falling as x^-20 to a floor is steeper than the floor form allows (alpha in [-5, 10])
    with pytest.warns(FitWarning, match="alpha sits at its bound"):
        fit = fit_power_law(X, (X / X[0]) ** -20.0 + 0.1, form="power_floor", resamples=20)
    assert fit.params["alpha"] == pytest.approx(10.0, abs=1e-3)
    assert any("at its bound (10)" in w for w in fit.warnings)


def test_clean_data_fit_exactly():
    fit = fit_power_law(X, A * X ** -ALPHA, resamples=200)
    assert fit.r2 > 0.9999
    assert fit.params["alpha"] == pytest.approx(ALPHA, abs=1e-6)
    assert fit.params["A"] == pytest.approx(A, rel=1e-5)
    lo, hi = fit.ci["alpha"]
    assert hi - lo < 1e-6
    floor = fit_power_law(X, A * X ** -ALPHA + E, form="power_floor", resamples=200)
    assert floor.r2 > 0.9999
    assert floor.params["E"] == pytest.approx(E, rel=1e-3)
    assert floor.params["alpha"] == pytest.approx(ALPHA, rel=1e-3)


def test_predict_matches_the_formula():
    x = np.geomspace(1e6, 1e9, 6)
    fit = fit_power_law(x, noisy(x, 0.03, 1, floor=E), form="power_floor", resamples=50)
    p = fit.params
    probe = np.array([2e6, 5e7, 3e9])
    np.testing.assert_allclose(fit.predict(probe), p["A"] * probe ** -p["alpha"] + p["E"], rtol=1e-12)
    np.testing.assert_allclose(fit.predict_metric(probe), 1 - fit.predict(probe), rtol=1e-12)
    metric_fit = fit_metric(x, 1 - A * x ** -ALPHA, resamples=0)
    np.testing.assert_allclose(metric_fit.predict_metric(x), 1 - A * x ** -ALPHA, rtol=1e-6)


def test_degenerate_resamples_are_skipped_and_counted():
    x = np.array([1e6, 1e7, 1e8, 1e9])
    with pytest.warns(FitWarning) as record:
        fit = fit_power_law(x, A * x ** -ALPHA + E, form="power_floor", resamples=1000, seed=3)
    # a resample of 4 points holds at most 2 distinct ones with probability (4 + 6 * 14) / 4^4 = 0.34
    assert 290 < fit.skipped_resamples < 400 and fit.resamples == 1000
    assert "resamples skipped" in " ".join(str(w.message) for w in record)


def test_as_many_points_as_parameters_interpolate_without_an_interval():
    """Two sizes under one budget fit a power law exactly: every resample that fits draws the same
    curve, so a percentile interval would look precise and mean nothing; none is given."""
    x = np.array([1e6, 1e7])
    with pytest.warns(FitWarning, match="interpolates.*no interval"):
        fit = fit_power_law(x, [0.5, 0.4], resamples=1000)
    assert fit.params["alpha"] == pytest.approx(np.log10(0.5 / 0.4))
    assert all(np.isnan(v) for v in fit.ci["alpha"]) and (fit.resamples, fit.skipped_resamples) == (0, 0)
    assert json.loads(json.dumps(fit.as_dict(), allow_nan=False))["ci"]["alpha"] == [None, None]
    with pytest.warns(FitWarning, match="interpolates"):
        floor = fit_power_law([1e6, 1e7, 1e8], [0.5, 0.4, 0.35], form="power_floor", resamples=1000)
    assert all(np.isnan(v) for v in floor.ci["E"]) and floor.resamples == 0


def test_bootstrap_is_seeded_and_serialisable():
    y = noisy(X, 0.05, 2)
    a = fit_power_law(X, y, resamples=300, seed=7)
    b = fit_power_law(X, y, resamples=300, seed=7)
    c = fit_power_law(X, y, resamples=300, seed=8)
    assert a.ci == b.ci and a.ci != c.ci
    d = json.loads(json.dumps(a.as_dict()))
    assert set(d) >= {"form", "params", "ci", "r2", "n_points", "x_range", "warnings", "skipped_resamples"}
    assert d["ci"]["alpha"] == list(a.ci["alpha"])


def test_batched_refit_reaches_least_squares_minimum():
    """The bootstrap's vectorised solver lands where scipy's least_squares does, resample by resample."""
    x = np.geomspace(1e6, 1e9, 6)
    y = noisy(x, 0.05, 4, floor=E)
    y[2] *= 1.5  # an outlier, so the Huber branch is exercised
    scale = float(np.exp(np.mean(np.log(x))))
    u, ly = np.log(x / scale), np.log(y)
    theta0, _ = F._solve(u, ly, True, F._starts(u, ly, True), "huber", F.F_SCALE, F._bounds(ly, True))
    rng = np.random.default_rng(0)
    idx = rng.integers(0, x.size, size=(40, x.size))
    idx = idx[[F.distinct(x[i]) >= 3 for i in idx]]
    lo, hi = F._bounds(ly[idx], True)
    thetas, costs, ok = F.refit_batch(u[idx], ly[idx], theta0, True, "huber", F.F_SCALE, lo, hi)
    assert ok.all()
    for k, i in enumerate(idx):
        ref = least_squares(lambda t: ly[i] - F._model_log(t, u[i], True)[0],
                            np.clip(theta0, lo[k] + 1e-9, hi[k] - 1e-9),
                            jac=lambda t: F._model_log(t, u[i], True)[1], loss="huber", f_scale=F.F_SCALE,
                            bounds=(lo[k], hi[k]), xtol=1e-12, ftol=1e-12, gtol=1e-12)
        assert costs[k] == pytest.approx(ref.cost, rel=1e-5, abs=1e-12)
        # a Huber cost can be flat along a direction (its minimum a segment): alpha agrees loosely
        assert thetas[k][1] == pytest.approx(ref.x[1], abs=0.01)


def test_thousand_resamples_are_fast():
    x = np.geomspace(1e6, 1e9, 5)
    start = time.perf_counter()
    fit_power_law(x, noisy(x, 0.03, 5, floor=E), form="power_floor", resamples=1000, seed=0)
    fit_power_law(x, noisy(x, 0.03, 5), form="power", resamples=1000, seed=0)
    assert time.perf_counter() - start < 5.0
