"""The worker's transitions (claim, heartbeat, start, finish) and the reaper of lost runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.db import create_db_engine, make_session_factory, session_scope
from server.metric.repository import MetricPoint
from server.metric.service import record_metrics
from server.models import Event, Job, Metric, Run, Worker, utcnow
from server.preview.repository import upsert_checkpoint
from server.reaper import reap_once
from server.run.lifecycle import claim_run, finish_run, heartbeat, record_start
from server.settings import Settings
from server.worker_status.repository import SlotHolder, upsert_worker
from tests.server.helpers import ApiClient, LiveServer, RecordingTaskQueue, valid_config


def _queued(client: ApiClient, **extra: object) -> int:
    response = client.post("/api/v1/runs", json={"config": valid_config(), **extra})
    assert response.status_code == 201, response.text
    run_id: int = response.json()["id"]
    return run_id


def _kinds(session: Session, run_id: int) -> list[str]:
    rows = session.execute(
        select(Event.kind, Event.payload).where(Event.run_id == run_id).order_by(Event.id)
    )
    return [
        f"{kind}:{payload.get('action') or payload.get('status', '')}" for kind, payload in rows
    ]


def test_worker_flow(client: ApiClient, shapes_dataset: Path, db_session: Session) -> None:
    run_id = _queued(client)
    run = claim_run(db_session, run_id, worker="w1", device="cpu")
    assert run is not None and run.status == "running" and run.worker == "w1"
    assert run.config is not None and run.config["epochs"] == 2
    assert claim_run(db_session, run_id, worker="w2", device="cpu") is None, "claimed once only"
    record_start(db_session, run_id, class_names=["bg", "fg"], epochs_planned=2)
    record_metrics(db_session, run_id, [MetricPoint("val/iou", 1, 0.4, 1)])
    assert heartbeat(db_session, run_id) == "running"
    db_session.commit()

    client.post(f"/api/v1/runs/{run_id}/cancel")
    assert heartbeat(db_session, run_id) == "cancelling"
    finished = finish_run(db_session, run_id, "cancelled")
    assert finished is not None and finished.finished_at is not None
    assert heartbeat(db_session, run_id) is None, "a finished run tells its worker to stop"
    assert finish_run(db_session, run_id, "succeeded") is None
    db_session.commit()
    detail = client.get(f"/api/v1/runs/{run_id}").json()
    assert detail["status"] == "cancelled" and detail["class_names"] == ["bg", "fg"]
    assert detail["epochs_done"] == 1
    assert _kinds(db_session, run_id) == [
        "run:created",
        "status:running",
        "run:started",
        "metrics:",
        "status:cancelling",
        "status:cancelled",
    ]


def test_failure_keeps_one_line_and_the_traceback(
    client: ApiClient, shapes_dataset: Path, db_session: Session
) -> None:
    run_id = _queued(client)
    claim_run(db_session, run_id, worker="w1", device="cpu")
    finish_run(
        db_session,
        run_id,
        "failed",
        failure_reason="CUDA out of memory\nmore detail",
        failure_traceback="Traceback (most recent call last): ...",
    )
    db_session.commit()
    detail = client.get(f"/api/v1/runs/{run_id}").json()
    assert detail["failure_reason"] == "CUDA out of memory"
    assert detail["failure_traceback"].startswith("Traceback")


def test_deleted_run_stops_its_worker(
    client: ApiClient, shapes_dataset: Path, db_session: Session
) -> None:
    run_id = _queued(client)
    claim_run(db_session, run_id, worker="w1", device="cpu")
    db_session.commit()
    assert client.delete(f"/api/v1/runs/{run_id}?force=true").status_code == 204
    assert heartbeat(db_session, run_id) is None
    assert claim_run(db_session, run_id, worker="w1", device="cpu") is None


def _make_stale(session: Session, run_id: int, seconds: float) -> None:
    session.execute(
        update(Run)
        .where(Run.id == run_id)
        .values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
    )


def test_reaper_fails_lost_runs_and_requeues_retryable_ones(
    client: ApiClient,
    shapes_dataset: Path,
    db_session: Session,
    settings: Settings,
    task_queue: RecordingTaskQueue,
) -> None:
    lost = _queued(client)
    retried = _queued(client, max_retries=2)
    no_checkpoint = _queued(client, max_retries=2)
    alive = _queued(client)
    cancelling = _queued(client)
    for run_id in (lost, retried, no_checkpoint, alive, cancelling):
        claim_run(db_session, run_id, worker="w1", device="cpu")
    upsert_checkpoint(
        db_session, run_id=retried, kind="last", epoch=1, metric=None, path="x", size_bytes=1
    )
    db_session.execute(update(Run).where(Run.id == cancelling).values(status="cancelling"))
    for run_id in (lost, retried, no_checkpoint, cancelling):
        _make_stale(db_session, run_id, settings.heartbeat_timeout_s + 5)
    _make_stale(db_session, alive, settings.heartbeat_timeout_s - 5)
    upsert_worker(
        db_session, name="w1", hostname="h", pid=1, device="cpu", queues=["gpu"],
        slots=[SlotHolder(0, None, None)], taking_messages=True,
    )  # fmt: skip
    db_session.execute(
        update(Worker).values(
            last_seen_at=utcnow() - timedelta(seconds=settings.heartbeat_timeout_s + 1)
        )
    )
    sent_before = len(task_queue.sent)
    report = reap_once(db_session, settings, task_queue)
    db_session.commit()

    assert sorted(report.failed) == sorted([lost, cancelling])
    assert report.requeued == [retried, no_checkpoint]
    assert report.dropped_workers == ["w1"]
    failed = client.get(f"/api/v1/runs/{lost}").json()
    assert failed["status"] == "failed"
    assert failed["failure_reason"] == "worker lost (no heartbeat for 30 s)"
    assert client.get(f"/api/v1/runs/{cancelling}").json()["status"] == "cancelled"
    requeued = client.get(f"/api/v1/runs/{retried}").json()
    assert requeued["status"] == "queued" and requeued["resume_requested"] is True
    assert requeued["attempt"] == 1 and requeued["worker"] is None
    started_over = client.get(f"/api/v1/runs/{no_checkpoint}").json()
    assert started_over["status"] == "queued" and started_over["resume_requested"] is False
    assert [sent.run_id for sent in task_queue.sent[sent_before:]] == [retried, no_checkpoint]
    assert client.get(f"/api/v1/runs/{alive}").json()["status"] == "running"
    assert reap_once(db_session, settings, task_queue).failed == []


def test_reaper_leaves_external_runs_alone(
    client: ApiClient, db_session: Session, settings: Settings, task_queue: RecordingTaskQueue
) -> None:
    run = client.post("/api/v1/runs", json={"external": True}).json()
    _make_stale(db_session, run["id"], 10 * settings.heartbeat_timeout_s)
    assert reap_once(db_session, settings, task_queue).failed == []


def test_reaper_deletes_expired_events(
    db_session: Session, settings: Settings, task_queue: RecordingTaskQueue
) -> None:
    old = utcnow() - timedelta(seconds=settings.event_retention_s + 10)
    db_session.add(Event(kind="status", run_id=None, payload={}, created_at=old))
    db_session.add(Event(kind="status", run_id=None, payload={}, created_at=utcnow()))
    db_session.flush()
    assert reap_once(db_session, settings, task_queue).deleted_events == 1


def test_reaper_sweeps_points_of_deleted_runs(
    client: ApiClient, db_session: Session, settings: Settings, task_queue: RecordingTaskQueue
) -> None:
    run = client.post("/api/v1/runs", json={"external": True}).json()
    assert client.delete(f"/api/v1/runs/{run['id']}?force=true").status_code == 204
    # An ingest that committed while the run was being deleted leaves points behind.
    db_session.add_all(
        Metric(run_id=run["id"], key="loss", step=step, value=1.0) for step in range(3)
    )
    db_session.flush()
    assert reap_once(db_session, settings, task_queue).swept_points == 3
    assert reap_once(db_session, settings, task_queue).swept_points == 0


def test_the_app_runs_the_reaper_in_the_background(
    start_live: Callable[..., LiveServer], shapes_dataset: Path
) -> None:
    server = start_live(reaper_interval_s=0.05, heartbeat_timeout_s=0.5)
    engine = create_db_engine(server.app.state.settings.database_url)
    factory = make_session_factory(engine)
    with server.http() as http:
        run = http.post("/api/v1/runs", json={"config": valid_config()}).json()
        with session_scope(factory) as session:
            claim_run(session, run["id"], worker="vanishing", device="cpu")
        deadline = time.monotonic() + 10
        while http.get(f"/api/v1/runs/{run['id']}").json()["status"] == "running":
            assert time.monotonic() < deadline, "the reaper never noticed the lost worker"
            time.sleep(0.05)
        final = http.get(f"/api/v1/runs/{run['id']}").json()
        assert final["status"] == "failed"
        assert final["failure_reason"] == "worker lost (no heartbeat for 0.5 s)"
    engine.dispose()


def test_reaper_fails_jobs_whose_worker_stopped_beating(
    client: ApiClient,
    shapes_dataset: Path,
    db_session: Session,
    settings: Settings,
    task_queue: RecordingTaskQueue,
) -> None:
    run_id = _queued(client)
    timeout = settings.heartbeat_timeout_s

    def job(status: str, beat_seconds_ago: float | None) -> Job:
        beat = None if beat_seconds_ago is None else utcnow() - timedelta(seconds=beat_seconds_ago)
        added = Job(
            run_id=run_id, kind="evaluate", status=status, parameters={"checkpoint": "best"},
            queue="gpu", worker="w1", started_at=beat, heartbeat_at=beat,
        )  # fmt: skip
        db_session.add(added)
        return added

    lost, alive, waiting = job("running", timeout + 5), job("running", 1), job("queued", None)
    db_session.flush()
    report = reap_once(db_session, settings, task_queue)
    db_session.commit()

    assert report.failed_jobs == [lost.id]
    failed = client.get(f"/api/v1/jobs/{lost.id}").json()
    assert failed["status"] == "failed"
    assert failed["reason"].startswith(f"worker lost (no heartbeat for {timeout:g} s)")
    assert client.get(f"/api/v1/jobs/{alive.id}").json()["status"] == "running"
    assert client.get(f"/api/v1/jobs/{waiting.id}").json()["status"] == "queued"
    assert reap_once(db_session, settings, task_queue).failed_jobs == []
