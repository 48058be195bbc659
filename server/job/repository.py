"""SQL for jobs: add, read, list a run's, cancel, and the worker's claim, heartbeat and outcome.
Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, or_, select, update
from sqlalchemy.orm import Session

from server.errors import NotFound
from server.events import record_event
from server.models import Job, utcnow

ACTIVE: tuple[str, ...] = ("running", "cancelling")
"""A worker holds a job in these."""


def record_job_event(session: Session, *, job_id: int, run_id: int, kind: str, status: str) -> None:
    """A `job` event on the run's stream: the job's id, kind and status now."""
    record_event(session, "job", run_id, {"job_id": job_id, "job_kind": kind, "status": status})


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


def beat(session: Session, job_ids: Sequence[int]) -> dict[int, str]:
    """The jobs' workers are alive: their claims stay theirs. Returns the status of each job
    still running or cancelling (a job missing was ended or deleted meanwhile)."""
    if not job_ids:
        return {}
    rows = session.execute(
        update(Job)
        .where(Job.id.in_(list(job_ids)), Job.status.in_(ACTIVE))
        .values(heartbeat_at=utcnow())
        .returning(Job.id, Job.status)
    ).all()
    return {job_id: status for job_id, status in rows}  # noqa: C416 (rows are tuples)


def request_cancel(session: Session, job_id: int, *, reason: str) -> bool:
    """A queued job ends `cancelled` now; a running one becomes `cancelling` for its worker to
    stop. False when it is neither (it ended, or is cancelling already)."""
    now = utcnow()
    queued = Job.status == "queued"
    changed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(("queued", "running")))
        .values(
            status=case((queued, "cancelled"), else_="cancelling"),
            reason=reason[:1000],
            finished_at=case((queued, now), else_=None),
        )
        .returning(Job.id)
    ).scalar_one_or_none()
    if changed is not None:
        session.expire_all()
    return changed is not None


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
    """Record how a running (or cancelling) job ended; False when it is neither any more."""
    ended = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(ACTIVE))
        .values(
            status=status,
            # A cancelled job keeps the reason its cancel gave (who asked) unless told another.
            reason=reason[:1000] if reason else (Job.reason if status == "cancelled" else None),
            details=details,
            result=result,
            files=list(files),
            finished_at=utcnow(),
        )
        .returning(Job.id)
    ).scalar_one_or_none()
    return ended is not None
