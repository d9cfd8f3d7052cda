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


def children_peak_rss_mb() -> float:
    """The peak resident memory of this process's largest finished child (a JVM, say)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def print_table(rows: list[dict], columns: list[tuple]) -> None:
    """Print ``rows`` as right-aligned columns; each column is (title, key or function of the
    row, format spec), and its width fits the title and every value."""
    cells = [[format(key(r) if callable(key) else r[key], spec) for _, key, spec in columns] for r in rows]
    widths = [max([len(title)] + [len(c[i]) for c in cells]) + 2 for i, (title, _, _) in enumerate(columns)]
    for line in [[title for title, _, _ in columns]] + cells:
        print("".join(f"{v:>{w}}" for v, w in zip(line, widths)))


def plain_step(module, data, opt, sched, params, grad_clip, autocast):
    """One optimiser step of the toolkit's own loss outside Lightning (the benchmarks' plain loop):
    forward under ``autocast``, backward, clipping, AdamW and the schedule; returns the loss."""
    import torch
    with autocast:
        total, _ = module.loss(module.step_inputs(data))
    total.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    return total.detach()
