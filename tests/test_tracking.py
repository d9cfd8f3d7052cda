"""W&B tracking: a real offline run holds the config, the budget plan, every step's losses and
ledger, and the final metrics table; names come from the grid point; credentials decide the mode."""

import csv
import json
import struct
import time

import pytest

from conftest import compose, compose_run
from scaling import tracking
from scaling.config import ConfigError, parse
from scaling.experiment import run


def wandb_records(path):
    """Records of a .wandb file (W&B's LevelDB-style log: 7-byte header, 32 KiB blocks of
    crc32c(4) length(2) type(1) chunks; type 1 full, 2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2 as pb
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, buf = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:  # zero padding to the block's end
            pos += left
            continue
        if pos + 7 + length > len(data):  # a record still being written
            break
        buf += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(buf)
            buf = b""
            yield record


def read_offline_run(run_dir, which=None, wait_s=30.0):
    """(run record, config, history rows, summary, exit code) of the one offline run in run_dir
    (or of the ``which``-th, in time order, when there are several). wandb's service process may
    still be writing the file when ``finish()`` returns, so read until its exit record is there."""
    deadline = time.monotonic() + wait_s
    while True:
        found = sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
        if which is None:
            (path,) = found
        else:
            path = found[which]
        parsed = _parse(path)
        if parsed[4] is not None or time.monotonic() > deadline:
            return parsed
        time.sleep(0.2)


def _parse(path):
    config, history, summary, exit_code, head = {}, [], {}, None, None

    def key(item):
        return "/".join(item.nested_key) if item.nested_key else item.key
    for r in wandb_records(path):
        kind = r.WhichOneof("record_type")
        if kind == "run":
            head = r.run
            config.update({key(u): json.loads(u.value_json) for u in r.run.config.update})
        elif kind == "config":
            config.update({key(u): json.loads(u.value_json) for u in r.config.update})
        elif kind == "history":
            history.append({key(i): json.loads(i.value_json) for i in r.history.item})
        elif kind == "summary":
            summary.update({key(u): json.loads(u.value_json) for u in r.summary.update})
        elif kind == "exit":
            exit_code = r.exit.exit_code
    return head, config, history, summary, exit_code


def test_offline_wandb_run_holds_config_plan_steps_and_final_table(tiny_overrides, tmp_path, monkeypatch):
    for var in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_SWEEP_ID", "WANDB_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))  # no credentials: offline by itself
    overrides = [o for o in tiny_overrides if not o.startswith("logger=")]
    cfg = parse(compose(overrides + ["logger=wandb", "eval.untrained=false",
                                     f"run_dir={tmp_path / 'run'}"]))
    result = run(cfg)
    head, config, history, summary, exit_code = read_offline_run(tmp_path / "run")
    assert exit_code == 0
    assert head.display_name == "dense-cl-tiny-steps3" == tracking.run_name(cfg)
    assert head.run_id == tracking.run_id(tmp_path / "run") and head.project == "scaling"
    # the resolved config (whole, under "run"), the point's axes at the top, the plan
    assert config["run"]["paradigm"]["name"] == "dense" and config["run"]["budget"]["steps"] == 3
    assert config["paradigm"] == "dense" and config["size"] == "tiny"
    assert config["budget_plan"] == result["budget"]["plan"]
    # every step's loss and ledger
    steps = [h for h in history if "ledger/flops" in h]
    assert [h["ledger/flops"] for h in steps] == pytest.approx(
        [k * result["budget"]["plan"]["flops_per_step"] for k in (1, 2, 3)])
    assert all(any(k.startswith("train/") for k in h) for h in steps)
    # and the same steps in the run folder's own metrics.csv (logger.csv, on by default)
    with open(tmp_path / "run" / "logs" / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/loss")]
    assert [int(r["step"]) for r in rows] == [0, 1, 2]
    assert [float(r["ledger/flops"]) for r in rows] == [h["ledger/flops"] for h in steps]
    assert [float(r["train/loss"]) for r in rows] == pytest.approx([h["train/loss"] for h in steps])
    # the final metrics: summary values and the table
    from scaling.evaluation.metrics import numbers
    final = numbers(result["metrics"]["small/test"])  # the per-query values stay in result.json
    assert "small/test/per_query" not in summary and "contrastive_entropy" in final
    for measure, value in final.items():
        assert summary[f"small/test/{measure}"] == pytest.approx(value)
    assert summary["budget/steps"] == 3
    assert summary["results/_type"] == "table-file" and summary["results/nrows"] == len(final)
    (table,) = (tmp_path / "run").glob("wandb/offline-run-*/files/media/table/results_*.table.json")
    rows = json.loads(table.read_text())
    assert rows["columns"] == ["system", "dataset/split", "measure", "value"]
    ndcg = [r for r in rows["data"] if r[2] == "nDCG@10"]
    assert ndcg == [["trained (3 steps)", "small/test", "nDCG@10",
                     pytest.approx(result["metrics"]["small/test"]["nDCG@10"])]]


def test_a_failed_run_still_finishes_its_wandb_run(tiny_overrides, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    overrides = [o for o in tiny_overrides if not o.startswith("logger=")]
    cfg = parse(compose(overrides + ["logger=wandb", f"run_dir={tmp_path / 'run'}"]))
    with tracking.open_tracker(cfg, tmp_path / "run") as tracker:
        assert tracker.run is not None
    with pytest.raises(RuntimeError, match="boom"):
        with tracking.open_tracker(cfg, tmp_path / "run2"):
            raise RuntimeError("boom")
    assert read_offline_run(tmp_path / "run")[4] == 0
    assert read_offline_run(tmp_path / "run2")[4] == 1


def test_mode_names_and_ids(tmp_path):
    netrc = tmp_path / "netrc"
    assert tracking.wandb_mode("auto", {}, str(netrc)) == "offline"
    assert tracking.wandb_mode("auto", {"WANDB_API_KEY": "k"}, str(netrc)) == "online"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password secret\n")
    netrc.chmod(0o600)
    assert tracking.wandb_mode("auto", {}, str(netrc)) == "online"
    assert tracking.wandb_mode("auto", {"WANDB_BASE_URL": "https://wandb.example.org"}, str(netrc)) == "offline"
    assert tracking.wandb_mode("online", {"WANDB_MODE": "offline"}, str(netrc)) == "offline"
    assert tracking.wandb_mode("disabled", {}, str(netrc)) == "disabled"
    # a grid point's name is its folder's; the id depends on the folder only
    cfg = compose_run(["experiment=cpu_budget", "grid.index=5"])
    assert tracking.run_name(cfg) == "dense-kd-smollm2-l1-flops8.2e+12"
    assert tracking.run_id(tmp_path / "a") == tracking.run_id(tmp_path / "x" / ".." / "a") != tracking.run_id(tmp_path)
    with pytest.raises(ConfigError, match="logger.csv: false leaves logger=csv nothing to write"):
        parse(compose(["logger=csv", "logger.csv=false"]))


def test_a_skipped_finished_point_logs_its_result_to_wandb(tiny_overrides, tmp_path, monkeypatch):
    """A sweep over points another launcher already ran: each agent run logs the finished result."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    overrides = [o for o in tiny_overrides if not o.startswith("logger=")]
    args = overrides + ["logger=wandb", "logger.csv=false", "budget.steps=1", "eval.untrained=false", "grid.name=g",
                        f"grid.root={tmp_path / 'runs'}", "grid.axes={paradigm:[dense]}"]
    cfg = compose_run(args)
    first = run(cfg)
    again = run(compose_run(args))
    assert again == first
    head, config, _, summary, exit_code = read_offline_run(tmp_path / "runs" / "g" / "dense", which=-1)
    assert head.display_name == "dense" and head.run_group == "g" and exit_code == 0
    assert config["budget_plan"] == first["budget"]["plan"]
    assert summary["small/test/nDCG@10"] == pytest.approx(first["metrics"]["small/test"]["nDCG@10"])
    assert not (tmp_path / "runs" / "g" / "dense" / "logs").exists()  # logger.csv=false: W&B alone
