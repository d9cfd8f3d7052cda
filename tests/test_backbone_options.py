"""The ``backbone=`` options (recipes/conf/backbone/): each a size pooled as a paper pools it.
Every option composes into the size, paradigm and head its file names, and plans the trainable
parameters the loaded model really has (the Gemma options on a tiny Gemma3 of the same code path)."""

from pathlib import Path

import pytest
import yaml

from scaling.config import parse
from tests.conftest import CONF, compose

OPTIONS = sorted(p.stem for p in (CONF / "backbone").glob("*.yaml"))


def _declared(option: str) -> dict:
    """What the option's file says: its size, paradigm and head pooling."""
    data = yaml.safe_load((CONF / "backbone" / f"{option}.yaml").read_text())
    chosen = {k.split("/")[-1]: v for entry in data["defaults"] for k, v in entry.items()}
    return {"size": chosen["size"], "paradigm": chosen["paradigm"],
            "pooling": data.get("paradigm", {}).get("head", {}).get("pooling")}


@pytest.fixture(scope="module")
def tiny_gemma(tmp_path_factory):
    from tests.test_backbone import _tiny_gemma3
    return _tiny_gemma3(tmp_path_factory.mktemp("gemma") / "tiny")


def test_there_are_options_and_they_are_luo_backbones():
    import yaml as y
    axes = y.safe_load((CONF / "experiment" / "luo_backbones.yaml").read_text())["grid"]["axes"]
    assert sorted(axes["backbone"]) == OPTIONS


@pytest.mark.parametrize("option", OPTIONS)
def test_every_backbone_option_composes_and_plans_what_it_trains(option, tiny_gemma, tmp_path):
    from scaling import checkpoint
    from scaling.checks import make_plan
    want = _declared(option)
    extra = [f"model.path={tiny_gemma}"] if want["size"].startswith("gemma3") else []
    cfg = parse(compose([f"backbone={option}", f"cache_dir={Path.home() / '.cache' / 'scaling'}", *extra]))
    assert cfg.paradigm.name == want["paradigm"]
    size = yaml.safe_load((CONF / "size" / f"{want['size']}.yaml").read_text())
    assert cfg.model.name == size["name"] and cfg.model.num_layers is None  # the whole backbone
    if want["pooling"]:
        assert cfg.paradigm.head.pooling == want["pooling"]
        assert cfg.model.append_eos == (want["pooling"] == "eos")  # eos pooling reads an appended EOS
    plan = make_plan(cfg)
    backbone, head, _ = checkpoint.build(cfg)
    params = {id(p): p for m in (backbone.body, head) for p in m.parameters()}  # tied weights once
    trained = sum(p.numel() for p in params.values() if p.requires_grad)
    assert plan.params_trainable == trained > 0
