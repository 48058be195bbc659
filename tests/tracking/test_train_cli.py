"""`segtrack train CONFIG --server URL` against a real server that is unreachable when training
starts and comes up mid-run: the run page's data (metrics, previews, the best checkpoint, the
log, where it ran) all arrive, each point and preview once, and the run ends succeeded. A crash
ends the tracked run failed with its reason and the traceback in its log; Ctrl-C cancels it.
Under torchrun, rank 0 alone reports: one run, each epoch once."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from segtrack import cli, track
from segtrack.tracking.spool import Spool
from tests.server.helpers import LiveServer
from tests.tracking.helpers import rest, series, wait_for
from tests.tracking.proxy import Proxy
from trainer.data.demo import make_demo_dataset
from trainer.loop import TrainingError

EPOCHS = 15
"""Long enough that the sender, backing off while the server was away, reaches it mid-run."""


def _first_metrics_spooled(out: Path) -> bool:
    return any('"type":"metrics"' in path.read_text() for path in out.glob("spool/*/records.jsonl"))


def test_train_reports_everything_to_a_server_that_comes_up_mid_run(
    server: LiveServer, tmp_path: Path
) -> None:
    demo = make_demo_dataset(tmp_path / "demo", count=16, size=32, seed=0)
    config = tmp_path / "tiny.json"
    config.write_text(
        json.dumps(
            {
                "dataset": str(demo.root),
                "image_size": [32, 32],
                "base_channels": 8,
                "depth": 2,
                "epochs": EPOCHS,
                "batch_size": 8,
                "num_workers": 0,
                "augment": "none",
                "preview_count": 2,
                "preview_worst": 0,
                "log_every_steps": 1,
            }
        )
    )
    out = tmp_path / "out"
    proxy = Proxy(int(urlsplit(server.url).port or 0))
    proxy.down()
    environment = {
        **os.environ,
        "SEGTRACK_TOKEN": server.token or "",
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "segtrack", "train", str(config), "--out", str(out)]
    command += ["--server", proxy.url, "--name", "cli-run", "--tag", "cli", "--tag", "tiny"]
    try:
        with (tmp_path / "train.log").open("wb") as log:
            training = subprocess.Popen(
                command, env=environment, stdout=log, stderr=subprocess.STDOUT
            )
            wait_for(lambda: _first_metrics_spooled(out), "epoch 1's metrics in the spool", 120)
            proxy.up()
            code = training.wait(timeout=180)
    finally:
        proxy.close()
    output = (tmp_path / "train.log").read_text()
    assert code == 0, output

    (folder,) = (out / "spool").iterdir()
    run_id = Spool.open(folder).meta.run_id
    assert run_id is not None and Spool.open(folder).unsent() == 0
    run = rest(server.url, server.token, f"/api/v1/runs/{run_id}")
    assert run["status"] == "succeeded" and run["name"] == "cli-run"
    assert sorted(run["tags"]) == ["cli", "tiny"]
    assert run["config"]["epochs"] == EPOCHS and run["dataset_name"] == "demo"
    environment_out = run["environment"]
    assert environment_out["origin"] == "cli" and environment_out["torch"]
    assert "train" in environment_out["command"] and environment_out["host"]

    metrics = series(server.url, server.token, run_id)
    assert metrics["val/iou"]["step"] == list(range(1, EPOCHS + 1))
    csv_rows = (out / "metrics.csv").read_text().splitlines()
    assert len(csv_rows) == EPOCHS + 1
    steps = metrics["train/loss_step"]
    assert steps["step"] == list(range(1, steps["count"] + 1))  # every step once, in order
    for epoch in range(1, EPOCHS + 1):
        shown = rest(server.url, server.token, f"/api/v1/runs/{run_id}/previews?epoch={epoch}")
        assert len(shown["samples"]) == 2
    # Every epoch's confusion matrix and per-image scores, the images' counts summing to it.
    confusion = rest(server.url, server.token, f"/api/v1/runs/{run_id}/confusion")
    assert confusion["epochs"] == list(range(1, EPOCHS + 1))
    images = rest(server.url, server.token, f"/api/v1/runs/{run_id}/images?limit=1000")
    labelled = sum(item["pixels"] for item in images["items"])
    assert images["total"] == run["run_info"]["num_val"]
    assert labelled == sum(map(sum, confusion["matrix"]))
    assert not list((folder / "blobs").glob("validation-*"))

    best = rest(server.url, server.token, f"/api/v1/runs/{run_id}/checkpoints/best")
    on_disk = (out / "best.pt").read_bytes()
    assert hashlib.sha256(best.content).digest() == hashlib.sha256(on_disk).digest()
    logs = rest(server.url, server.token, f"/api/v1/runs/{run_id}/logs")["lines"]
    assert any(" epoch 1 " in line for line in logs)
    assert not any("httpx" in line or "segtrack.tracking" in line for line in logs)
    assert not list((folder / "blobs").glob("*.pt"))  # uploaded checkpoints leave the spool


def _records(spool_dir: Path, key: str) -> list[dict[str, Any]]:
    lines = (spool_dir / key / "records.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_a_crash_fails_the_run_with_its_reason_and_the_traceback_as_the_last_log_lines(
    tmp_path: Path,
) -> None:
    run = track(spool_dir=tmp_path)
    run.log_lines(["epoch 1  train/loss 0.5"])
    try:
        raise RuntimeError("out of\ncheese")
    except RuntimeError as error:
        cli._finish_failed(run, error)
    records = _records(tmp_path, run.key)
    assert records[-1]["type"] == "finish"
    assert (records[-1]["status"], records[-1]["reason"]) == (
        "failed",
        "RuntimeError: out of cheese",
    )
    lines = [line for record in records if record["type"] == "logs" for line in record["lines"]]
    assert lines[:2] == ["epoch 1  train/loss 0.5", "Traceback (most recent call last):"]
    assert lines[-2:] == ["RuntimeError: out of", "cheese"]


def test_a_training_error_keeps_its_reason_and_ctrl_c_cancels(tmp_path: Path) -> None:
    failed, interrupted = track(spool_dir=tmp_path), track(spool_dir=tmp_path)
    cli._finish_failed(failed, TrainingError("the training loss became nan in epoch 3"))
    cli._finish_failed(interrupted, KeyboardInterrupt())
    assert _records(tmp_path, failed.key)[-1]["reason"] == "the training loss became nan in epoch 3"
    assert _records(tmp_path, interrupted.key)[-1]["status"] == "cancelled"


def test_under_torchrun_rank_0_alone_reports_the_run(server: LiveServer, tmp_path: Path) -> None:
    demo = make_demo_dataset(tmp_path / "demo", count=16, size=32, seed=0)
    config = tmp_path / "tiny.json"
    epochs = 2
    config.write_text(
        json.dumps(
            {
                "dataset": str(demo.root),
                "image_size": [32, 32],
                "base_channels": 8,
                "depth": 2,
                "epochs": epochs,
                "batch_size": 4,
                "num_workers": 0,
                "augment": "none",
                "preview_count": 2,
                "preview_worst": 0,
            }
        )
    )
    out = tmp_path / "out"
    environment = {
        **os.environ,
        "SEGTRACK_TOKEN": server.token or "",
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "OMP_NUM_THREADS": "1",
    }
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command = [*launcher, "--nproc-per-node", "2", "-m", "segtrack", "train", str(config)]
    command += ["--out", str(out), "--server", server.url, "--name", "torchrun-run"]
    finished = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=300, check=False
    )
    assert finished.returncode == 0, finished.stderr[-3000:]

    (folder,) = (out / "spool").iterdir()  # one spool: rank 1 tracks nothing
    run_id = Spool.open(folder).meta.run_id
    assert run_id is not None
    listed = rest(server.url, server.token, "/api/v1/runs?q=torchrun-run")["items"]
    assert [item["id"] for item in listed] == [run_id]
    run = rest(server.url, server.token, f"/api/v1/runs/{run_id}")
    assert run["status"] == "succeeded"
    assert run["run_info"]["world_size"] == 2
    assert "-m segtrack train" in run["environment"]["command"]  # the rank's own command
    metrics = series(server.url, server.token, run_id)
    assert metrics["val/iou"]["step"] == list(range(1, epochs + 1))  # each epoch once
    shown = rest(server.url, server.token, f"/api/v1/runs/{run_id}/previews?epoch={epochs}")
    assert len(shown["samples"]) == 2
    best = rest(server.url, server.token, f"/api/v1/runs/{run_id}/checkpoints/best")
    assert best.content == (out / "best.pt").read_bytes()
