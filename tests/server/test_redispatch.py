"""A queued run whose message never reached a worker is sent again by the reaper.

The message can be lost after the run was committed: the broker was down when the API sent it, or
the broker dropped it (Redis restarted without persistence). An idle worker serving the run's
queue would have taken it, so that is when the run is sent again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.models import Run, Worker, utcnow
from server.reaper import reap_once
from server.run.lifecycle import claim_run
from server.settings import Settings
from server.worker_status.repository import SlotHolder, upsert_worker
from tests.server.helpers import ApiClient, RecordingTaskQueue, valid_config

WAIT_S = 10.0


@pytest.fixture
def redispatch_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"redispatch_after_s": WAIT_S})


def _queued(client: ApiClient, **extra: object) -> int:
    response = client.post("/api/v1/runs", json={"config": valid_config(), **extra})
    assert response.status_code == 201, response.text
    run_id: int = response.json()["id"]
    return run_id


def _worker(session: Session, name: str, *, queues: list[str], run_id: int | None = None) -> None:
    upsert_worker(
        session,
        name=name,
        hostname="h",
        pid=1,
        device="cpu",
        queues=queues,
        slots=[SlotHolder(0, None, run_id)],
        taking_messages=run_id is None,
    )


def _age(session: Session, *, runs: Sequence[int] = (), workers: Sequence[str] = ()) -> None:
    """Make the runs' messages and the workers' free time older than the redispatch wait."""
    then = utcnow() - timedelta(seconds=WAIT_S + 1)
    session.execute(update(Run).where(Run.id.in_(runs)).values(sent_at=then))
    session.execute(
        update(Worker)
        .where(Worker.name.in_(workers), Worker.idle_since.is_not(None))
        .values(idle_since=then)
    )


@pytest.mark.usefixtures("shapes_dataset")
def test_a_failed_send_is_recovered(
    client: ApiClient,
    db_session: Session,
    redispatch_settings: Settings,
    task_queue: RecordingTaskQueue,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broker_down(run_id: int, *, queue: str, priority: int, task_id: str) -> None:
        raise ConnectionError("broker unreachable")

    with monkeypatch.context() as patched:
        patched.setattr(task_queue, "send_run", broker_down)
        run_id = _queued(client)
    assert client.get(f"/api/v1/runs/{run_id}").json()["status"] == "queued", (
        "the run is kept although its message was not sent"
    )
    first_task_id = db_session.scalar(select(Run.task_id).where(Run.id == run_id))
    _worker(db_session, "w1", queues=["default"])

    early = reap_once(db_session, redispatch_settings, task_queue)
    assert early.redispatched == [], "nothing is sent again before the wait is over"

    _age(db_session, runs=[run_id], workers=["w1"])
    report = reap_once(db_session, redispatch_settings, task_queue)
    db_session.commit()
    assert report.redispatched == [run_id]
    assert [sent.run_id for sent in task_queue.sent] == [run_id]
    task_id = db_session.scalar(select(Run.task_id).where(Run.id == run_id))
    assert task_queue.sent[0].task_id == task_id != first_task_id
    assert client.get(f"/api/v1/runs/{run_id}").json()["status"] == "queued"

    again = reap_once(db_session, redispatch_settings, task_queue)
    assert again.redispatched == [], "a run just sent again waits once more"

    claimed = claim_run(db_session, run_id, worker="w1", device="cpu")
    assert claimed is not None
    assert claim_run(db_session, run_id, worker="w2", device="cpu") is None, "the copy is harmless"


def test_only_runs_an_idle_worker_should_have_taken_are_sent_again(
    client: ApiClient,
    shapes_dataset: Path,
    db_session: Session,
    redispatch_settings: Settings,
    task_queue: RecordingTaskQueue,
) -> None:
    busy_queue = _queued(client, queue="busy")
    other_queue = _queued(client, queue="elsewhere")
    stale_queue = _queued(client, queue="stale")
    stranded_low = _queued(client, queue="gpu", priority=1)
    stranded_high = _queued(client, queue="gpu", priority=7)
    external = client.post("/api/v1/runs", json={"external": True}).json()["id"]
    running = _queued(client, queue="busy")
    claim_run(db_session, running, worker="busy-worker", device="cpu")
    _worker(db_session, "busy-worker", queues=["busy"], run_id=running)
    _worker(db_session, "gpu-worker", queues=["gpu", "spare"])
    _worker(db_session, "stale-worker", queues=["stale"])
    db_session.execute(
        update(Worker)
        .where(Worker.name == "stale-worker")
        .values(last_seen_at=utcnow() - timedelta(seconds=redispatch_settings.heartbeat_timeout_s))
    )
    everything = [busy_queue, other_queue, stale_queue, stranded_low, stranded_high, external]
    _age(db_session, runs=everything, workers=["busy-worker", "gpu-worker", "stale-worker"])
    sent_before = len(task_queue.sent)

    report = reap_once(db_session, redispatch_settings, task_queue)
    db_session.commit()

    assert report.redispatched == [stranded_high, stranded_low], "served in priority order"
    assert [sent.run_id for sent in task_queue.sent[sent_before:]] == report.redispatched
    for left_alone in (busy_queue, other_queue, stale_queue, external, running):
        assert left_alone not in report.redispatched


def test_a_worker_that_just_became_free_is_not_idle_yet(
    client: ApiClient,
    shapes_dataset: Path,
    db_session: Session,
    redispatch_settings: Settings,
    task_queue: RecordingTaskQueue,
) -> None:
    waiting = _queued(client)
    finishing = _queued(client)
    claim_run(db_session, finishing, worker="w1", device="cpu")
    _worker(db_session, "w1", queues=["default"], run_id=finishing)
    _age(db_session, runs=[waiting])
    assert reap_once(db_session, redispatch_settings, task_queue).redispatched == []

    _worker(db_session, "w1", queues=["default"])  # the run ended; the next message is on its way
    assert reap_once(db_session, redispatch_settings, task_queue).redispatched == []
    _age(db_session, workers=["w1"])
    assert reap_once(db_session, redispatch_settings, task_queue).redispatched == [waiting]


def test_idle_since_is_kept_while_the_worker_stays_free(db_session: Session) -> None:
    def idle_since() -> datetime | None:
        return db_session.scalar(select(Worker.idle_since).where(Worker.name == "w1"))

    _worker(db_session, "w1", queues=["default"])
    became_free = idle_since()
    assert became_free is not None
    _worker(db_session, "w1", queues=["default"])
    assert idle_since() == became_free, "a heartbeat of a free worker keeps the time"
    run = Run(name="r", status="running", queue="default")
    db_session.add(run)
    db_session.flush()
    _worker(db_session, "w1", queues=["default"], run_id=run.id)
    assert idle_since() is None
    _worker(db_session, "w1", queues=["default"])
    free_again = idle_since()
    assert free_again is not None and free_again > became_free
