"""Name -> class registries: one per part (heads, losses), keyed by the config's ``name``."""

from __future__ import annotations


def registrar(table: dict):
    """A decorator factory that files a class under ``name`` in ``table`` and sets ``cls.name``."""
    def register(name: str):
        def deco(cls):
            table[name] = cls
            cls.name = name
            return cls
        return deco
    return register
