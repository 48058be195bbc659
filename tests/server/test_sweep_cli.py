"""`segtrack sweep create SPEC.yaml --server URL` against a live server whose sweep controller
runs in its lifespan: a pasted W&B YAML starts a sweep whose first runs get queued; refusals name
the key at fault."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from segtrack.cli import main
from tests.server.helpers import LiveServer, RecordingTaskQueue

Start = Callable[..., LiveServer]

SPEC = """
program: train.py
method: grid
metric: {name: val/iou, goal: maximize}
parameters:
  learning_rate: {values: [0.1, 0.01, 0.001]}
  batch_size: {values: [2, 4]}
parallel: 2
config: {dataset: shapes, epochs: 1, batch_size: 2, base_channels: 8}
"""


def test_create_prints_the_sweep_and_the_controller_queues_its_runs(
    *,
    start_live: Start,
    shapes_dataset: Path,
    tmp_path: Path,
    task_queue: RecordingTaskQueue,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = start_live(sweep_interval_s=0.05)
    monkeypatch.setenv("SEGTRACK_TOKEN", server.token or "")
    spec = tmp_path / "sweep.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    assert main(["sweep", "create", str(spec), "--server", server.url]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("sweep 1 'grid sweep': running, grid over val/iou (maximize), 0 of 6")
    assert "program is a W&B setting segtrack does not use" in err
    with server.http() as http:
        deadline = time.monotonic() + 20
        while len(http.get("/api/v1/sweeps/1").json()["runs"]) < 2:
            assert time.monotonic() < deadline, "the controller queued no runs"
            time.sleep(0.05)
        time.sleep(0.3)  # a few more passes: parallel holds
        sweep = http.get("/api/v1/sweeps/1").json()
    assert [run["trial_number"] for run in sweep["runs"]] == [0, 1]
    assert sweep["counts"]["queued"] == 2 and len(task_queue.sent) == 2
    assert main(["sweep", "pause", "1", "--server", server.url]) == 0
    assert "paused" in capsys.readouterr().out


def test_refusals_name_the_key(
    start_live: Start,
    shapes_dataset: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = start_live()
    monkeypatch.setenv("SEGTRACK_TOKEN", server.token or "")
    spec = tmp_path / "sweep.yaml"
    spec.write_text(SPEC.replace("learning_rate", "lr"), encoding="utf-8")
    assert main(["sweep", "create", str(spec), "--server", server.url]) == 2
    err = capsys.readouterr().err
    assert "the server refused (422): parameters.lr: not a TrainConfig key" in err
    spec.write_text("- not a mapping", encoding="utf-8")
    assert main(["sweep", "create", str(spec), "--server", server.url]) == 2
    assert "must hold a mapping" in capsys.readouterr().err
    monkeypatch.delenv("SEGTRACK_SERVER", raising=False)
    assert main(["sweep", "show", "1"]) == 2
    assert "--server URL" in capsys.readouterr().err
