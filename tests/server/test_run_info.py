"""What the trainer resolved before epoch 1 (its RunInfo): stored on the run by `record_start`
(the worker's DbReporter) and returned by the run detail API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from server.run.lifecycle import claim_run, record_start
from server.run.schemas import MaskEncodingOut, RunInfoOut
from tests.server.helpers import ApiClient, valid_config
from trainer.reporting import RunInfo
from worker.report_writer import ReportWriter
from worker.reporter import DbReporter

pytestmark = pytest.mark.usefixtures("shapes_dataset")


def _running(client: ApiClient, session: Session) -> int:
    run_id: int = client.post("/api/v1/runs", json={"config": valid_config()}).json()["id"]
    assert claim_run(session, run_id, worker="w1", device="cpu") is not None
    session.commit()
    return run_id


def test_record_start_stores_the_run_info_and_the_api_returns_it(
    client: ApiClient, db_session: Session
) -> None:
    run_id = _running(client, db_session)
    assert client.get(f"/api/v1/runs/{run_id}").json()["run_info"] is None, "not reported yet"

    info = RunInfoOut(
        num_train=38,
        num_val=10,
        in_channels=3,
        start_epoch=1,
        steps_per_epoch=5,
        parameters=7_812_345,
        mask_encoding=MaskEncodingOut(mode="grey", values=[0, 255], ignore_values=[128]),
        warnings=["3 masks hold only background"],
    )
    record_start(
        db_session,
        run_id,
        class_names=["background", "foreground"],
        epochs_planned=2,
        device="cpu (float32)",
        run_info=info,
    )
    db_session.commit()

    run = client.get(f"/api/v1/runs/{run_id}").json()
    assert run["class_names"] == ["background", "foreground"]
    assert run["device"] == "cpu (float32)"
    assert run["run_info"] == {
        "num_train": 38,
        "num_val": 10,
        "in_channels": 3,
        "start_epoch": 1,
        "steps_per_epoch": 5,
        "parameters": 7_812_345,
        "mask_encoding": {"mode": "grey", "values": [0, 255], "ignore_values": [128]},
        "warnings": ["3 masks hold only background"],
    }
    listed = client.get("/api/v1/runs").json()["items"][0]
    assert "run_info" not in listed, "lists stay light"


def test_the_worker_reporter_stores_what_the_trainer_reported(
    client: ApiClient,
    db_session: Session,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    run_id = _running(client, db_session)
    writer = ReportWriter(run_id=run_id, sessions=session_factory, redis_url=None, limit_s=10)
    reporter = DbReporter(
        run_id=run_id, writer=writer, artifacts_dir=tmp_path, stop_requested=lambda: False
    )
    colours: dict[str, Any] = {
        "mode": "rgb",
        "values": [[0, 0, 0], [128, 0, 0], [0, 128, 0]],
        "ignore_values": [[255, 255, 255]],
        "palette": None,
        "dtype": "uint8",
    }
    reporter.on_start(
        RunInfo(
            class_names=("background", "road", "tree"),
            num_train=80,
            num_val=20,
            in_channels=1,
            epochs=30,
            start_epoch=4,
            device="cuda:0 (bf16)",
            steps_per_epoch=10,
            parameters=31_042,
            mask_encoding=colours,
            warnings=("images are grey: in_channels 1",),
            environment={"host": "gpu7", "python": "3.11.7", "gpus": ["NVIDIA H100"]},
        )
    )
    writer.flush()
    writer.close()

    run = client.get(f"/api/v1/runs/{run_id}").json()
    assert run["class_names"] == ["background", "road", "tree"]
    assert (run["epochs_planned"], run["device"]) == (30, "cuda:0 (bf16)")
    assert run["environment"]["origin"] == "worker" and run["origin"] == "worker"
    assert run["environment"]["host"] == "gpu7" and run["environment"]["gpus"] == ["NVIDIA H100"]
    info = run["run_info"]
    assert (info["num_train"], info["num_val"], info["in_channels"]) == (80, 20, 1)
    assert (info["start_epoch"], info["steps_per_epoch"], info["parameters"]) == (4, 10, 31_042)
    assert info["mask_encoding"] == {
        "mode": "rgb",
        "values": [[0, 0, 0], [128, 0, 0], [0, 128, 0]],
        "ignore_values": [[255, 255, 255]],
    }
    assert info["warnings"] == ["images are grey: in_channels 1"]
