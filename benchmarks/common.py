"""What the benchmarks share: composing the recipes' config, and a process's peak memory."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def compose(overrides):
    """recipes/conf composed with ``overrides`` into the typed RunConfig."""
    from hydra import compose as hcompose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from scaling import cli
    from scaling.config import parse
    cli.register()
    with initialize_config_dir(config_dir=str(ROOT / "recipes" / "conf"), version_base="1.3"):
        return parse(OmegaConf.to_container(hcompose("config", overrides=overrides), resolve=True))


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
