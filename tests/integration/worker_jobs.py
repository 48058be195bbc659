"""What the job tests on a real SQLite database build: a queued job of a run, and the context a
worker with the given slots hands its job execution."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from server.db import session_scope
from server.models import Job
from server.settings import Settings
from worker.heartbeat import Heartbeat, WorkerIdentity
from worker.slots import SlotPool
from worker.training import TaskThreads, WorkerContext


def queued_job(
    sessions: sessionmaker[Session],
    run_id: int,
    kind: str = "export",
    parameters: Mapping[str, Any] | None = None,
) -> int:
    """A queued job of `kind` for run `run_id` on the default queue; returns its id."""
    with session_scope(sessions) as session:
        job = Job(
            run_id=run_id,
            kind=kind,
            status="queued",
            parameters=dict(parameters or {}),
            queue="default",
        )
        session.add(job)
        session.flush()
        return job.id


def worker_context(
    sessions: sessionmaker[Session], data_dir: Path, pool: SlotPool
) -> WorkerContext:
    """The context of worker `cpu1@test` with `pool` as its slots, its artifacts under
    `data_dir` (its heartbeat is not started)."""
    settings = Settings(data_dir=data_dir, database_url="sqlite://", redis_url=None)
    identity = WorkerIdentity("cpu1@test", "test", 1, "cpu", ("default",))
    heartbeat = Heartbeat(sessions, identity, interval=60, slots=pool, taking_messages=lambda: True)
    return WorkerContext(settings, sessions, identity, pool, TaskThreads(2), heartbeat)
