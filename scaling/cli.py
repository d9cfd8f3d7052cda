"""What the recipes share: Hydra's config store, parsing, and one way to report bad input.

``register`` files the typed schemas (``RunConfig``, ``EvaluateConfig``, ``PrepareConfig``) as the
``schema`` group and the paradigm and loss choices (``config.PARADIGMS``, ``config.LOSSES``) in
Hydra's ConfigStore. The dataclasses are the one source of defaults: each YAML file under
``recipes/conf`` only overrides them, and every key exists (typed) in the composed config, so a
typo fails while Hydra composes and a wrong value when ``parse`` builds the dataclasses, both
before torch is imported.

Every configuration or input error ends the recipe with ``error: <dotted key or file>: ...`` on
stderr and exit status 1, never a traceback (``run``; Hydra's own composition errors included).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

from scaling.config import CODE_GROUPS, PARADIGM_MODELS, EvaluateConfig, PrepareConfig, RunConfig, parse
from scaling.data.formats import FormatError
from scaling.schema import ConfigError

SCHEMAS = {"run": RunConfig, "evaluate": EvaluateConfig, "prepare": PrepareConfig}
USER_ERRORS = (ConfigError, FormatError, FileNotFoundError, FileExistsError, TimeoutError)
"""Bad input or state a user can fix: reported as ``error: ...``, never as a traceback.
(RunExistsError and StoreMismatch are FileExistsErrors; a wait past its deadline a TimeoutError.)"""


_registered = False


def register() -> None:
    """File the schemas and the paradigm/loss choices in Hydra's ConfigStore (once per process)."""
    global _registered
    if _registered:
        return
    _registered = True
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf
    store = ConfigStore.instance()
    for name, cls in SCHEMAS.items():
        node = OmegaConf.structured(cls)
        if "paradigm" in node:
            node.paradigm.head = None  # the chosen paradigm brings its own head type
        if "grid" in node:  # a grid's axes and point are open mappings (grid.axes={loss:[cl,kd]})
            OmegaConf.set_struct(node.grid.axes, False)
            OmegaConf.set_struct(node.grid.point, False)
            OmegaConf.set_struct(node.grid.brings, False)
        store.store(group="schema", name=name, node=node, package="_global_")
    for name, node in CODE_GROUPS["paradigm"].items():
        if name in PARADIGM_MODELS:  # the choice also sets model keys, so it is filed at the root
            store.store(group="paradigm", name=name, package="_global_",
                        node={"paradigm": node, "model": PARADIGM_MODELS[name]})
        else:
            store.store(group="paradigm", name=name, node=node)
    for name, node in CODE_GROUPS["loss"].items():
        store.store(group="loss", name=name, node=node)


def bind_grid(conf) -> None:
    """In a grid (``grid.name`` set): fill ``grid.point`` from the composed config (the chosen
    group options and the axes' key values), set what the point brings (``grid.brings``; a key
    the command line sets keeps its value) and, unless ``run_dir`` is given, name the run folder
    from the point (scaling/grid.py)."""
    from omegaconf import OmegaConf

    from scaling import grid
    if "grid" not in conf or not conf.grid.get("name"):
        return
    from hydra.core.hydra_config import HydraConfig
    hydra = HydraConfig.get() if HydraConfig.initialized() else None
    choices = dict(hydra.runtime.choices) if hydra is not None else {}
    axes = OmegaConf.to_container(conf.grid.axes, resolve=True)
    point = grid.point_of(axes, choices, lambda key: OmegaConf.select(conf, key))
    conf.grid.point = point
    brings = OmegaConf.to_container(conf.grid.brings, resolve=True) if conf.grid.get("brings") else {}
    grid.check_brings(axes, brings)
    given = [o.split("=", 1)[0].lstrip("+~") for o in (hydra.overrides.task if hydra is not None else [])
             if "=" in o]
    for key, value in grid.brought(axes, brings, point).items():
        if _given(key, given, choices):
            continue
        _bring(conf, key, value, _origin(brings, axes, point, key))
    if conf.run_dir is None:
        conf.run_dir = str(grid.run_dir(conf.grid.root, conf.grid.name, point))


def _given(key: str, given: list[str], choices: dict) -> bool:
    """Whether the command line sets ``key``: itself, or a mapping above it (``trainer={...}``;
    a group choice such as ``data=beir`` only picks the group's defaults)."""
    return any(o == key or (key.startswith(o + ".") and o not in choices) for o in given)


def _origin(brings: dict, axes: dict, point: dict, key: str) -> str:
    """``grid.brings.<axis>.<value>.<key>``: where the point's value for ``key`` comes from."""
    from scaling import grid
    for axis, by_value in brings.items():
        for value, settings in by_value.items():
            if key in settings and grid._matches(axes, axis, value, point):
                return f"grid.brings.{axis}.{value}.{key}"
    return f"grid.brings.{key}"


def _bring(conf, key: str, value, where: str) -> None:
    """``OmegaConf.update`` under the config's struct flag: an unknown key or a wrong type is a
    ConfigError naming ``where``."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException
    try:
        OmegaConf.update(conf, key, value, merge=True)
    except OmegaConfBaseException as e:
        detail = hydra_message(e)
        detail = detail[len(key) + 2:] if detail.startswith(f"{key}: ") else detail
        raise ConfigError(where, detail) from None


def parse_conf(conf, cls=RunConfig):
    """A composed Hydra config -> the typed dataclass ``cls`` (raises ConfigError)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException
    try:
        data = OmegaConf.to_container(conf, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as e:  # e.g. a mandatory value (???) left unset
        raise ConfigError(getattr(e, "full_key", "") or "config", str(e).splitlines()[0]) from None
    return parse(data, cls)


@contextmanager
def errors():
    """Turn bad input (USER_ERRORS) into ``error: ...`` and exit status 1."""
    try:
        yield
    except USER_ERRORS as e:
        sys.exit(f"error: {e}")


def run(main) -> None:
    """Call a ``@hydra.main`` function so that Hydra's composition errors (unknown group choice,
    unknown key, wrong type) also read ``error: ...`` instead of Hydra's hint about stack traces."""
    from hydra._internal import utils
    from hydra.errors import CompactHydraException
    from omegaconf.errors import OmegaConfBaseException
    original = utils.run_and_report

    def report(func):
        def guarded():
            try:
                return func()
            except (CompactHydraException, OmegaConfBaseException) as ex:
                sys.exit(f"error: {hydra_message(ex)}")
        return original(guarded)

    utils.run_and_report = report
    from scaling import grid
    with errors():
        sys.argv = grid.expand_argv(sys.argv)
    try:
        main()
    finally:
        utils.run_and_report = original


def hydra_message(ex: BaseException) -> str:
    """Hydra's and OmegaConf's composition errors in this toolkit's words, ``<dotted key>: ...``
    with the valid choices, as ``scaling.schema`` words the errors it finds itself: an unknown key
    (with or without a leading +), a value of the wrong type, an unknown option of a group. Other
    errors keep their first lines, without Hydra's config search path."""
    import dataclasses
    import typing

    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

    from scaling.schema import _type_name
    if isinstance(ex, MissingConfigException) and ex.missing_cfg_file and "/" in ex.missing_cfg_file:
        group, _, option = ex.missing_cfg_file.rpartition("/")
        known = f" (known: {', '.join(ex.options)})" if ex.options else ""
        return f"{group.replace('/', '.')}: unknown option {option!r}{known}"
    if isinstance(ex, OverrideParseException):
        key = ex.override.split("=", 1)[0].lstrip("+~")
        return f"{key}: cannot parse {ex.override!r} ({ex.message.splitlines()[0]}; quote values with special characters)"
    cause = ex if isinstance(ex, (ConfigAttributeError, ConfigKeyError, ValidationError)) else ex.__cause__
    owner, key = getattr(cause, "object_type", None), getattr(cause, "key", None)
    full_key = getattr(cause, "full_key", None) or key
    fields = {f.name: f for f in dataclasses.fields(owner)} if dataclasses.is_dataclass(owner) else {}
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and full_key and fields and key not in fields:
        return f"{full_key}: unknown key (known: {', '.join(sorted(fields))})"
    if isinstance(cause, ValidationError) and full_key and key in fields:
        hint = typing.get_type_hints(owner).get(key)
        return f"{full_key}: expected {_type_name(hint)}, got {cause.value!r}"
    lines = [str(ex)] + ([str(cause)] if cause is not None else [])
    text = "\n".join(line for part in lines for line in part.splitlines()
                     if line.strip() and not line.startswith(("\tprovider=", "Config search path")))
    return text.strip()
