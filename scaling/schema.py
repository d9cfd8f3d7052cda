"""Build typed dataclass configs from plain mappings, naming the dotted key of every error.

``build(cls, mapping)`` rejects unknown keys and wrong types; a field whose metadata names a
``union`` table (``{name: config class}``) holds a tagged union, built as the class its ``name``
selects (a list field: each item). Checks inside ``__post_init__`` call ``check`` with keys
relative to their own class when the class can sit in several places (a head, a loss term):
``build`` prefixes them with where it sits, so a loss term reports ``loss.terms[1].temperature``
or ``paradigm.terms[0].temperature``. The group configs, each at one place, check with their
absolute key (``eval.shard``), which ``build`` leaves as it is.
Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any


class ConfigError(ValueError):
    """A configuration value that cannot work; the message starts with its dotted key."""

    def __init__(self, key: str, message: str | None = None):
        self.key, self.detail = (key, message) if message is not None else ("", key)
        super().__init__(f"{self.key}: {self.detail}" if self.key else self.detail)

    def under(self, prefix: str) -> "ConfigError":
        """The same error, its key placed under ``prefix`` (e.g. 'loss.terms[0].'), unless the key
        already names its place (a group's checks use their absolute key, e.g. 'eval.shard')."""
        if self.key == prefix.rstrip(".") or self.key.startswith(prefix):
            return self
        return ConfigError((prefix + self.key).rstrip("."), self.detail)


def check(cond: bool, key: str, message: str) -> None:
    """Raise ConfigError(key, message) unless ``cond``; ``key`` is relative to the checking class."""
    if not cond:
        raise ConfigError(key, message)


def union(table: dict[str, type], what: str):
    """A dataclass field holding a tagged union from ``table`` (or a list of them), chosen by name."""
    return {"union": table, "what": what}


def _matches(value, tp) -> bool:
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is list:
        (item,) = typing.get_args(tp)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    return isinstance(value, tp)


def _tagged(value, meta: dict, key: str):
    """One union member from its mapping: the class its ``name`` selects."""
    table, what = meta["union"], meta["what"]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return value
    if not isinstance(value, dict) or "name" not in value:
        raise ConfigError(key, f"expected a mapping with a 'name' (one of: {', '.join(sorted(table))})")
    name = value["name"]
    if name not in table:
        raise ConfigError(f"{key}.name", f"unknown {what} {name!r} (known: {', '.join(sorted(table))})")
    return build(table[name], value, key + ".")


def build(cls, data: dict, prefix: str = ""):
    """Build dataclass ``cls`` from a plain mapping; unknown keys, wrong types and failed checks
    raise ConfigError naming the dotted key (under ``prefix``) and, for keys, the valid ones."""
    if not isinstance(data, dict):
        raise ConfigError(prefix.rstrip(".") or "config", f"expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}", f"unknown key (known: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, value in data.items():
        tp, key, meta = hints[name], f"{prefix}{name}", fields[name].metadata
        if "union" in meta and value is not None:
            if isinstance(value, list):
                kwargs[name] = [_tagged(v, meta, f"{key}[{i}]") for i, v in enumerate(value)]
            else:
                kwargs[name] = _tagged(value, meta, key)
            continue
        if dataclasses.is_dataclass(tp):
            kwargs[name] = build(tp, value, key + ".")
            continue
        if isinstance(value, int) and not isinstance(value, bool) and _matches(1.0, tp) \
                and not _matches(1, tp):
            value = float(value)
        if not _matches(value, tp):
            raise ConfigError(key, f"expected {_type_name(tp)}, got {value!r}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise e.under(prefix) from None


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
