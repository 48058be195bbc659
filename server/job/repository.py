"""SQL for jobs: add, read, list a run's, and the worker's claim, heartbeat and outcome. Never
commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from server.errors import NotFound
from server.models import Job, utcnow


def add_job(session: Session, job: Job) -> Job:
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, job_id: int) -> Job:
    """The job, or NotFound naming the id."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} does not exist")
    return job


def run_jobs(session: Session, run_id: int, *, limit: int) -> list[Job]:
    """The run's newest `limit` jobs, newest first."""
    query = select(Job).where(Job.run_id == run_id).order_by(Job.id.desc()).limit(limit)
    return list(session.scalars(query))


def claim_job(session: Session, job_id: int, *, worker: str, stale_before: datetime) -> Job | None:
    """Atomically take job `job_id` for `worker`: a queued job, or a running one whose worker
    stopped beating before `stale_before` (it died; the message came back). None when another
    worker has it, it ended, or it is gone: a redelivered message is harmless."""
    now = utcnow()
    taken = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            or_(
                Job.status == "queued",
                (Job.status == "running") & (Job.heartbeat_at < stale_before),
            ),
        )
        .values(status="running", worker=worker, started_at=now, heartbeat_at=now)
        .returning(Job.id),
    ).scalar_one_or_none()
    if taken is None:
        return None
    session.expire_all()
    return session.get(Job, job_id)


def beat(session: Session, job_ids: Sequence[int]) -> None:
    """The jobs' workers are alive: their claims stay theirs."""
    if job_ids:
        session.execute(
            update(Job)
            .where(Job.id.in_(list(job_ids)), Job.status == "running")
            .values(heartbeat_at=utcnow())
        )


def finish_job(
    session: Session,
    job_id: int,
    *,
    status: str,
    reason: str | None,
    details: str | None,
    result: dict[str, Any] | None,
    files: Sequence[str],
) -> bool:
    """Record how a running job ended; False when it is not running any more (gone)."""
    ended = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "running")
        .values(
            status=status,
            reason=reason[:1000] if reason else None,
            details=details,
            result=result,
            files=list(files),
            finished_at=utcnow(),
        )
        .returning(Job.id)
    ).scalar_one_or_none()
    return ended is not None
