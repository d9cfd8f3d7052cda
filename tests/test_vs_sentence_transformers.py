"""benchmarks/vs_sentence_transformers.py end to end at toy size: both frameworks train every pair
on the same groups, and what the table says is recomputed here from what the run wrote (its
figures are machine facts, read in the README; nothing here judges a timing)."""

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

PAIRS = ("dense", "dense_cache", "sparse", "margin_mse")


@pytest.fixture(scope="module")
def toy_run(small_beir, tmp_path_factory):
    assert importlib.util.find_spec("sentence_transformers"), \
        "sentence-transformers is missing: pip install -e '.[bench]' -c constraints.txt (make setup does)"
    out = tmp_path_factory.mktemp("vs_st")
    cmd = [sys.executable, str(ROOT / "benchmarks" / "vs_sentence_transformers.py"), "--toy", "--no-dropout",
           f"--out={out / 'out'}", f"--cache-dir={out / 'cache'}", "--set", "data=beir", f"data.path={small_beir}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    record = json.loads((out / "out" / "vs_sentence_transformers.json").read_text())
    # its files are named relative to its folder (args keep what the command line said)
    assert str(out) not in json.dumps({k: v for k, v in record.items() if k != "args"})
    for key in ("figure", "qrels"):  # read from here on as the folder's files
        record[key] = str(out / "out" / record[key])
    record["runs"] = {p: {fw: str(out / "out" / f) for fw, f in r.items()} for p, r in record["runs"].items()}
    return record, proc.stdout


def _row(record, pair, framework):
    (row,) = [r for r in record["rows"] if r["pair"] == pair and r["framework"] == framework]
    return row


@pytest.mark.slow
def test_every_pair_has_both_frameworks_with_positive_finite_figures(toy_run):
    record, stdout = toy_run
    assert sorted((r["pair"], r["framework"]) for r in record["rows"]) == sorted(
        (p, f) for p in PAIRS for f in ("ours", "theirs"))
    for r in record["rows"]:
        for key in ("step_s", "tokens_per_s", "tokens_per_step", "peak_MB"):
            assert math.isfinite(r[key]) and r[key] > 0, (r["pair"], r["framework"], key, r[key])
        assert r["steps"] == record["args"]["steps"] and r["timed_steps"] == r["steps"] - 1
        assert 0.0 <= r["nDCG@10"] <= 1.0 and 0.0 <= r["R@1000"] <= 1.0
    for pair in PAIRS:  # the same groups, truncated alike: the same real tokens a step
        assert _row(record, pair, "ours")["tokens_per_step"] == _row(record, pair, "theirs")["tokens_per_step"]
    assert "step time ours/theirs" in stdout and "nDCG@10 ours-theirs" in stdout
    assert Path(record["figure"]).suffix == ".png" and Path(record["figure"]).stat().st_size > 0


@pytest.mark.slow
def test_ratios_recomputed_from_the_rows(toy_run):
    record, _ = toy_run
    for pair in PAIRS:
        ours, theirs = _row(record, pair, "ours"), _row(record, pair, "theirs")
        ratio = record["ratios"][pair]
        assert ratio["step_time_ours_over_theirs"] == pytest.approx(ours["step_s"] / theirs["step_s"], rel=1e-12)
        assert ratio["ndcg10_ours_minus_theirs"] == pytest.approx(ours["nDCG@10"] - theirs["nDCG@10"], abs=1e-12)


@pytest.mark.slow
def test_ndcg_recomputed_with_ir_measures_on_the_written_runs(toy_run):
    import ir_measures
    record, _ = toy_run
    qrels = list(ir_measures.read_trec_qrels(record["qrels"]))
    for pair in PAIRS:
        for framework in ("ours", "theirs"):
            run = list(ir_measures.read_trec_run(record["runs"][pair][framework]))
            got = ir_measures.calc_aggregate([ir_measures.nDCG @ 10, ir_measures.R @ 1000], qrels, run)
            row = _row(record, pair, framework)
            assert got[ir_measures.nDCG @ 10] == pytest.approx(row["nDCG@10"], abs=1e-9), (pair, framework)
            assert got[ir_measures.R @ 1000] == pytest.approx(row["R@1000"], abs=1e-9), (pair, framework)


@pytest.mark.slow
def test_the_paired_tests_are_on_the_written_runs_and_reprinted_from_the_json(toy_run):
    """Each pair's paired tests compare the two models' own per-query nDCG@10 (their means are the
    rows'), Holm over the pairs; ``--report`` prints the same table again from the JSON alone."""
    from scipy import stats
    import ir_measures
    record, stdout = toy_run
    qrels = list(ir_measures.read_trec_qrels(record["qrels"]))
    assert set(record["significance"]) == set(PAIRS)
    for pair in PAIRS:
        test = record["significance"][pair]
        assert test["system_mean"] == pytest.approx(_row(record, pair, "ours")["nDCG@10"], abs=1e-9)
        assert test["baseline_mean"] == pytest.approx(_row(record, pair, "theirs")["nDCG@10"], abs=1e-9)
        per = {fw: {m.query_id: m.value for m in ir_measures.iter_calc(
            [ir_measures.nDCG @ 10], qrels, list(ir_measures.read_trec_run(record["runs"][pair][fw])))}
            for fw in ("ours", "theirs")}
        qids = sorted(per["theirs"])
        if any(per["ours"][q] != per["theirs"][q] for q in qids):  # scipy's p where the two differ at all
            p = stats.ttest_rel([per["ours"][q] for q in qids], [per["theirs"][q] for q in qids]).pvalue
            assert test["t_p"] == pytest.approx(p, abs=1e-9), pair
        assert test["t_p_holm"] >= test["t_p"]
    out = Path(record["qrels"]).parents[1] / "vs_sentence_transformers.json"
    again = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "vs_sentence_transformers.py"), "--report",
                            str(out)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert again.returncode == 0, again.stderr[-3000:]

    def ratios(text: str) -> list[str]:  # the header, a row per pair, the marks' legend, the versions
        lines = text.splitlines()
        start = next(i for i, line in enumerate(lines) if "step time ours/theirs" in line)
        return lines[start:start + len(PAIRS) + 3]
    assert "t p (Holm)" in ratios(stdout)[0] and ratios(again.stdout) == ratios(stdout), again.stdout[-2000:]


@pytest.mark.slow
def test_first_step_losses_agree(toy_run):
    """Identical weights, first batch and scale: both frameworks' own loss code agree (dropout off),
    on the same tokens and the same trained parameters, and every shared setting is the same."""
    record, _ = toy_run
    for pair in PAIRS:
        c = record["check"][pair]
        assert c["agree"] and abs(c["ours"] - c["theirs"]) <= 1e-4 * max(1.0, abs(c["ours"])), (pair, c)
        assert c["tokens_ours"] == c["tokens_theirs"] and c["trained_params_ours"] == c["trained_params_theirs"]
        assert all(s["same"] for s in record["settings"][pair]), [s for s in record["settings"][pair] if not s["same"]]
        # dropout 0 in both (--no-dropout): the trainers' own first-step losses agree too, and so do the next steps'
        # (one AdamW + schedule, the same clipping, the same groups in the same order)
        ours, theirs = record["curves"][pair]["ours"], record["curves"][pair]["theirs"]
        assert len(ours) == len(theirs) == record["args"]["steps"]
        assert abs(ours[0] - theirs[0]) <= 1e-4 * max(1.0, abs(ours[0])), (pair, ours, theirs)
        assert all(abs(o - t) <= 1e-3 * max(1.0, abs(o)) for o, t in zip(ours, theirs)), (pair, ours, theirs)
