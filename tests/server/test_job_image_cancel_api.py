"""predict_image and cancel over REST: a validation image is predicted from the checkpoint nearest
the epoch asked (the one really used is named), the same image and checkpoint asked again reuses
the job, bad requests are a 4xx saying what is wrong; a queued job cancelled is never claimed, a
running one is `cancelling` until its worker ends it `cancelled`, an ended one cannot be; every
change is a `job` event on the run's stream; the workers page shows a slot a job holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Connection, event, update
from sqlalchemy.orm import Session, sessionmaker

from server.artifacts import checkpoint_path
from server.db import session_scope
from server.events import fetch_events
from server.job.repository import claim_job, finish_job
from server.models import Run, utcnow
from server.preview.repository import upsert_checkpoint
from server.settings import Settings
from server.validation.service import record_validation
from server.worker_status.repository import SlotHolder, upsert_worker
from tests.server.helpers import ApiClient, RecordingTaskQueue, issue_token, valid_config
from tests.server.validation_data import CLASSES, NAMES, counts


def _checkpoint(
    settings: Settings, sessions: sessionmaker[Session], run_id: int, kind: str, epoch: int
) -> None:
    path = checkpoint_path(settings.artifacts_dir, run_id, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"weights")
    with session_scope(sessions) as session:
        upsert_checkpoint(
            session, run_id=run_id, kind=kind, epoch=epoch, metric=0.5, path=str(path),
            size_bytes=7,
        )  # fmt: skip


def _run(client: ApiClient, sessions: sessionmaker[Session], *, validated: bool = True) -> int:
    """A run of the `shapes` dataset whose four validation images (NAMES) are stored."""
    created = client.post("/api/v1/runs", json={"config": valid_config()})
    assert created.status_code == 201, created.text
    run_id: int = created.json()["id"]
    with session_scope(sessions) as session:
        session.execute(update(Run).where(Run.id == run_id).values(class_names=CLASSES))
        if validated:
            record_validation(session, run_id, counts(1))
    return run_id


@pytest.fixture
def run_id(
    client: ApiClient,
    shapes_dataset: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
) -> int:
    """A run with a best checkpoint at epoch 3 and a last one at epoch 5."""
    run_id = _run(client, session_factory)
    _checkpoint(settings, session_factory, run_id, "best", 3)
    _checkpoint(settings, session_factory, run_id, "last", 5)
    return run_id


def _ask(client: ApiClient, run_id: int, **body: Any) -> Any:
    return client.post(f"/api/v1/runs/{run_id}/jobs", json={"kind": "predict_image", **body})


def _job_events(sessions: sessionmaker[Session], run_id: int) -> list[tuple[int, str]]:
    with session_scope(sessions, write=False) as session:
        return [
            (event.payload["job_id"], event.payload["status"])
            for event in fetch_events(session, after_id=0, run_id=run_id)
            if event.kind == "job"
        ]


def test_an_image_is_predicted_from_the_nearest_checkpoint_and_asked_again_is_reused(
    client: ApiClient,
    run_id: int,
    task_queue: RecordingTaskQueue,
    session_factory: sessionmaker[Session],
) -> None:
    first = _ask(client, run_id, image=2, epoch=2)
    assert first.status_code == 201, first.text
    job = first.json()
    assert job["kind"] == "predict_image" and job["status"] == "queued"
    assert job["reused"] is False
    assert job["parameters"] == {
        "image_index": 2,
        "image_name": NAMES[2],
        "requested_epoch": 2,
        "checkpoint": "best",
        "checkpoint_epoch": 3,
    }
    assert [job_id for job_id, _, _ in task_queue.jobs] == [job["id"]]
    again = _ask(client, run_id, image=2, epoch=3)  # the same checkpoint: the same job
    assert again.status_code == 200, again.text
    assert again.json()["id"] == job["id"] and again.json()["reused"] is True
    assert len(task_queue.jobs) == 1
    # A tie goes to best; past it, and with no epoch, the newest (last).
    assert _ask(client, run_id, image=2, epoch=4).json()["id"] == job["id"]
    newest = _ask(client, run_id, image=2).json()
    assert newest["parameters"]["checkpoint"] == "last"
    assert newest["parameters"]["checkpoint_epoch"] == 5
    assert _ask(client, run_id, image=2, epoch=40).json()["id"] == newest["id"]
    other_image = _ask(client, run_id, image=3, epoch=2)
    assert other_image.status_code == 201 and other_image.json()["id"] != job["id"]
    assert len(task_queue.jobs) == 3
    assert _job_events(session_factory, run_id) == [
        (job["id"], "queued"),
        (newest["id"], "queued"),
        (other_image.json()["id"], "queued"),
    ]


def test_bad_image_requests_say_what_is_wrong(
    client: ApiClient,
    run_id: int,
    settings: Settings,
    session_factory: sessionmaker[Session],
) -> None:
    def problem(response: Any, status: int) -> str:
        assert response.status_code == status, response.text
        message: str = response.json()["error"]["message"]
        return message

    assert "its images are 0 to 3" in problem(_ask(client, run_id, image=4), 404)
    for body in (
        {},
        {"image": -1},
        {"image": "first"},
        {"image": 2**40},
        {"image": 1, "epoch": -3},
        {"image": 1, "epoch": 1.5},
        {"image": 1, "checkpoint": "best"},
        {"image": None},
    ):
        assert _ask(client, run_id, **body).status_code == 422, body
    assert _ask(client, 999999, image=0).status_code == 404

    bare = _run(client, session_factory)
    assert "has no checkpoint yet" in problem(_ask(client, bare, image=0), 409)
    unvalidated = _run(client, session_factory, validated=False)
    _checkpoint(settings, session_factory, unvalidated, "best", 1)
    assert "no validation images stored yet" in problem(_ask(client, unvalidated, image=0), 409)
    # A checkpoint row whose file is gone is no checkpoint to load.
    checkpoint_path(settings.artifacts_dir, bare, "best").parent.mkdir(parents=True)
    with session_scope(session_factory) as session:
        upsert_checkpoint(
            session, run_id=bare, kind="best", epoch=1, metric=None, path="gone", size_bytes=1
        )
    assert "has no checkpoint yet" in problem(_ask(client, bare, image=0), 409)

    external = client.post("/api/v1/runs", json={"name": "elsewhere", "external": True}).json()
    with session_scope(session_factory) as session:
        session.execute(update(Run).where(Run.id == external["id"]).values(class_names=CLASSES))
        record_validation(session, external["id"], counts(1))
    _checkpoint(settings, session_factory, external["id"], "best", 1)
    assert "trained elsewhere" in problem(_ask(client, external["id"], image=0), 409)


def test_a_cancelled_queued_job_is_never_claimed_and_a_running_one_ends_cancelled(
    client: ApiClient, run_id: int, session_factory: sessionmaker[Session]
) -> None:
    queued = _ask(client, run_id, image=0).json()
    cancelled = client.post(f"/api/v1/jobs/{queued['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["reason"] == "cancelled by admin"
    assert cancelled.json()["finished_at"] is not None
    stale = utcnow() + timedelta(hours=1)  # even a claim that would take over anything
    with session_scope(session_factory) as session:
        assert claim_job(session, queued["id"], worker="w", stale_before=stale) is None
    ended = client.post(f"/api/v1/jobs/{queued['id']}/cancel")
    assert ended.status_code == 409 and "already cancelled" in ended.json()["error"]["message"]

    running = _ask(client, run_id, image=1).json()
    with session_scope(session_factory) as session:
        assert claim_job(session, running["id"], worker="w", stale_before=utcnow()) is not None
    asked = client.post(f"/api/v1/jobs/{running['id']}/cancel")
    assert asked.status_code == 200 and asked.json()["status"] == "cancelling"
    assert client.post(f"/api/v1/jobs/{running['id']}/cancel").json()["status"] == "cancelling"
    with session_scope(session_factory) as session:
        assert finish_job(
            session, running["id"], status="cancelled", reason=None, details=None, result=None,
            files=[],
        )  # fmt: skip
    done = client.get(f"/api/v1/jobs/{running['id']}").json()
    assert (done["status"], done["reason"]) == ("cancelled", "cancelled by admin")
    # A new request does not reuse a cancelled job.
    assert _ask(client, run_id, image=1).status_code == 201
    assert (queued["id"], "cancelled") in _job_events(session_factory, run_id)
    assert (running["id"], "cancelling") in _job_events(session_factory, run_id)

    assert client.post("/api/v1/jobs/999999/cancel").status_code == 404
    assert client.post("/api/v1/jobs/0/cancel").status_code == 422
    assert client.post("/api/v1/jobs/abc/cancel").status_code == 422


def _succeed(sessions: sessionmaker[Session], job_id: int) -> None:
    with session_scope(sessions) as session:
        assert claim_job(session, job_id, worker="w", stale_before=utcnow()) is not None
        assert finish_job(
            session, job_id, status="succeeded", reason=None, details=None, result={},
            files=[],
        )  # fmt: skip


def test_the_images_list_names_the_epochs_an_image_was_predicted_from_in_one_query(
    client: ApiClient, run_id: int, session_factory: sessionmaker[Session], connection: Connection
) -> None:
    best = _ask(client, run_id, image=2, epoch=3).json()
    last = _ask(client, run_id, image=2, epoch=5).json()
    pending = _ask(client, run_id, image=1, epoch=5).json()
    failed = _ask(client, run_id, image=0, epoch=5).json()
    _succeed(session_factory, best["id"])
    _succeed(session_factory, last["id"])
    with session_scope(session_factory) as session:
        claim_job(session, failed["id"], worker="w", stale_before=utcnow())
        finish_job(
            session, failed["id"], status="failed", reason="x", details=None, result=None,
            files=[],
        )  # fmt: skip
    assert client.get(f"/api/v1/jobs/{pending['id']}").json()["status"] == "queued"

    job_reads: list[str] = []

    def count(*args: Any) -> None:
        statement = str(args[2])
        if "FROM jobs" in statement:
            job_reads.append(statement)

    event.listen(connection, "before_cursor_execute", count)
    try:
        listed = client.get(f"/api/v1/runs/{run_id}/images?sort=name&limit=10")
    finally:
        event.remove(connection, "before_cursor_execute", count)
    assert listed.status_code == 200, listed.text
    by_index = {item["index"]: item["predicted_epochs"] for item in listed.json()["items"]}
    # Only succeeded jobs count: queued and failed ones have nothing to show yet.
    assert by_index == {0: [], 1: [], 2: [3, 5], 3: []}
    assert len(job_reads) == 1, job_reads


@pytest.fixture
def member(app: FastAPI, session_factory: sessionmaker[Session]) -> Iterator[ApiClient]:
    with ApiClient(app, issue_token(session_factory, "other", "member")) as caller:
        yield caller


def test_members_cancel_only_jobs_of_their_own_runs(
    client: ApiClient, member: ApiClient, run_id: int
) -> None:
    job = _ask(client, run_id, image=0).json()
    refused = member.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert refused.status_code == 403, refused.text
    assert "only cancel jobs of the runs they submitted" in refused.json()["error"]["message"]
    assert client.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "queued"


def test_the_workers_page_shows_a_slot_held_by_a_job(
    client: ApiClient, run_id: int, session_factory: sessionmaker[Session]
) -> None:
    job = _ask(client, run_id, image=0).json()
    with session_scope(session_factory) as session:
        upsert_worker(
            session, name="w1", hostname="h", pid=1, device="cpu", queues=["default"],
            slots=[SlotHolder(0, None, None, job["id"]), SlotHolder(1, None, None)],
            taking_messages=True,
        )  # fmt: skip
    (worker,) = client.get("/api/v1/workers").json()["workers"]
    busy, free = worker["slots"]
    assert busy["run"] is None
    assert busy["job"] == {
        "id": job["id"],
        "kind": "predict_image",
        "status": "queued",
        "run": {"id": run_id, "name": busy["job"]["run"]["name"]},
    }
    assert free["job"] is None and free["run"] is None
