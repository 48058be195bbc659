"""A worker's message claims the most urgent queued run of its queues, whatever run it names,
among the runs that fit the worker's slots; the most urgent one waits for its slots."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.errors import InvalidInput
from server.models import Event, Run
from server.run.lifecycle import SlotWait, claim_next
from server.run.service import gpus_of
from server.worker_status.repository import SlotHolder, upsert_worker
from tests.server.helpers import ApiClient, valid_config

pytestmark = pytest.mark.usefixtures("shapes_dataset")


def _queued(client: ApiClient, **extra: object) -> int:
    response = client.post("/api/v1/runs", json={"config": valid_config(), **extra})
    assert response.status_code == 201, response.text
    run_id: int = response.json()["id"]
    return run_id


def _claim(session: Session, message_run_id: int, queues: list[str]) -> int | None:
    run = claim_next(session, message_run_id, queues=queues, worker="w1", device="cpu")
    assert not isinstance(run, SlotWait)
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


# --- slots: a run fits a worker with enough slots; the most urgent fitting run waits for them ---


def _needs(session: Session, run_id: int, gpus: int) -> None:
    session.execute(update(Run).where(Run.id == run_id).values(gpus=gpus))


def _claim_slots(
    session: Session, message_run_id: int, free: list[str], capacity: int
) -> Run | SlotWait | None:
    return claim_next(
        session,
        message_run_id,
        queues=["default"],
        worker="w1",
        device="cpu",
        free_slots=free,
        capacity=capacity,
    )


def test_a_run_needing_more_slots_than_the_worker_owns_is_left_to_others(
    client: ApiClient, db_session: Session
) -> None:
    big = _queued(client, priority=9)
    small = _queued(client)
    _needs(db_session, big, 4)
    claimed = _claim_slots(db_session, big, ["0", "1"], 2)
    assert isinstance(claimed, Run) and claimed.id == small
    assert _claim_slots(db_session, big, ["0", "1"], 2) is None, "the message leaves it queued"
    claimed = _claim_slots(db_session, big, ["0", "1", "2", "3"], 4)
    assert isinstance(claimed, Run) and claimed.id == big


def test_the_most_urgent_run_waits_for_its_slots_and_runs_behind_it_do_not_take_them(
    client: ApiClient, db_session: Session
) -> None:
    wide = _queued(client, priority=5)
    narrow = _queued(client, priority=1)
    _needs(db_session, wide, 2)
    assert _claim_slots(db_session, narrow, ["1"], 2) == SlotWait(wide, gpus=2, free=1)
    assert client.get(f"/api/v1/runs/{narrow}").json()["status"] == "queued"

    claimed = _claim_slots(db_session, narrow, ["0", "1"], 2)
    assert isinstance(claimed, Run) and claimed.id == wide
    event = db_session.scalars(
        select(Event.payload)
        .where(Event.run_id == wide, Event.kind == "status")
        .order_by(Event.id.desc())
        .limit(1)
    ).one()
    assert event["status"] == "running" and event["slots"] == ["0", "1"]
    claimed = _claim_slots(db_session, narrow, ["2"], 3)
    assert isinstance(claimed, Run) and claimed.id == narrow


def test_a_less_urgent_wide_run_does_not_hold_up_a_narrow_one(
    client: ApiClient, db_session: Session
) -> None:
    narrow = _queued(client, priority=5)
    wide = _queued(client, priority=1)
    _needs(db_session, wide, 2)
    claimed = _claim_slots(db_session, wide, ["1"], 2)
    assert isinstance(claimed, Run) and claimed.id == narrow
    assert _claim_slots(db_session, wide, ["1"], 2) == SlotWait(wide, gpus=2, free=1)


def test_the_gpus_of_a_config() -> None:
    assert gpus_of({}) == 1
    assert gpus_of({"gpus": 4}) == 4
    for wrong in (0, -1, 2.5, "2", True, 40_000):
        with pytest.raises(InvalidInput, match=r"config\.gpus: a whole number of GPUs from 1"):
            gpus_of({"gpus": wrong})


def test_a_run_wider_than_every_online_worker_of_its_queue_says_so(
    client: ApiClient, db_session: Session
) -> None:
    wide = _queued(client)
    _needs(db_session, wide, 4)
    db_session.commit()
    assert client.get(f"/api/v1/runs/{wide}").json()["placement_note"] is None, "no worker yet"
    for name, size, queues in (("two", 2, ["default"]), ("eight", 8, ["elsewhere"])):
        upsert_worker(
            db_session,
            name=name,
            hostname="h",
            pid=1,
            device="cpu",
            queues=queues,
            slots=[SlotHolder(index, None, None) for index in range(size)],
            taking_messages=True,
        )
    db_session.commit()
    body = client.get(f"/api/v1/runs/{wide}").json()
    assert body["gpus"] == 4
    assert body["placement_note"] == (
        "needs 4 GPUs; the largest online worker of queue 'default' has 2"
    )
    _needs(db_session, wide, 2)
    db_session.commit()
    assert client.get(f"/api/v1/runs/{wide}").json()["placement_note"] is None
