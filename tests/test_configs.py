"""Every config group option composes and validates; the dataclasses are the one source of
defaults; typos and bad values fail with their dotted key, before torch is imported."""

import dataclasses
import subprocess
import sys

import pytest
import yaml
from hydra.errors import ConfigCompositionException

from conftest import CONF, ROOT, compose
from scaling.config import LOSSES, PARADIGMS, ConfigError, EvaluateConfig, PrepareConfig, RunConfig, parse

YAML_GROUPS = ["size", "data", "budget", "trainer", "logger", "eval", "teacher", "experiment"]
NODE_GROUPS = {"paradigm": PARADIGMS, "loss": LOSSES}
REQUIRED = {("data", "beir"): ["data.path=/some/dir"], ("data", "msmarco"): ["data.path=/some/dir"],
            ("teacher", "hf"): ["teacher.model=/some/ce"], ("eval", "beir13"): ["eval.beir_root=/some/dir"],
            ("experiment", "zeng_grid"): ["data.path=/some/dir"], ("experiment", "zeng_grid_flops"): ["data.path=/some/dir"]}


def _options(group):
    if group in NODE_GROUPS:
        return sorted(NODE_GROUPS[group])
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


ALL = [(g, o) for g in YAML_GROUPS + list(NODE_GROUPS) for o in _options(g)]


@pytest.mark.parametrize("group,option", ALL)
def test_every_option_composes_and_validates(group, option):
    cfg = parse(compose([f"{group}={option}"] + REQUIRED.get((group, option), [])))
    name = getattr(cfg, {"size": "model", "experiment": "grid"}.get(group, group)).name
    cuts = {"smollm2-l": ("smollm2-135m", 30), "gemma3-l": ("gemma3-270m", 18)}
    for stem, (model, depth) in cuts.items():
        if option.startswith(stem):  # a decoder cut by depth (the CPU ladder)
            rung = int(option.removeprefix(stem))
            assert name == model and cfg.model.num_layers == (None if rung == depth else rung)
            return
    assert name == option or (group, option) == ("teacher", "hf")


def test_default_is_the_builtin_sparse_contrastive_run():
    """The default chosen on pycode/dev from the CPU grids (README, "why that default")."""
    cfg = parse(compose())
    assert (cfg.paradigm.name, cfg.loss.name, cfg.model.name, cfg.data.name) == \
        ("sparse", "cl", "smollm2-135m", "pycode")
    assert cfg.model.num_layers == 1 and cfg.data.doc_len == 96 and cfg.trainer.lr == 1e-3
    assert (cfg.data.negatives, cfg.data.n_negatives, cfg.trainer.global_batch) == ("bm25", 3, 8)
    assert cfg.budget.flops == 2.6e13
    assert cfg.loss.terms[0].temperature == cfg.paradigm.temperature == 1.0  # null follows the paradigm


def _default_at(path):
    node = RunConfig()
    for part in path:
        node = getattr(node, part)
    return node


@pytest.mark.parametrize("group,option", [(g, o) for g in YAML_GROUPS for o in _options(g)])
def test_yaml_options_only_override_the_dataclass_defaults(group, option):
    """A YAML option restating a default would be a second source of it: every value it sets differs.
    Experiments are exempt: they pin what they measured, so a default that moves later does not
    change a grid whose finished points are on disk."""
    if group == "experiment":
        pytest.skip("experiments pin their settings")
    text = (CONF / group / f"{option}.yaml").read_text()
    section = {"size": ["model"], "experiment": []}.get(group, [group])  # experiments are global
    if text.startswith("# @package _global_"):  # an option that also sets keys of other groups
        section = []

    def leaves(d, path):
        for k, v in d.items():
            if isinstance(v, dict) and dataclasses.is_dataclass(_default_at(path + [k])):
                yield from leaves(v, path + [k])
            else:
                yield path + [k], v
    data = {k: v for k, v in yaml.safe_load(text).items() if k != "defaults"}  # Hydra's own list
    same = [".".join(p) for p, v in leaves(data, section)
            if p[-1] != "name" and _default_at(p) == v]
    assert not same, f"{group}/{option}.yaml restates defaults: {same}"


def test_run_config_alone_is_a_valid_run():
    cfg = RunConfig()
    assert cfg.budget.flops == 2.6e13 and cfg.paradigm.head.name == "dense" and cfg.paradigm.head.normalize
    assert parse(dataclasses.asdict(cfg)) == cfg  # what goes to config.json reads back the same


def test_every_head_and_term_config_has_its_class_and_back():
    from scaling.heads import HEADS
    from scaling.losses import LOSSES as TERMS
    from scaling.parts import HEAD_CONFIGS, POOLINGS, TERM_CONFIGS
    from scaling.heads.dense import POOLINGS as IMPLEMENTED
    assert set(HEADS) == set(HEAD_CONFIGS) and set(TERMS) == set(TERM_CONFIGS)
    assert set(POOLINGS) == set(IMPLEMENTED)
    for node in PARADIGMS.values():
        assert node.head.name in HEADS and all(t.name in TERMS for t in node.terms)
    for node in LOSSES.values():
        assert all(t.name in TERMS for t in node.terms)
    from scaling.heads.base import KINDS
    from scaling.index.export import EXPORTERS
    assert set(EXPORTERS) == set(KINDS) and {HEADS[n].kind for n in HEADS} <= set(KINDS)


def test_evaluate_and_prepare_schemas():
    ev = parse(compose(["baseline=[bm25]"], config_name="evaluate"), EvaluateConfig)
    assert ev.eval.baselines == ["bm25"] and ev.checkpoint is None
    with pytest.raises(ConfigError, match="baseline"):
        parse(compose(["baseline=bm26"], config_name="evaluate"), EvaluateConfig)
    for nothing in ([], ["baseline=none"]):  # neither a checkpoint nor a reference system
        with pytest.raises(ConfigError, match="checkpoint: give checkpoint="):
            parse(compose(nothing, config_name="evaluate"), EvaluateConfig)
    prep = parse(compose(["steps=[data,bm25]", "size=tiny"], config_name="prepare"), PrepareConfig)
    assert prep.steps == ["data", "bm25"] and prep.run_config().model.name == "tiny"
    with pytest.raises(ConfigError, match="steps"):
        parse(compose(["steps=[dta]"], config_name="prepare"), PrepareConfig)


def test_unknown_choice_lists_the_options():
    with pytest.raises(ConfigCompositionException) as e:
        compose(["size=70b"])
    assert "tiny" in str(e.value) and "smollm2-135m" in str(e.value)


@pytest.mark.parametrize("override,key", [
    ("trainer.batch_size=abc", "trainer.batch_size"),
    ("model.padding_side=middle", "model.padding_side"),
    ("+data.bogus=1", "data.bogus"),
    ("budget.steps=5", "budget"),
    ("paradigm=dense paradigm.head.pooling=meen", "paradigm.head.pooling"),
    ("loss.terms.0.name=infonse", "loss.terms[0].name"),
    ("+loss.terms.0.tempreature=0.1", "loss.terms[0].tempreature"),
    ("paradigm=dense +paradigm.head.chunk=4", "paradigm.head.chunk"),
    ("loss.terms.0.temperature=-1", "loss.terms[0].temperature"),
    ("data=msmarco", "data.path"),
])
def test_bad_values_name_their_key(override, key):
    with pytest.raises((ConfigError, ConfigCompositionException), match=key.replace(".", r"\.").replace("[", r"\[")):
        parse(compose(override.split(" ")))


# The typos, each through the real recipe: `error: <dotted key>...`, exit status 1, no
# traceback, and torch never imported (importing it would raise here: sys.modules["torch"] = None).
GUARD = ("import runpy, sys; sys.modules['torch'] = None; sys.argv = ['recipes/run.py'] + sys.argv[1:]; "
         "runpy.run_path('recipes/run.py', run_name='__main__')")


@pytest.mark.parametrize("override,expect", [
    ("paradigm=dense paradigm.head.pooling=meen", "paradigm.head.pooling: unknown pooling 'meen' (known: eos, mean, cls"),
    ("loss.terms.0.name=infonse", "loss.terms[0].name: unknown loss term 'infonse' (known: flops, infonce, kl"),
    ("loss.terms.0.tempreature=0.1", "loss.terms[0].tempreature"),
    ("+loss.terms.0.tempreature=0.1", "loss.terms[0].tempreature: unknown key (known: bidirectional, name, "
                                      "temperature, weight)"),
    ("paradigm=dense paradigm.head.chunk=4", "paradigm.head.chunk"),
    ("paradigm=dense +paradigm.head.chunk=4", "paradigm.head.chunk: unknown key (known: name, normalize, pooling, skip_prefix, skip_sink)"),
    # without a +, Hydra's own error, worded the same way
    ("paradigm=dense paradigm.head.poling=mean", "paradigm.head.poling: unknown key (known: name, normalize, pooling, skip_prefix, "
                                  "skip_sink)"),
    ("trainer.lr=abc", "trainer.lr: expected float, got 'abc'"),
    ("trainer.batch_size=1.5", "trainer.batch_size: expected int, got 1.5"),
    ("size=huge", "size: unknown option 'huge' (known: 1b, 3b, 8b, gemma3-270m, gemma3-l4, minilm, mpnet, smollm2-135m, smollm2-l1, "),
    ("paradigm=spars", "paradigm: unknown option 'spars' (known: dense, sparse, sparse_zeng)"),
    ("trainer.lr=[", "trainer.lr: cannot parse 'trainer.lr=['"),
])
def test_recipe_typos_fail_with_their_key_before_torch(override, expect):
    out = subprocess.run([sys.executable, "-c", GUARD, *override.split(" ")], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1, out.stderr[-2000:]
    assert out.stderr.startswith("error: ") and expect in out.stderr, out.stderr[-2000:]
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr  # one line: none of Hydra's own text
    for hydra_text in ("Traceback", "To append", "Config search path", "full_key", "object_type", "hydra.cc"):
        assert hydra_text not in out.stderr
