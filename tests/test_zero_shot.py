"""``eval.zero_shot``: a run also evaluated on datasets it never trained on, in the same table and
result, with the same numbers recipes/evaluate.py gets from its checkpoint on that dataset alone."""

import json

import pytest

from scaling.config import EvaluateConfig, parse
from scaling.experiment import evaluate, run
from tests.conftest import compose, dev_cut
from tests.test_checks import _fails, tripwires  # noqa: F401 (a fixture)

KEYS = ("nDCG@10", "RR@10", "R@100", "R@1000", "contrastive_entropy")


@pytest.fixture(scope="module")
def other_beir(pycode_dir, tmp_path_factory):
    """A second 200-document BEIR folder ("other"): 25 test queries none of small's train queries."""
    return dev_cut(pycode_dir, tmp_path_factory.mktemp("beir") / "other", 5, {"test": 25})


def test_zero_shot_rows_match_evaluating_the_checkpoint_on_that_dataset(tiny_overrides, other_beir, tmp_path, capsys):
    zero_shot = f"eval.zero_shot=[{{name:beir,path:'{other_beir}'}}]"
    result = run(parse(compose(tiny_overrides + [f"run_dir={tmp_path / 'run'}", zero_shot, "eval.baselines=[bm25]"])))
    table = capsys.readouterr().out
    assert "small/test" in table and "other/test" in table
    on_disk = json.loads((tmp_path / "run" / "result.json").read_text())
    assert set(on_disk["metrics"]) == {"small/test", "other/test"} == set(on_disk["baseline_metrics"])
    assert set(on_disk["reference_metrics"]["bm25"]) == {"small/test", "other/test"}
    assert (tmp_path / "run" / "runs" / "other_test.trec").exists()
    # BM25 on "other" is BM25 on that folder alone, and the trained rows are the checkpoint's there
    alone = evaluate(parse(compose(["data=beir", f"data.path={other_beir}", f"run_dir={tmp_path / 'eval'}",
                                    f"checkpoint={result['checkpoint']}", f"cache_dir={tmp_path / 'cache2'}",
                                    "eval.untrained=false", "eval.baselines=[bm25]"], config_name="evaluate"),
                           EvaluateConfig))
    assert on_disk["config"]["eval"]["zero_shot"][0] == alone["config"]["data"]  # as data=beir composes it
    for k in KEYS:
        assert on_disk["metrics"]["other/test"][k] == pytest.approx(alone["metrics"]["other/test"][k], abs=1e-6)
        assert on_disk["reference_metrics"]["bm25"]["other/test"].get(k) == \
            pytest.approx(alone["reference_metrics"]["bm25"]["other/test"].get(k), abs=1e-9)
    assert on_disk["metrics"]["other/test"]["nDCG@10"] != on_disk["metrics"]["small/test"]["nDCG@10"]


def test_zero_shot_on_the_training_data_or_a_missing_folder_fails_before_any_work(tiny_overrides, small_beir, tmp_path,
                                                                                  tripwires):
    _fails(tiny_overrides + [f"eval.zero_shot=[{{name:beir,path:'{small_beir}'}}]"], tmp_path, False,
           Exception, r"eval.zero_shot\[0\]: beir .* is the run's dataset already")
    _fails(tiny_overrides + ["eval.zero_shot=[{name:beir,path:'/no/such/folder'}]"], tmp_path, True,
           FileNotFoundError, "/no/such/folder does not exist")
    assert tripwires == []
