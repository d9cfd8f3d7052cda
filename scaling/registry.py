"""Name -> class registries: one per part (heads, losses, their typed configs, index exporters).

Torch-free, so the config registries can use it before any model code is imported.
"""

from __future__ import annotations

from typing import Callable


def registrar(table: dict, require: Callable[[str, type], None] | None = None):
    """A decorator factory that files a class under ``name`` in ``table`` and sets ``cls.name``;
    ``require(name, cls)`` may refuse the class (raising TypeError) before it is filed."""
    def register(name: str):
        def deco(cls):
            if require is not None:
                require(name, cls)
            table[name] = cls
            cls.name = name
            return cls
        return deco
    return register
