"""Hostile and awkward input to the tracking endpoints: every bad field is a 4xx naming what is
allowed; only the run's owner reports into it; a create that loses the race for its client key
answers the winner's run; clone of an external run with a config; the same endpoints on SQLite."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from PIL import Image
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from server.app import create_app
from server.db import session_scope, upgrade_database
from server.deps import get_task_queue
from server.models import Run, utcnow
from server.reaper import reap_once
from server.run import service
from server.settings import Settings
from server.tracking.preview_form import PREVIEW_FORM_BYTES
from tests.server.helpers import ApiClient, RecordingTaskQueue, issue_token, write_dataset


def _create(client: ApiClient, **extra: Any) -> dict[str, Any]:
    body = {"external": True, "heartbeat_timeout_s": 60, **extra}
    response = client.post("/api/v1/runs", json=body)
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    return run


def _png(array: np.ndarray, **save: Any) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=save.pop("format", "PNG"), **save)
    return buffer.getvalue()


def _files(height: int = 8, width: int = 8) -> dict[str, tuple[str, bytes, str]]:
    mask = _png(np.zeros((height, width), np.uint8))
    return {
        "image": ("image.png", _png(np.zeros((height, width, 3), np.uint8)), "image/png"),
        "truth": ("truth.png", mask, "image/png"),
        "prediction": ("prediction.png", mask, "image/png"),
    }


FORM = {"epoch": "1", "sample_index": "0", "name": "sample"}


def _refused(response: Any, field: str, status: int = 422) -> str:
    """The error message of a refusal that names `field`."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert field in error["message"], error
    message: str = error["message"]
    return message


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"environment": {"os": "linux"}}, "environment.os"),
        ({"environment": {"host": "node\x00"}}, "environment.host"),
        ({"environment": {"command": "x" * 4001}}, "environment.command"),
        ({"environment": {"gpus": ["H200"] * 65}}, "environment.gpus"),
        ({"environment": {"pid": 2**63}}, "environment.pid"),
        ({"environment": {"origin": "laptop"}}, "environment.origin"),
        ({"heartbeat_timeout_s": 5}, "heartbeat_timeout_s"),
        ({"heartbeat_timeout_s": 10**12}, "heartbeat_timeout_s"),
        ({"resumed_from": 2**40}, "resumed_from"),
        ({"client_key": "../../etc"}, "client_key"),
        ({"client_key": "k" * 65}, "client_key"),
        ({"started_at": "yesterday"}, "started_at"),
        ({"config": {"dataset": "/x", "epochs": 10**9}}, "epochs"),
        ({"config": {"dataset": "/x", "lr": 0.1}}, "lr"),
    ],
)
def test_bad_fields_of_a_tracked_run_are_refused_by_name(
    client: ApiClient, extra: dict[str, Any], field: str
) -> None:
    _refused(client.post("/api/v1/runs", json={"external": True, **extra}), field)


def test_tracking_fields_belong_to_external_runs(client: ApiClient, shapes_dataset: Path) -> None:
    body = {"config": {"dataset": "shapes"}, "client_key": "queued-run-key"}
    message = _refused(client.post("/api/v1/runs", json=body), "client_key")
    assert "external: true" in message


def test_a_start_time_in_the_future_is_clamped_to_now(client: ApiClient) -> None:
    past = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    kept = _create(client, started_at=past.isoformat())
    assert datetime.fromisoformat(kept["started_at"]) == past
    future = utcnow() + timedelta(days=30)
    clamped = _create(client, started_at=future.isoformat())
    assert datetime.fromisoformat(clamped["started_at"]) <= utcnow()


def test_report_bodies_refuse_what_they_cannot_store(client: ApiClient) -> None:
    run = _create(client)
    base = f"/api/v1/runs/{run['id']}"
    logs = f"{base}/logs"
    _refused(client.post(logs, json={"first_line": 0, "lines": ["x"] * 1001}), "lines")
    _refused(client.post(logs, json={"first_line": 0, "lines": ["x" * 4001]}), "lines.0")
    _refused(client.post(logs, json={"first_line": -1, "lines": []}), "first_line")
    _refused(client.post(logs, json={"first_line": 2**40, "lines": []}), "first_line")
    info = f"{base}/info"
    _refused(client.request("PUT", info, json={"epochs_planned": 2**40}), "epochs_planned")
    _refused(client.request("PUT", info, json={"class_names": ["a\x00"]}), "class_names.0")
    _refused(client.request("PUT", info, json={"colour": "red"}), "colour")
    _refused(client.request("PUT", info, json={"device": "d" * 65}), "device")
    assert client.post("/api/v1/runs/999999/heartbeat", json={}).status_code == 404
    assert client.post(f"/api/v1/runs/{2**40}/heartbeat", json={}).status_code in (404, 422)
    assert client.get(f"{logs}?tail=10").json()["lines"] == []


def test_preview_forms_refuse_bad_fields_and_files_by_name(client: ApiClient) -> None:
    url = f"/api/v1/runs/{_create(client)['id']}/previews"
    _refused(client.post(url, data={**FORM, "epoch": "-1"}, files=_files()), "epoch")
    _refused(client.post(url, data={**FORM, "epoch": str(2**63)}, files=_files()), "epoch")
    _refused(client.post(url, data={**FORM, "sample_index": str(2**31)}, files=_files()), "sample")
    _refused(client.post(url, data={**FORM, "sample_index": "-1"}, files=_files()), "sample")
    for reasons in ("best", "fixed,", "fixed;worst", "fixed\x00"):
        _refused(client.post(url, data={**FORM, "reasons": reasons}, files=_files()), "reasons")
    _refused(client.post(url, data={**FORM, "name": "n\x00"}, files=_files()), "name")
    _refused(client.post(url, data={**FORM, "name": "n" * 501}, files=_files()), "name")
    files = _files()
    del files["prediction"]
    _refused(client.post(url, data=FORM, files=files), "prediction")
    wide = _files(height=1, width=4097)
    assert "4096" in _refused(client.post(url, data=FORM, files=wide), "image")
    for field, data, problem in (
        ("image", _png(np.zeros((8, 8, 3), np.uint8), format="JPEG"), "PNG"),
        ("image", _png(np.zeros((8, 8, 4), np.uint8)), "RGBA"),
        ("truth", _png(np.zeros((8, 8), np.uint16)), "mode L"),
        ("prediction", _png(np.zeros((8, 8, 3), np.uint8))[:40], "PNG"),
    ):
        files = _files()
        files[field] = (f"{field}.png", data, "image/png")
        assert problem in _refused(client.post(url, data=FORM, files=files), field)
    unnamed = _files()
    unnamed["truth"] = ("", unnamed["truth"][1], "image/png")  # sent as a text field
    message = _refused(client.post(url, data=FORM, files=unnamed), "truth")
    assert "truth: expected a file: send truth as a multipart file part" in message
    assert "UploadFile" not in message
    as_json = client.post(url, json={"epoch": 1})
    assert as_json.status_code in (415, 422), as_json.text
    assert client.get(url).json()["epochs"] == []


def test_preview_forms_have_a_body_limit_of_their_own(
    settings: Settings, session_factory: sessionmaker[Session], admin_token: str
) -> None:
    small = settings.model_copy(update={"max_body_bytes": 4096})
    with ApiClient(create_app(small, session_factory=session_factory), admin_token) as client:
        url = f"/api/v1/runs/{_create(client)['id']}/previews"
        noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
        files = {**_files(64, 64), "image": ("image.png", _png(noise), "image/png")}
        assert len(files["image"][1]) > 4096
        stored = client.post(url, data=FORM, files=files)
        assert stored.status_code == 201, stored.text
        big = {**files, "truth": ("truth.png", b"x" * (PREVIEW_FORM_BYTES + 1), "image/png")}
        refused = client.post(url, data=FORM, files=big)
        assert refused.status_code == 413
        assert "preview form" in refused.json()["error"]["message"]
        long_lines = client.post(f"{url[: url.rindex('/')]}/logs", json={"lines": ["x" * 5000]})
        assert long_lines.status_code == 413
        assert "SEGTRACK_MAX_BODY_BYTES" in long_lines.json()["error"]["message"]


def test_only_the_runs_owner_reports_into_it(
    client: ApiClient, app: FastAPI, session_factory: sessionmaker[Session]
) -> None:
    run = _create(client)
    base = f"/api/v1/runs/{run['id']}"
    viewer = issue_token(session_factory, "vera", role="viewer")
    member = issue_token(session_factory, "mallory", role="member")
    for token in (viewer, member):
        with ApiClient(app, token) as other:
            assert other.post(f"{base}/heartbeat", json={}).status_code == 403
            logs = {"first_line": 0, "lines": ["x"]}
            assert other.post(f"{base}/logs", json=logs).status_code == 403
            assert other.request("PUT", f"{base}/info", json={}).status_code == 403
            assert other.post(f"{base}/previews", data=FORM, files=_files()).status_code == 403
    with ApiClient(app, member) as owner:
        own = _create(owner)
        beat = owner.post(f"/api/v1/runs/{own['id']}/heartbeat", json={})
        assert beat.status_code == 200, beat.text


def test_a_finished_run_takes_no_info(client: ApiClient) -> None:
    run = _create(client)
    client.patch(f"/api/v1/runs/{run['id']}", json={"status": "succeeded"})
    response = client.request("PUT", f"/api/v1/runs/{run['id']}/info", json={"device": "cpu"})
    assert "succeeded" in _refused(response, "run", status=409)


def test_a_create_that_loses_the_race_for_its_key_answers_the_winners_run(
    client: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    winner = _create(client, client_key="raced-key-0001")
    real_lookup = service.tracked_run_by_key
    lookups: list[str | None] = []

    def late_lookup(session: Session, client_key: str | None) -> Run | None:
        lookups.append(client_key)  # the first runs before the winner's insert commits
        return real_lookup(session, client_key) if len(lookups) > 1 else None

    monkeypatch.setattr(service, "tracked_run_by_key", late_lookup)
    again = client.post("/api/v1/runs", json={"external": True, "client_key": "raced-key-0001"})
    assert again.status_code == 200, again.text
    assert again.json()["id"] == winner["id"]
    listed = client.get("/api/v1/runs", params={"external": "true"}).json()["items"]
    assert [item["id"] for item in listed] == [winner["id"]] and len(lookups) == 2


def test_clone_of_an_external_run_needs_its_config_and_a_dataset_here(
    client: ApiClient, shapes_dataset: Path, task_queue: RecordingTaskQueue
) -> None:
    bare = _create(client)
    assert client.post(f"/api/v1/runs/{bare['id']}/clone", json={}).status_code == 409
    elsewhere = _create(client, config={"dataset": "/nowhere/cells", "epochs": 3})
    missing = client.post(f"/api/v1/runs/{elsewhere['id']}/clone", json={})
    assert "outside the allowed dataset roots" in _refused(missing, "/nowhere/cells", 403)
    here = _create(client, config={"dataset": str(shapes_dataset), "epochs": 3})
    clone = client.post(f"/api/v1/runs/{here['id']}/clone", json={"overrides": {"epochs": 2}})
    assert clone.status_code == 201, clone.text
    queued = clone.json()
    assert (queued["status"], queued["external"], queued["epochs_planned"]) == ("queued", False, 2)
    assert queued["lineage"]["cloned_from"]["id"] == here["id"]
    assert [sent.run_id for sent in task_queue.sent] == [queued["id"]]


@pytest.fixture
def sqlite_app(tmp_path: Path, task_queue: RecordingTaskQueue) -> FastAPI:
    settings = Settings(
        data_dir=tmp_path / "embedded",
        broker_url="memory://",
        dataset_roots=[tmp_path / "roots"],
        reaper_interval_s=0,
        allowed_hosts=["testserver"],
    )
    upgrade_database(settings.database_url)
    write_dataset(tmp_path / "roots" / "shapes")
    app = create_app(settings)
    app.dependency_overrides[get_task_queue] = lambda: task_queue
    return app


@pytest.fixture
def sqlite_client(sqlite_app: FastAPI) -> Iterator[ApiClient]:
    with ApiClient(sqlite_app, issue_token(sqlite_app.state.session_factory)) as client:
        yield client


def test_tracking_on_sqlite(
    sqlite_app: FastAPI, sqlite_client: ApiClient, task_queue: RecordingTaskQueue
) -> None:
    client = sqlite_client
    run = _create(client, client_key="sqlite-key-01", environment={"host": "laptop"})
    again = client.post("/api/v1/runs", json={"external": True, "client_key": "sqlite-key-01"})
    assert again.status_code == 200 and again.json()["id"] == run["id"]
    base = f"/api/v1/runs/{run['id']}"
    info = client.request("PUT", f"{base}/info", json={"class_names": ["bg", "fg"]})
    assert info.status_code == 200 and info.json()["class_names"] == ["bg", "fg"]
    assert client.post(f"{base}/logs", json={"first_line": 0, "lines": ["a"]}).status_code == 200
    assert client.post(f"{base}/previews", data=FORM, files=_files()).status_code == 201
    assert client.post(f"{base}/cancel").json()["status"] == "cancelling"
    assert client.post(f"{base}/heartbeat", json={}).json()["stop_requested"] is True
    assert client.patch(base, json={"status": "cancelled"}).json()["status"] == "cancelled"
    silent = _create(client)
    settings: Settings = sqlite_app.state.settings
    with session_scope(sqlite_app.state.session_factory) as session:
        old = utcnow() - timedelta(seconds=61)
        session.execute(update(Run).where(Run.id == silent["id"]).values(heartbeat_at=old))
        session.flush()
        assert reap_once(session, settings, task_queue).failed == [silent["id"]]
    assert client.get(f"/api/v1/runs/{silent['id']}").json()["status"] == "failed"
