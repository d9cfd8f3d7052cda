"""One cache for metrics that depend only on their inputs, not on training: the reference systems
and the untrained backbone. A grid pays for each once.

What goes to disk: ``<cache_dir>/baselines/<system>-<hash>.json``, the metrics, written atomically;
the hash covers everything the numbers depend on (``key`` parts), so a changed setting misses.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from scaling.io import write_json_atomic


def digest(parts: dict) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached(cache_dir: str | Path, name: str, label: str, key: dict, compute: Callable[[], dict]) -> dict:
    """``compute()``'s metrics, read from the cache when an earlier call had the same ``key``."""
    path = Path(cache_dir).expanduser() / "baselines" / f"{name}-{digest(key)}.json"
    if path.exists():
        print(f"[eval] {label}: cached {path}", flush=True)
        return json.loads(path.read_text())
    print(f"[eval] {label}", flush=True)
    metrics = compute()
    write_json_atomic(path, metrics)
    return metrics
