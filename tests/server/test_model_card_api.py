"""The model card in a run's run_info: stored from a worker's RunInfo and from a tracked run's
info report, returned by the run API, refused with a 422 naming the field when out of bounds,
and absent (still valid) for runs reported before cards were kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from server.run.lifecycle import claim_run, record_start
from server.run.schemas import RunInfoOut
from tests.server.helpers import ApiClient, valid_config
from trainer.reporting import RunInfo
from worker.report_writer import ReportWriter
from worker.reporter import DbReporter

CARD: dict[str, Any] = {
    "parameters": 1_940_000,
    "trainable_parameters": 1_900_000,
    "flops": 3_210_000_000,
    "image_size": [128, 96],
    "in_channels": 3,
    "batch_size": 16,
    "latency_ms_batch_1": 2.5,
    "latency_ms_batch": 18.0,
    "images_per_s": 888.9,
    "device": "cuda:0 (NVIDIA H200)",
    "precision": "bf16",
}

INFO: dict[str, Any] = {
    "num_train": 40,
    "num_val": 8,
    "in_channels": 3,
    "start_epoch": 1,
    "steps_per_epoch": 3,
    "parameters": 1_940_000,
}


def _running(client: ApiClient, session: Session) -> int:
    run_id: int = client.post("/api/v1/runs", json={"config": valid_config()}).json()["id"]
    assert claim_run(session, run_id, worker="w1", device="cpu") is not None
    session.commit()
    return run_id


@pytest.mark.usefixtures("shapes_dataset")
def test_the_worker_stores_the_card_and_the_api_returns_it(
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
    reporter.on_start(
        RunInfo(
            class_names=("background", "cell"),
            num_train=40,
            num_val=8,
            in_channels=3,
            epochs=2,
            start_epoch=1,
            device="cuda:0 (bf16)",
            steps_per_epoch=3,
            parameters=1_940_000,
            mask_encoding={},
            model_card=CARD,
        )
    )
    writer.flush()
    writer.close()

    info = client.get(f"/api/v1/runs/{run_id}").json()["run_info"]
    assert info["model_card"] == CARD


@pytest.mark.usefixtures("shapes_dataset")
def test_a_run_info_without_a_card_still_reads(client: ApiClient, db_session: Session) -> None:
    run_id = _running(client, db_session)
    record_start(
        db_session,
        run_id,
        class_names=["background", "cell"],
        epochs_planned=2,
        device="cpu (float32)",
        run_info=RunInfoOut.model_validate(INFO),
    )
    db_session.commit()
    info = client.get(f"/api/v1/runs/{run_id}").json()["run_info"]
    assert info["num_train"] == 40 and "model_card" not in info


def _tracked(client: ApiClient) -> int:
    response = client.post("/api/v1/runs", json={"external": True, "heartbeat_timeout_s": 60})
    assert response.status_code == 201, response.text
    run_id: int = response.json()["id"]
    return run_id


def test_a_tracked_run_reports_its_card(client: ApiClient) -> None:
    run_id = _tracked(client)
    body = {"class_names": ["background", "cell"], "run_info": {**INFO, "model_card": CARD}}
    response = client.request("PUT", f"/api/v1/runs/{run_id}/info", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["run_info"]["model_card"] == CARD
    assert client.get(f"/api/v1/runs/{run_id}").json()["run_info"]["model_card"] == CARD


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("flops", -1),
        ("image_size", [0, 64]),
        ("latency_ms_batch", "NaN"),
        ("batch_size", 0),
        ("device", "x" * 201),
    ],
)
def test_a_card_out_of_bounds_is_refused_naming_the_field(
    client: ApiClient, field: str, value: Any
) -> None:
    run_id = _tracked(client)
    card = {**CARD, field: value}
    if value == "NaN":
        card[field] = float("nan")
    body = {"run_info": {**INFO, "model_card": card}}
    response = client.request(
        "PUT",
        f"/api/v1/runs/{run_id}/info",
        content=json.dumps(body),  # Python's encoder writes NaN
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert field in response.text
