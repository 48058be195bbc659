"""Embedded mode: the same API on SQLite (WAL), where metric writes, duration sorts and upserts
take their SQLite paths, and live events come from polling the events table."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from server.app import create_app
from server.artifacts import preview_paths
from server.db import create_db_engine, make_session_factory, session_scope, upgrade_database
from server.deps import get_task_queue
from server.preview.service import PreviewSampleFiles, record_previews
from server.reaper import reap_once
from server.run.lifecycle import claim_run, finish_run
from server.settings import Settings
from server.worker_status.repository import SlotHolder, upsert_worker
from tests.server.helpers import (
    ApiClient,
    LiveServer,
    RecordingTaskQueue,
    create_external,
    issue_token,
    valid_config,
    write_dataset,
)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    settings = Settings(
        data_dir=tmp_path / "embedded",
        broker_url="memory://",
        dataset_roots=[tmp_path / "roots"],
        reaper_interval_s=0,
        event_poll_interval_s=0.05,
        allowed_hosts=["testserver"],
    )
    upgrade_database(settings.database_url)
    write_dataset(tmp_path / "roots" / "shapes")
    return settings


@pytest.fixture
def sqlite_client(sqlite_settings: Settings, task_queue: RecordingTaskQueue) -> Iterator[ApiClient]:
    app = create_app(sqlite_settings)
    app.dependency_overrides[get_task_queue] = lambda: task_queue
    with ApiClient(app, issue_token(app.state.session_factory)) as client:
        yield client


def test_metrics_on_sqlite(sqlite_client: ApiClient) -> None:
    client = sqlite_client
    run = create_external(client)
    url = f"/api/v1/runs/{run['id']}/metrics"
    points = [
        {"key": "val/iou", "step": epoch, "value": 0.1 * epoch, "epoch": epoch}
        for epoch in range(1, 6)
    ]
    assert client.post(url, json={"points": points}).json()["new"] == 5
    assert client.post(url, json={"points": points}).json()["new"] == 0
    client.post(url, json={"points": [{"key": "val/iou", "step": 5, "value": 0.01, "epoch": 5}]})
    detail = client.get(f"/api/v1/runs/{run['id']}").json()
    summary = detail["metrics"]["val/iou"]
    assert summary["count"] == 5 and summary["max_value"] == pytest.approx(0.4)
    assert summary["last_value"] == pytest.approx(0.01)
    assert detail["best_val_iou"] == pytest.approx(0.4) and detail["best_epoch"] == 4
    assert detail["epochs_done"] == 5
    long = [{"key": "loss", "step": step, "value": float(step % 7)} for step in range(2000)]
    client.post(url, json={"points": long})
    series = client.get(f"{url}?keys=loss&max_points=50").json()["series"]["loss"]
    assert len(series["step"]) <= 50 and max(series["value"]) == 6.0
    frame = pd.read_csv(io.StringIO(client.get(f"{url}.csv").text))
    assert list(frame.columns) == ["step", "epoch", "loss", "val/iou"]


def test_runs_list_and_lifecycle_on_sqlite(
    sqlite_client: ApiClient, sqlite_settings: Settings, task_queue: RecordingTaskQueue
) -> None:
    client = sqlite_client
    made = [client.post("/api/v1/runs", json={"config": valid_config()}).json() for _ in range(4)]
    made += [create_external(client, name=f"ext-{index}") for index in range(4)]
    engine = create_db_engine(sqlite_settings.database_url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        claim_run(session, made[0]["id"], worker="w", device="cpu")
        finish_run(session, made[0]["id"], "succeeded")
        claim_run(session, made[1]["id"], worker="w", device="cpu")
        upsert_worker(
            session, name="w", hostname="h", pid=1, device="cpu", queues=["gpu"],
            slots=[SlotHolder(0, None, made[1]["id"])], taking_messages=False,
        )  # fmt: skip
        paths = preview_paths(sqlite_settings.artifacts_dir, made[1]["id"], 1, 0)
        for path in (paths.image, paths.truth, paths.prediction):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"png")
        samples = [PreviewSampleFiles(0, "a.png", paths)]
        record_previews(session, sqlite_settings.artifacts_dir, made[1]["id"], 1, samples)
        record_previews(session, sqlite_settings.artifacts_dir, made[1]["id"], 1, samples)
        assert reap_once(session, sqlite_settings, task_queue).failed == []
    engine.dispose()
    for sort in ("-duration", "duration", "name", "-best_val_iou"):
        ids, cursor = [], None
        while True:
            query = f"/api/v1/runs?sort={sort}&limit=3" + (f"&cursor={cursor}" if cursor else "")
            page = client.get(query).json()
            ids += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(ids) == sorted(run["id"] for run in made), sort
    workers = client.get("/api/v1/workers").json()
    assert workers["workers"][0]["slots"][0]["run"]["id"] == made[1]["id"]
    assert len(workers["queue"]) == 2
    previews = client.get(f"/api/v1/runs/{made[1]['id']}/previews").json()
    assert previews["epochs"] == [1] and len(previews["samples"]) == 1
    assert client.delete(f"/api/v1/runs/{made[1]['id']}?force=true").status_code == 204
    assert len(client.get("/api/v1/runs.csv").text.splitlines()) == 8


def test_live_events_by_polling_sqlite(
    sqlite_settings: Settings, task_queue: RecordingTaskQueue
) -> None:
    app = create_app(sqlite_settings, task_queue=task_queue)
    with (
        LiveServer(app, issue_token(app.state.session_factory)) as server,
        server.http() as http,
    ):
        run = http.post("/api/v1/runs", json={"external": True}).json()
        with http.stream("GET", f"/api/v1/runs/{run['id']}/events") as response:
            lines = response.iter_lines()
            assert next(lines).startswith("retry:")
            point = {"key": "loss", "step": 0, "value": 1.5}
            http.post(f"/api/v1/runs/{run['id']}/metrics", json={"points": [point]})
            for line in lines:
                if line.startswith("event:"):
                    assert line == "event: metrics"
                    break


def test_sqlite_never_reuses_a_deleted_run_id(sqlite_client: ApiClient) -> None:
    first = create_external(sqlite_client)
    assert sqlite_client.delete(f"/api/v1/runs/{first['id']}?force=true").status_code == 204
    assert create_external(sqlite_client)["id"] > first["id"]
