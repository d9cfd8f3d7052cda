"""Known-harmless library messages a run would otherwise print, filtered one by one.

Each entry names the exact message and the module that emits it, so every other warning (a new
deprecation, a real misconfiguration) still shows. ``quiet_known()`` installs them in this
process; it is idempotent and cheap, so each place that triggers one calls it. Nothing goes to
disk. What is filtered and why:

- transformers' ``is_gradient_checkpointing`` FutureWarning (transformers/modeling_utils.py): peft
  reads the deprecated property while wrapping a model in LoRA; nothing here uses it.
- torch's ``isinstance(treespec, LeafSpec)`` FutureWarning, raised where Lightning's own pytree
  helper (lightning/pytorch/utilities/_pytree.py) builds a ``LeafSpec`` for every step's outputs.
- Lightning's "number of training batches (N) is smaller than the logging interval": an epoch here
  is often one batch, but Lightning counts its logging interval across epochs, so every
  ``trainer.log_every``-th step is logged anyway (lightning/pytorch/loops/fit_loop.py).
- Lightning's srun hint (lightning/fabric/plugins/environments/slurm.py): a Slurm array task runs
  one process per grid point under ``sbatch`` without ``srun``, as intended.
- Lightning's rank-zero info lines "GPU available: ... / TPU available: ..." (the Trainer's device
  report; the device is in config.json) and "💡 Tip: ... litlogger" (an advertisement printed
  whenever no LitLogger is among the loggers), and "`Trainer.fit` stopped: `max_steps=N` reached."
  (the planned end of every run, printed onto the progress bar's last line).
"""

from __future__ import annotations

import logging
import warnings

KNOWN_WARNINGS = [  # (message regex, category, emitting module regex)
    (r"`is_gradient_checkpointing` is deprecated", FutureWarning, r"transformers\.modeling_utils\Z"),
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning,
     r"lightning\.pytorch\.utilities\._pytree\Z"),
    (r"The number of training batches \(\d+\) is smaller than the logging interval", UserWarning,
     r"(lightning\.pytorch|pytorch_lightning)\.loops\.fit_loop\Z"),
    (r"The `srun` command is available on your system but is not used", UserWarning,
     r"(lightning\.fabric|lightning_fabric)\.plugins\.environments\.slurm\Z"),
]
KNOWN_INFO = ("GPU available: ", "TPU available: ", "💡 Tip: For seamless cloud logging",
              "`Trainer.fit` stopped: `max_steps=")
"""Beginnings of Lightning's rank-zero info messages that are dropped."""
RANK_ZERO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                     "lightning_utilities.core.rank_zero")
"""The loggers Lightning's ``rank_zero_info`` writes through (which one depends on import order)."""


class DropKnownInfo(logging.Filter):
    """Drops the log records whose message begins with one of KNOWN_INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(KNOWN_INFO)


_DROP = DropKnownInfo()


def quiet_known() -> None:
    """Install the filters for KNOWN_WARNINGS and KNOWN_INFO in this process (again: no-op)."""
    for message, category, module in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    for name in RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if _DROP not in logger.filters:
            logger.addFilter(_DROP)
