"""A run's log holds its own lines, not libraries' known-harmless notices, and the results table
starts on its own line even in a ``2>&1`` log where the progress bars' carriage returns land too;
its metrics.csv has a row for every step."""

import csv
import logging
import os
import stat
import subprocess
import sys
import warnings

import pytest

from conftest import ROOT, tiny_args

NOISE = [
    "is_gradient_checkpointing",                       # transformers, via peft
    "litlogger",                                       # Lightning's advertisement
    "LeafSpec",                                        # torch, via Lightning's pytree helper
    "smaller than the logging interval",               # Lightning's fit loop
    "`weights_only` was not set",                      # Lightning's checkpoint connector
    "GPU available:", "TPU available:",                # Lightning's device report
    "The `srun` command is available",                 # Lightning's Slurm hint
    "`Trainer.fit` stopped: `max_steps=",              # Lightning, at every run's planned end
    "Warning:",                                        # any other warning shown as Python shows it
]


def fake_srun(folder):
    """An ``srun`` on PATH, as on a Slurm login or batch node (Lightning looks it up)."""
    folder.mkdir(parents=True, exist_ok=True)
    srun = folder / "srun"
    srun.write_text("#!/bin/sh\nexit 0\n")
    srun.chmod(srun.stat().st_mode | stat.S_IXUSR)
    return folder


@pytest.fixture(scope="module")
def tiny_run_log(small_beir, tmp_path_factory):
    """A 5-step tiny run with stdout and stderr into one file, as ``> log 2>&1`` does: (raw log
    bytes, run folder)."""
    tmp = tmp_path_factory.mktemp("quiet")
    args = [a for a in tiny_args(small_beir, tmp / "cache") if not a.startswith(("logger=", "budget.steps="))]
    env = {**os.environ, "PATH": f"{fake_srun(tmp / 'bin')}{os.pathsep}{os.environ['PATH']}"}
    for var in [v for v in env if v.startswith("SLURM_")]:
        env.pop(var)
    log = tmp / "log"
    with log.open("wb") as out:
        proc = subprocess.run([sys.executable, str(ROOT / "recipes" / "run.py"), *args, "logger=csv",
                               "budget.steps=5", f"run_dir={tmp / 'run'}"],
                              stdout=out, stderr=subprocess.STDOUT, cwd=tmp, env=env)
    data = log.read_bytes()
    assert proc.returncode == 0, data.decode(errors="replace")[-3000:]
    return data, tmp / "run"


def test_a_run_log_holds_no_known_notice(tiny_run_log):
    text = tiny_run_log[0].decode()
    shown = [n for n in NOISE if n in text]
    assert not shown, f"{shown} in the log:\n{text[-3000:]}"
    assert "[eval] trained model" in text  # the run's own lines are there


def test_the_results_table_starts_on_its_own_line(tiny_run_log):
    data = tiny_run_log[0]
    at = data.index(b"dataset/split  measure")
    assert at > 0 and data[at - 1:at] == b"\n", data[max(0, at - 200):at + 40]
    assert data.count(b"encode small corpus") > 0  # the bars were drawn into this log


def test_metrics_csv_has_a_row_for_every_step_by_default(tiny_run_log):
    with open(tiny_run_log[1] / "logs" / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/loss")]
    assert [int(r["step"]) for r in rows] == [0, 1, 2, 3, 4]
    assert all(float(r["ledger/flops"]) > 0 for r in rows)


def fit_two_parameters(root, log_every: int) -> None:
    """A real Lightning fit of a two-parameter module, 4 steps of one-batch epochs, logging to
    root/lightning_logs: enough for each of Lightning's notices to arise."""
    import lightning as L
    import torch
    from lightning.pytorch.loggers import CSVLogger

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(1, 1)

        def training_step(self, batch, _):
            loss = self.w(batch[0]).pow(2).mean()
            self.log("loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self):
            return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(2, 1)), batch_size=2)

    trainer = L.Trainer(accelerator="cpu", max_steps=4, logger=CSVLogger(str(root)), log_every_n_steps=log_every,
                        enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=False,
                        default_root_dir=str(root))
    trainer.fit(Module())


def _notices(root, monkeypatch, quiet: bool) -> str:
    """Lightning's warnings and info lines while fitting two parameters with a logging interval
    longer than an epoch and an srun on PATH; with ``quiet`` after scaling.notices.quiet_known()."""
    from scaling import notices as known
    monkeypatch.setenv("PATH", f"{fake_srun(root / 'bin')}{os.pathsep}{os.environ['PATH']}")
    for var in [v for v in os.environ if v.startswith("SLURM_")]:
        monkeypatch.delenv(var)

    def unquiet():  # an earlier run() in this process left the info filter on Lightning's loggers
        for name in known.RANK_ZERO_LOGGERS:
            logging.getLogger(name).removeFilter(known._DROP)
    lines = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())
    top = logging.getLogger("lightning.pytorch")
    top.addHandler(handler)
    unquiet()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if quiet:
                known.quiet_known()
            fit_two_parameters(root, log_every=5)
    finally:
        top.removeHandler(handler)
        unquiet()
    return "\n".join(lines + [str(w.message) for w in caught])


def test_lightning_notices_are_dropped_by_message_and_nothing_else(tmp_path, monkeypatch):
    loud = _notices(tmp_path / "loud", monkeypatch, quiet=False)
    # (transformers' arises in peft, and our own checkpoint saves pass weights_only: the run's log above)
    lightning_noise = [n for n in NOISE if n not in ("is_gradient_checkpointing", "`weights_only` was not set",
                                                     "Warning:")]
    assert [n for n in lightning_noise if n not in loud] == []  # each notice really arises here
    quiet = _notices(tmp_path / "quiet", monkeypatch, quiet=True)
    assert [n for n in lightning_noise if n in quiet] == []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from scaling import notices as known
        known.quiet_known()
        warnings.warn("a warning nobody filtered", UserWarning)  # the filters are precise, not global
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated", FutureWarning)  # not Lightning's
    assert [str(w.message) for w in caught] == ["a warning nobody filtered",
                                                "`isinstance(treespec, LeafSpec)` is deprecated"]
