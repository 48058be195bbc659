"""SQL for the `workers` table, which worker processes keep up to date themselves. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Table, case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.models import Worker, utcnow

WORKERS: Table = Worker.__table__  # type: ignore[assignment]


def upsert_worker(
    session: Session,
    *,
    name: str,
    hostname: str,
    pid: int,
    device: str,
    queues: Sequence[str],
    current_run_id: int | None,
) -> None:
    """Say that worker `name` is alive (call it with every heartbeat) and what it runs.

    `idle_since` keeps the moment the worker last became free while it stays free.
    """
    now = utcnow()
    values = {
        "hostname": hostname,
        "pid": pid,
        "device": device,
        "queues": list(queues),
        "current_run_id": current_run_id,
        "last_seen_at": now,
    }
    idle_since = None if current_run_id is not None else now
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(WORKERS).values(name=name, started_at=now, idle_since=idle_since, **values)
    still_idle = case(
        (statement.excluded.current_run_id.is_(None), func.coalesce(Worker.idle_since, now)),
        else_=None,
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["name"], set_={**values, "idle_since": still_idle}
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
    """Queues served by a worker seen after `seen_after` that has been free since `idle_before`."""
    rows = session.scalars(
        select(Worker.queues).where(
            Worker.last_seen_at >= seen_after,
            Worker.current_run_id.is_(None),
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
