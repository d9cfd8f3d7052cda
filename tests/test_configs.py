"""Every config group option composes and validates; bad choices and values fail clearly."""

import pytest
from hydra.errors import MissingConfigException

from conftest import CONF, compose
from scaling.config import ConfigError, parse

GROUPS = ["paradigm", "loss", "size", "data", "budget", "trainer", "logger", "eval"]


def _options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in _options(g)])
def test_every_option_composes_and_validates(group, option):
    overrides = [f"{group}={option}"]
    if group == "data" and option == "beir":
        overrides.append("data.path=/some/dir")
    cfg = parse(compose(overrides))
    assert getattr(cfg, "model" if group == "size" else group).name == option


def test_default_is_the_builtin_dense_contrastive_run():
    cfg = parse(compose())
    assert (cfg.paradigm.name, cfg.loss.name, cfg.model.name, cfg.data.name) == \
        ("dense", "cl", "smollm2-135m", "pycode")


def test_every_head_and_loss_named_in_configs_is_registered():
    from scaling.heads import HEADS
    from scaling.losses import LOSSES
    for option in _options("paradigm"):
        cfg = parse(compose([f"paradigm={option}"]))
        assert cfg.paradigm.head.name in HEADS
    for option in _options("loss"):
        cfg = parse(compose([f"loss={option}"]))
        assert all(t["name"] in LOSSES for t in cfg.loss.terms)


def test_unknown_choice_lists_the_options():
    with pytest.raises(MissingConfigException) as e:
        compose(["size=70b"])
    assert "tiny" in str(e.value) and "smollm2-135m" in str(e.value)


@pytest.mark.parametrize("override,key", [
    ("trainer.batch_size=abc", "trainer.batch_size"),
    ("model.padding_side=middle", "model.padding_side"),
    ("+data.bogus=1", "data.bogus"),
    ("budget.steps=5", "budget"),
])
def test_bad_values_name_their_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse(compose([override]))
