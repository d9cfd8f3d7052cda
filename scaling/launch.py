"""Who this process is in its launch, read from the environment before torch is imported.

Launchers say it in environment variables: torchrun sets RANK/WORLD_SIZE; Lightning's DDP
launcher re-runs the script once per extra device with LOCAL_RANK (and NODE_RANK) set; a Slurm
array gives each task SLURM_ARRAY_TASK_ID/COUNT. A launch's leader (global rank 0, or the one
process of a plain run) does the work that must happen once: it fixes the run folder, evaluates
the reference systems and the untrained backbone, and writes the result. It hands the run folder
to the ranks it starts through ``RUN_DIR_ENV``.
"""

from __future__ import annotations

import os

RUN_DIR_ENV = "SCALING_RUN_DIR"
"""The run folder a launch's leader fixed; the ranks it starts (Lightning's DDP launcher copies
the environment into each child) read it instead of naming their own."""


def parse_shard(spec: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n."""
    try:
        i, n = (int(x) for x in str(spec).split("/"))
    except ValueError:
        raise ValueError(f"shard must look like 'i/n' (e.g. 0/4), got {spec!r}") from None
    if not 0 <= i < n:
        raise ValueError(f"shard {spec!r}: need 0 <= i < n")
    return i, n


def resolve_shard(spec: str | None, env=os.environ) -> tuple[int, int]:
    """Which slice of a split job this process does: an explicit 'i/n'; for None or 'auto' the Slurm
    array task (id - min, count), else the launcher's RANK/WORLD_SIZE (torchrun), else (0, 1)."""
    if spec is not None and spec != "auto":
        return parse_shard(spec)
    if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        first = int(env.get("SLURM_ARRAY_TASK_MIN", 0))
        return parse_shard(f"{int(env['SLURM_ARRAY_TASK_ID']) - first}/{env['SLURM_ARRAY_TASK_COUNT']}")
    if "RANK" in env and "WORLD_SIZE" in env:
        return parse_shard(f"{env['RANK']}/{env['WORLD_SIZE']}")
    return 0, 1


def launched_by_rank(env=os.environ) -> bool:
    """True when the shard comes from a launcher's ranks (all alive at once), not array tasks."""
    return "RANK" in env and "WORLD_SIZE" in env and "SLURM_ARRAY_TASK_ID" not in env


def is_leader(env=os.environ) -> bool:
    """True for the process that does a launch's once-only work: no rank variable says otherwise
    (RANK under torchrun; LOCAL_RANK/NODE_RANK in the ranks Lightning's launcher starts;
    SLURM_PROCID in the tasks of a multi-task srun, which Lightning's SLURM environment trains)."""
    names = ("RANK", "LOCAL_RANK", "NODE_RANK") + (("SLURM_PROCID",) if int(env.get("SLURM_NTASKS") or 1) > 1 else ())
    return all(int(env.get(name) or 0) == 0 for name in names)


def launch_name(env=os.environ) -> str | None:
    """A name every rank of one launch derives alike without talking, when a launcher gives one:
    torchrun's rendezvous id (unless 'none'), else the Slurm job and step. None otherwise."""
    run_id = env.get("TORCHELASTIC_RUN_ID")
    if run_id and run_id != "none":
        return f"torchrun-{run_id}"
    if "SLURM_JOB_ID" in env and int(env.get("SLURM_NTASKS", "1")) > 1:
        return f"slurm-{env['SLURM_JOB_ID']}-{env.get('SLURM_STEP_ID', '0')}"
    return None


def planned_world_size(devices, accelerator: str = "cpu", num_nodes: int = 1, env=os.environ) -> int:
    """How many processes the Trainer will run, known before it starts so the budget can plan
    the global batch: torchrun's WORLD_SIZE, else ``devices`` (a count, a list of ids, or
    auto/-1: every visible GPU for a GPU accelerator, one process on a CPU) x ``num_nodes``.
    The Trainer's own count is compared with it once it exists (scaling.training.fit)."""
    if env.get("WORLD_SIZE") and env.get("TORCHELASTIC_RUN_ID"):
        return int(env["WORLD_SIZE"])
    if isinstance(devices, (list, tuple)):
        per_node = len(devices)
    elif str(devices).lstrip("-").isdigit() and int(devices) > 0:
        per_node = int(devices)
    elif str(devices) in ("auto", "-1"):
        per_node = 1
        if accelerator in ("gpu", "cuda", "auto"):
            import torch
            per_node = max(1, torch.cuda.device_count())
    else:
        raise ValueError(f"trainer.devices={devices!r}: expected a count, a list of device ids, auto or -1")
    return per_node * num_nodes
