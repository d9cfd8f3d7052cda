"""Where a run's numbers go besides result.json: the Lightning logger of per-step metrics and, for
W&B, one run per grid point holding the resolved config, the budget plan and the final table.

``open_tracker(cfg, run_dir)`` yields a ``Tracker``: ``.logger`` for the Trainer (a CSVLogger,
a WandbLogger and, with ``logger.csv`` (the default), a CSVLogger beside it, or False),
``.plan(plan)`` and ``.result(result, columns)`` (no-ops but for W&B).
Under W&B only the launch's leader (global rank 0) starts a run; the other ranks get a logger
that never does (Lightning's rank-zero experiment). ``wandb.finish()`` runs whenever the block
ends, with exit code 1 when it raised; a preempted run is marked preempting first.

The W&B run's name is the grid point's (``dense-cl-smollm2-l1``, or paradigm-loss-size-budget
outside a grid), its group the grid's name, and its id derived from the run folder, so a requeued
or rerun point resumes the same W&B run (inside a sweep the agent's id wins: W&B ignores the
project, entity and id passed to ``wandb.init`` there). Its config is the point's axes at the top
(what a sweep sets) and the whole resolved configuration under ``run``.

Offline by itself: ``logger.mode=auto`` goes online only with credentials (WANDB_API_KEY, or a
netrc entry for the W&B host); offline runs land in RUN_DIR/wandb/offline-run-* (``wandb sync``).
What goes to disk: ``logs/metrics.csv`` (csv; wandb unless ``logger.csv=false``) and ``wandb/``
(wandb) under the run folder, every ``trainer.log_every`` steps (by default every step). The CSV
survives resumes: a resumed attempt keeps the earlier rows before its own first step and appends
its own (a step logged by a killed attempt after its last checkpoint is logged again, once), and
the loggers are flushed with every checkpoint, so no step before a checkpoint is lost.
"""

from __future__ import annotations

import hashlib
import netrc
import os
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from scaling import grid, launch
from scaling.config import RunConfig, to_dict


def point(cfg: RunConfig) -> dict[str, str]:
    """The run's place on the grid's axes; outside a grid paradigm, loss, size and budget."""
    if cfg.grid.name:
        return dict(cfg.grid.point)
    b = cfg.budget
    budget = next(f"{k}{v:g}" for k, v in (("flops", b.flops), ("tokens", b.tokens), ("steps", b.steps))
                  if v is not None)
    size = cfg.model.name + ("" if cfg.model.num_layers is None else f"-l{cfg.model.num_layers}")
    return {"paradigm": cfg.paradigm.name, "loss": cfg.loss.name, "size": size, "budget": budget}


def run_name(cfg: RunConfig) -> str:
    return grid.name(point(cfg))


def run_id(run_dir: Path) -> str:
    """A W&B run id from the run folder's absolute path: the same point's relaunch resumes it."""
    return hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:16]


def has_credentials(env=os.environ, netrc_path: str | None = None) -> bool:
    """An API key in the environment, or a netrc entry for the W&B host (``wandb login`` writes one)."""
    if env.get("WANDB_API_KEY"):
        return True
    host = urlparse(env.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    path = netrc_path or env.get("NETRC") or os.path.expanduser("~/.netrc")
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_mode(mode: str, env=os.environ, netrc_path: str | None = None) -> str:
    """online/offline/disabled: WANDB_MODE wins; ``auto`` is online only with credentials."""
    if env.get("WANDB_MODE"):
        return env["WANDB_MODE"]
    if mode == "auto":
        return "online" if has_credentials(env, netrc_path) else "offline"
    return mode


class Tracker:
    """The csv/none case: a logger and nothing else."""

    def __init__(self, logger=False):
        self.logger = logger
        self.preempted = False

    def plan(self, plan: dict) -> None:
        pass

    def result(self, result: dict, columns: dict) -> None:
        pass

    def close(self, failed: bool, preempted: bool = False) -> None:
        pass


def table_rows(columns: dict) -> tuple[list[str], list[list]]:
    """{system: {dataset/split: {measure: value}}} -> (column names, rows) of one long table."""
    from scaling.evaluation.metrics import numbers
    rows = [[system, key, measure, float(value)]
            for system, per_split in columns.items() for key, measures in per_split.items()
            for measure, value in numbers(measures).items()]
    return ["system", "dataset/split", "measure", "value"], rows


class WandbTracker(Tracker):
    """The leader's W&B run (``run`` is None on other ranks: their logger never starts one), and
    with ``logger.csv`` the run folder's own logs/metrics.csv beside it (one Trainer, two loggers)."""

    def __init__(self, cfg: RunConfig, run_dir: Path, leader: bool):
        from lightning.pytorch.loggers import WandbLogger
        self.run = None
        also = [csv_logger(run_dir)] if cfg.logger.csv else []
        if not leader:
            super().__init__([WandbLogger(save_dir=str(run_dir), project=cfg.logger.project, offline=True), *also])
            return
        import wandb
        mode = wandb_mode(cfg.logger.mode)
        self.run = wandb.init(project=cfg.logger.project, entity=cfg.logger.entity, name=run_name(cfg),
                              group=cfg.grid.name or cfg.logger.group, id=run_id(run_dir), resume="allow",
                              dir=str(run_dir), mode=mode, job_type="train", tags=list(cfg.logger.tags),
                              config={**point(cfg), "run": to_dict(cfg)})
        print(f"[wandb] {mode} run {self.run.name} ({self.run.id})", flush=True)
        super().__init__([WandbLogger(experiment=self.run, save_dir=str(run_dir)), *also])

    def plan(self, plan: dict) -> None:
        if self.run is not None:
            self.run.config.update({"budget_plan": plan}, allow_val_change=True)

    def result(self, result: dict, columns: dict) -> None:
        if self.run is None:
            return
        import wandb
        names, rows = table_rows(columns)
        from scaling.evaluation.metrics import numbers
        summary = {f"{key}/{m}": v for key, ms in result["metrics"].items() for m, v in numbers(ms).items()}
        summary.update({f"budget/{k}": v for k, v in result["budget"]["realised"].items()})
        summary.update({f"timing_s/{k}": v for k, v in result["timing_s"].items()})
        self.run.log({"results": wandb.Table(columns=names, data=rows)})
        self.run.summary.update(summary)

    def close(self, failed: bool, preempted: bool = False) -> None:
        if self.run is None:
            return
        if preempted:
            self.run.mark_preempting()
        self.run.finish(exit_code=1 if failed else 0)


def csv_logger(run_dir: Path):
    """Lightning's CSVLogger writing RUN_DIR/logs/metrics.csv through ``resumed_writer``."""
    from lightning.pytorch.loggers import CSVLogger

    class Logger(CSVLogger):
        @property
        def experiment(self):
            if self._experiment is None:
                self._fs.makedirs(self.root_dir, exist_ok=True)
                self._experiment = resumed_writer(self.log_dir)
            return self._experiment
    return Logger(save_dir=str(run_dir), name="logs", version="")


def resumed_writer(log_dir: str):
    """Lightning's CSV writer, but an existing metrics.csv is continued, not deleted: the first
    save keeps its rows before this attempt's first step (written atomically with the new ones),
    later saves append."""
    import csv

    from lightning.pytorch.loggers.csv_logs import ExperimentWriter

    from scaling.io import write_atomic

    class Writer(ExperimentWriter):
        def _check_log_dir_exists(self) -> None:  # Lightning's deletes the earlier attempt's rows
            self._merged = False

        def save(self) -> None:
            if not self.metrics or self._merged:
                return super().save()
            self._merged = True
            first = min(m["step"] for m in self.metrics)
            old = []
            if os.path.isfile(self.metrics_file_path):
                with open(self.metrics_file_path, newline="") as f:
                    old = [r for r in csv.DictReader(f) if r.get("step") and int(float(r["step"])) < first]
            rows = old + self.metrics
            self.metrics_keys = sorted(set().union(*rows))

            def write(f):
                writer = csv.DictWriter(f, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(rows)
            write_atomic(Path(self.metrics_file_path), write)
            self.metrics = []
    return Writer(log_dir)


@contextmanager
def open_tracker(cfg: RunConfig, run_dir: Path):
    """The run's Tracker; a W&B run is always finished when the block ends (exit code 1 if it raised)."""
    if cfg.logger.name == "none":
        yield Tracker(False)
        return
    if cfg.logger.name == "csv":
        yield Tracker(csv_logger(run_dir))
        return
    from scaling import signals
    tracker = WandbTracker(cfg, run_dir, launch.is_leader())
    failed = True
    try:
        yield tracker
        failed = False
    except BaseException:
        if signals.requeued():  # requeued (outside training, or submitit's exit): the next attempt goes on
            tracker.preempted, failed = True, False
        raise
    finally:
        tracker.close(failed, tracker.preempted)
