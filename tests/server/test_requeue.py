"""Re-prioritising a queued run and moving it to another queue (PATCH priority / queue): the
claim order follows at once, a move sends a message to the new queue, and only queued runs take
either."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import Event
from server.run.lifecycle import SlotWait, claim_next, claim_run
from tests.server.helpers import ApiClient, RecordingTaskQueue, create_external, valid_config

pytestmark = pytest.mark.usefixtures("shapes_dataset")


def _queued(client: ApiClient, **extra: object) -> dict[str, Any]:
    response = client.post("/api/v1/runs", json={"config": valid_config(), **extra})
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    return run


def _queue_order(client: ApiClient) -> list[int]:
    return [run["id"] for run in client.get("/api/v1/workers").json()["queue"]]


def _claim(session: Session, message_run_id: int, queues: list[str], **extra: Any) -> int | None:
    run = claim_next(session, message_run_id, queues=queues, worker="w1", device="cpu", **extra)
    assert not isinstance(run, SlotWait)
    return None if run is None else run.id


def test_raising_the_priority_reorders_the_queue_without_a_new_message(
    client: ApiClient, task_queue: RecordingTaskQueue, db_session: Session
) -> None:
    first = _queued(client, queue="gpu", priority=3)
    second = _queued(client, queue="gpu", priority=3)
    assert _queue_order(client) == [first["id"], second["id"]]
    sent = len(task_queue.sent)

    response = client.patch(f"/api/v1/runs/{second['id']}", json={"priority": 8})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["priority"], body["queue"], body["status"]) == (8, "gpu", "queued")
    assert body["queued_at"] == second["queued_at"], "it keeps its place in time"
    assert len(task_queue.sent) == sent, "the messages out already claim the most urgent run"
    assert _queue_order(client) == [second["id"], first["id"]]
    assert _claim(db_session, first["id"], ["gpu"]) == second["id"]

    [event] = db_session.execute(
        select(Event.payload).where(Event.run_id == second["id"], Event.kind == "run")
        .order_by(Event.id.desc()).limit(1)
    ).scalars()  # fmt: skip
    assert event["action"] == "updated" and event["fields"] == ["priority"]


def test_moving_a_run_sends_it_to_the_new_queue_and_revokes_the_old_message(
    client: ApiClient, task_queue: RecordingTaskQueue, db_session: Session
) -> None:
    parked = _queued(client, queue="parked", priority=2)
    old_message = task_queue.sent[-1]

    response = client.patch(f"/api/v1/runs/{parked['id']}", json={"queue": "gpu", "priority": 6})
    assert response.status_code == 200, response.text
    assert (response.json()["queue"], response.json()["priority"]) == ("gpu", 6)
    new_message = task_queue.sent[-1]
    assert (new_message.run_id, new_message.queue, new_message.priority) == (parked["id"], "gpu", 6)
    assert new_message.task_id != old_message.task_id
    assert task_queue.revoked == [old_message.task_id]

    # The old message, if it still arrives, trains nothing on the old queue ...
    assert _claim(db_session, parked["id"], ["parked"], task_id=old_message.task_id) is None
    # ... and a worker of the new queue takes the run with the new one.
    assert _claim(db_session, parked["id"], ["gpu"], task_id=new_message.task_id) == parked["id"]


def test_moving_to_the_same_queue_sends_nothing(
    client: ApiClient, task_queue: RecordingTaskQueue
) -> None:
    run = _queued(client, queue="gpu")
    sent = len(task_queue.sent)
    response = client.patch(f"/api/v1/runs/{run['id']}", json={"queue": "gpu"})
    assert response.status_code == 200, response.text
    assert len(task_queue.sent) == sent and task_queue.revoked == []


def test_only_queued_runs_take_a_priority_or_a_queue(
    client: ApiClient, task_queue: RecordingTaskQueue, db_session: Session
) -> None:
    running = _queued(client)
    assert claim_run(db_session, running["id"], worker="w1", device="cpu") is not None
    db_session.commit()
    cancelled = _queued(client)
    client.post(f"/api/v1/runs/{cancelled['id']}/cancel")
    external = create_external(client)
    sent = len(task_queue.sent)

    for run, status in ((running, "running"), (cancelled, "cancelled"), (external, "running")):
        for change in ({"priority": 9}, {"queue": "gpu"}):
            response = client.patch(f"/api/v1/runs/{run['id']}", json={**change, "name": "x"})
            assert response.status_code == 409, response.text
            message = response.json()["error"]["message"]
            assert message == (
                f"run {run['id']} is {status}; only queued runs can be re-prioritised or moved "
                "to another queue"
            )
            after = client.get(f"/api/v1/runs/{run['id']}").json()
            assert after["name"] != "x", "nothing of a refused PATCH is kept"
    assert len(task_queue.sent) == sent


@pytest.mark.parametrize(
    ("change", "field", "allowed"),
    [
        ({"priority": 10}, "priority", "less than or equal to 9"),
        ({"priority": -1}, "priority", "greater than or equal to 0"),
        ({"queue": "no spaces"}, "queue", "^[A-Za-z0-9_.:-]{1,64}$"),
        ({"queue": ""}, "queue", "^[A-Za-z0-9_.:-]{1,64}$"),
    ],
)
def test_out_of_range_values_name_what_is_allowed(
    client: ApiClient, change: dict[str, object], field: str, allowed: str
) -> None:
    run = _queued(client)
    response = client.patch(f"/api/v1/runs/{run['id']}", json=change)
    assert response.status_code == 422
    [detail] = response.json()["error"]["details"]
    assert detail["field"] == field and allowed in detail["message"]
