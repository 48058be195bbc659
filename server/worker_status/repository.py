"""SQL for the `workers` table, which worker processes keep up to date themselves. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.models import Worker, utcnow

WORKERS: Table = Worker.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class SlotHolder:
    """One slot of a worker: its position, its GPU (None on a CPU slot) and the run or the job
    (evaluate, predict, export, predict_image) holding it; both None when it is free."""

    slot: int
    gpu: str | None
    run_id: int | None
    job_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"slot": self.slot, "gpu": self.gpu, "run_id": self.run_id, "job_id": self.job_id}


def upsert_worker(
    session: Session,
    *,
    name: str,
    hostname: str,
    pid: int,
    device: str,
    queues: Sequence[str],
    slots: Sequence[SlotHolder],
    taking_messages: bool,
) -> None:
    """Say that worker `name` is alive (call it with every heartbeat), which run holds each of
    its slots, and whether a task thread of it is free to take a message.

    `idle_since` keeps the moment the worker last had a free task thread while it keeps one.
    """
    now = utcnow()
    values = {
        "hostname": hostname,
        "pid": pid,
        "device": device,
        "queues": list(queues),
        "slots": [slot.as_json() for slot in slots],
        "last_seen_at": now,
    }
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(WORKERS).values(
        name=name, started_at=now, idle_since=now if taking_messages else None, **values
    )
    idle_since = func.coalesce(Worker.idle_since, now) if taking_messages else None
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["name"], set_={**values, "idle_since": idle_since}
        )
    )


def remove_worker(session: Session, name: str) -> None:
    """Forget a worker that shuts down."""
    session.execute(delete(Worker).where(Worker.name == name))


def online_workers(session: Session, seen_after: datetime) -> list[Worker]:
    return list(
        session.scalars(
            select(Worker).where(Worker.last_seen_at >= seen_after).order_by(Worker.name)
        )
    )


def idle_queues(session: Session, seen_after: datetime, idle_before: datetime) -> set[str]:
    """Queues served by a worker seen after `seen_after` that has had a free task thread since
    `idle_before`."""
    rows = session.scalars(
        select(Worker.queues).where(
            Worker.last_seen_at >= seen_after,
            Worker.idle_since <= idle_before,
        )
    )
    return {queue for queues in rows for queue in queues}


def drop_stale_workers(session: Session, seen_before: datetime) -> list[str]:
    """Delete workers not seen since `seen_before`; returns their names."""
    names = list(session.scalars(select(Worker.name).where(Worker.last_seen_at < seen_before)))
    if names:
        session.execute(delete(Worker).where(Worker.name.in_(names)))
    return names


def largest_capacity(session: Session, queue: str, seen_after: datetime) -> int | None:
    """The most slots an online worker serving `queue` owns; None when none is online."""
    rows = session.execute(
        select(Worker.queues, Worker.slots).where(Worker.last_seen_at >= seen_after)
    ).all()
    sizes = [len(slots) for queues, slots in rows if queue in queues]
    return max(sizes) if sizes else None
