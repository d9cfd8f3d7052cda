"""IsoFLOP compute-optimal size (Hoffmann et al.'s approach 2, scaling/analysis/laws.py) and its
figure (plots.isoflop_plot) on data drawn from a known N*(C) = k C^a; complements tests/test_laws.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from scaling.analysis import laws, plots

K, A = 3e-3, 0.5
BUDGETS = (1e14, 1e15, 1e16, 1e17)
SHARES = np.array([0.2, 0.5, 1.0, 2.5, 5.0])                     # sizes around each vertex, asymmetric


def n_star(c):
    return K * c ** A


def runs(noise=0.0, seeds=1, rng_seed=0, budgets=BUDGETS):
    """Integer sizes (as parameter counts are) and y = c0 + c1 (ln N - ln N*)^2 (+ noise)."""
    rng = np.random.default_rng(rng_seed)
    c, n, y = [], [], []
    for budget in budgets:
        for size in np.round(n_star(budget) * SHARES):
            for _ in range(seeds):
                c.append(budget)
                n.append(size)
                y.append(0.4 + 0.03 * math.log(size / n_star(budget)) ** 2 + rng.normal(0.0, noise))
    return np.array(c), np.array(n), np.array(y)


def test_exact_parabolas_give_each_vertex_and_the_line():
    c, n, y = runs()
    fit = laws.isoflop(c, n, y, resamples=0)
    assert [b.flops for b in fit.budgets] == list(BUDGETS)
    for b in fit.budgets:
        assert b.inside and b.note == "inside"
        assert b.n_star == pytest.approx(n_star(b.flops), rel=1e-6)
        # independently: the vertex of numpy's parabola through this budget's points
        m = c == b.flops
        c2, c1, _ = np.polyfit(np.log(n[m]), y[m], 2)
        assert math.log(b.n_star) == pytest.approx(-c1 / (2 * c2), rel=1e-9)
        assert b.best_measured == pytest.approx(np.round(n_star(b.flops)))
        assert b.mean_error == pytest.approx([y[m][n[m] == s].mean() for s in b.sizes])
    assert fit.a == pytest.approx(A, rel=1e-6) and fit.k == pytest.approx(K, rel=1e-5)
    assert fit.predict(3e19) == pytest.approx(n_star(3e19), rel=1e-5)
    assert fit.refused is None and len(fit.draws) == 0
    assert np.all(np.isnan(fit.predict_interval([1e18])[0]))      # no resamples, no interval
    record = json.loads(json.dumps(fit.as_dict(), allow_nan=False))
    assert record["a"] == pytest.approx(A, rel=1e-6) and len(record["budgets"]) == 4


def test_noisy_seeds_interval_covers_the_truth():
    c, n, y = runs(noise=0.003, seeds=3, rng_seed=2)
    fit = laws.isoflop(c, n, y, resamples=500, seed=0)
    assert fit.resamples == 500 and 0 <= fit.skipped < 250 and len(fit.draws) == 500 - fit.skipped
    lo, hi = fit.ci["a"]
    assert lo < A < hi and lo < fit.a < hi and hi - lo < 0.1
    klo, khi = fit.ci["k"]
    assert klo < fit.k < khi
    plo, phi = fit.predict_interval([1e15, 3e19])
    assert np.all(plo < fit.predict([1e15, 3e19])) and np.all(fit.predict([1e15, 3e19]) < phi)
    assert plo[1] < n_star(3e19) < phi[1]
    # independently: the line's percentiles from the kept (ln k, a) draws
    by_hand = np.percentile(np.exp(fit.draws[:, 0] + fit.draws[:, 1] * math.log(3e19)), [2.5, 97.5])
    assert (plo[1], phi[1]) == pytest.approx(tuple(by_hand), rel=1e-12)
    again = laws.isoflop(c, n, y, resamples=500, seed=0)
    assert again.ci == fit.ci                                      # seeded


def test_end_of_ladder_and_no_minimum_budgets_are_flagged_and_left_out():
    c, n, y = runs()
    top = 1e18                                                    # sizes all below its optimum
    n_end = np.round(n_star(top) * np.array([0.05, 0.1, 0.2, 0.4]))
    y_end = 0.4 + 0.03 * np.log(n_end / n_star(top)) ** 2
    flat = 1e13                                                   # an upside-down parabola
    n_cap = np.array([1e3, 2e3, 4e3, 8e3])
    y_cap = 0.5 - 0.02 * np.log(n_cap / 2.8e3) ** 2
    fit = laws.isoflop(np.r_[c, [top] * 4, [flat] * 4], np.r_[n, n_end, n_cap], np.r_[y, y_end, y_cap],
                       resamples=50)
    by = {b.flops: b for b in fit.budgets}
    assert not by[top].inside and "end of the ladder" in by[top].note
    assert by[top].best_measured == pytest.approx(n_end[-1])     # the largest size run is the best
    assert by[flat].n_star is None and not by[flat].inside and "no minimum" in by[flat].note
    assert fit.a == pytest.approx(A, rel=1e-6)                    # the line through the 4 good budgets only
    text = fit.table()
    assert "end of the ladder" in text and "no minimum" in text and "through 4 budgets" in text


def test_fewer_than_two_usable_budgets_refuse_the_line():
    c, n, y = runs(budgets=(1e15,))
    fit = laws.isoflop(c, n, y)
    assert fit.refused and "needs 2" in fit.refused and fit.a is None and fit.k is None
    assert len(fit.budgets) == 1 and fit.budgets[0].inside
    assert "refused" in fit.table()
    assert json.loads(json.dumps(fit.as_dict()))["refused"] == fit.refused


@pytest.mark.parametrize("budgets, params, errors", [
    ([1e15, 1e15], [1e6, 2e6, 4e6], [0.5, 0.4, 0.45]),           # mismatched lengths
    ([1e15] * 3, [1e6, 0.0, 4e6], [0.5, 0.4, 0.45]),              # N <= 0
    ([1e15, -1.0, 1e15], [1e6, 2e6, 4e6], [0.5, 0.4, 0.45]),      # C <= 0
    ([1e15] * 3, [1e6, 2e6, 4e6], [0.5, np.nan, 0.45]),           # y not finite
])
def test_bad_input_is_refused(budgets, params, errors):
    with pytest.raises(ValueError, match="isoflop"):
        laws.isoflop(budgets, params, errors)


def test_isoflop_plot_writes_a_png_and_nothing_for_an_empty_fit(tmp_path):
    c, n, y = runs(noise=0.002, seeds=2, rng_seed=1)
    fit = laws.isoflop(c, n, y, resamples=100, seed=0)
    path = plots.isoflop_plot({"dense/cl": fit}, {"dense/cl": (c, n, y)}, tmp_path / "isoflop.png",
                              extra={"1b": 3.34e19})
    assert path == tmp_path / "isoflop.png" and path.stat().st_size > 0
    assert path.read_bytes().startswith(b"\x89PNG")
    refused = laws.isoflop(*runs(budgets=(1e15,)), resamples=0)    # the line refused: vertices only
    assert plots.isoflop_plot({"x": refused}, {"x": runs(budgets=(1e15,))}, tmp_path / "one.png").exists()
    empty = laws.isoflop([1e15, 1e15], [1e6, 2e6], [0.5, 0.4])    # under three sizes: no budget
    assert empty.budgets == []
    assert plots.isoflop_plot({"x": empty}, {"x": ([], [], [])}, tmp_path / "none.png") is None
    assert plots.isoflop_plot({}, {}, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
