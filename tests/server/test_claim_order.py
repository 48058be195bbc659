"""A worker's message claims the most urgent queued run of its queues, whatever run it names."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from server.run.lifecycle import claim_next
from tests.server.helpers import ApiClient, valid_config

pytestmark = pytest.mark.usefixtures("shapes_dataset")


def _queued(client: ApiClient, **extra: object) -> int:
    response = client.post("/api/v1/runs", json={"config": valid_config(), **extra})
    assert response.status_code == 201, response.text
    run_id: int = response.json()["id"]
    return run_id


def _claim(session: Session, message_run_id: int, queues: list[str]) -> int | None:
    run = claim_next(session, message_run_id, queues=queues, worker="w1", device="cpu")
    return None if run is None else run.id


def test_priority_then_queue_time(client: ApiClient, db_session: Session) -> None:
    low = _queued(client, queue="gpu", priority=1)
    first_urgent = _queued(client, queue="gpu", priority=5)
    second_urgent = _queued(client, queue="gpu", priority=5)
    elsewhere = _queued(client, queue="other", priority=9)

    # Messages arrive in sending order, as the embedded filesystem broker delivers them.
    assert _claim(db_session, low, ["gpu"]) == first_urgent
    assert _claim(db_session, first_urgent, ["gpu"]) == second_urgent
    assert _claim(db_session, second_urgent, ["gpu"]) == low
    assert _claim(db_session, low, ["gpu"]) is None, "a spare message claims nothing"
    assert client.get(f"/api/v1/runs/{elsewhere}").json()["status"] == "queued"


def test_a_cancelled_runs_message_starts_the_next_run(
    client: ApiClient, db_session: Session
) -> None:
    cancelled = _queued(client)
    waiting = _queued(client)
    assert client.post(f"/api/v1/runs/{cancelled}/cancel").status_code == 200
    assert _claim(db_session, cancelled, ["default"]) == waiting
    assert client.get(f"/api/v1/runs/{cancelled}").json()["status"] == "cancelled"


def test_a_message_for_a_queue_the_worker_does_not_serve_still_trains_its_run(
    client: ApiClient, db_session: Session
) -> None:
    sent_by_hand = _queued(client, queue="other")
    assert _claim(db_session, sent_by_hand, ["default"]) == sent_by_hand
    assert _claim(db_session, sent_by_hand, ["default"]) is None
