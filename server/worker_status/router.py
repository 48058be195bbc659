"""GET /api/v1/workers: workers online, which run or job holds each of their slots (GPUs), and
the queue in the order it will run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from server.deps import SessionDep, SettingsDep
from server.models import Job, Run, utcnow
from server.run.repository import queued_runs
from server.unit_of_work import UnitOfWorkRoute
from server.worker_status.repository import online_workers
from server.worker_status.schemas import (
    JobRef,
    QueuedRunOut,
    RunRef,
    SlotOut,
    WorkerOut,
    WorkersOut,
)

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1", tags=["workers"])


@router.get("/workers")
def list_workers(session: SessionDep, settings: SettingsDep) -> WorkersOut:
    """Workers seen within the heartbeat timeout; queued runs by priority (high first), then age."""
    seen_after = utcnow() - timedelta(seconds=settings.heartbeat_timeout_s)
    workers = online_workers(session, seen_after)
    slots = [slot for worker in workers for slot in worker.slots]
    job_ids = {slot["job_id"] for slot in slots if slot.get("job_id")}
    jobs = {
        job_id: (kind, status, run_id)
        for job_id, kind, status, run_id in session.execute(
            select(Job.id, Job.kind, Job.status, Job.run_id).where(Job.id.in_(job_ids))
        )
    }
    run_ids = {slot["run_id"] for slot in slots if slot.get("run_id")}
    run_ids |= {run_id for _, _, run_id in jobs.values()}
    names: dict[int, str] = dict(
        session.execute(select(Run.id, Run.name).where(Run.id.in_(run_ids))).all()
    )

    def run_ref(run_id: int | None) -> RunRef | None:
        return RunRef(id=run_id, name=names[run_id]) if run_id in names else None

    def slot_out(slot: dict[str, Any]) -> SlotOut:
        job_id = slot.get("job_id")
        job = None
        if job_id in jobs:
            kind, status, run_id = jobs[job_id]
            job = JobRef(id=job_id, kind=kind, status=status, run=run_ref(run_id))
        return SlotOut(
            slot=slot["slot"], gpu=slot.get("gpu"), run=run_ref(slot.get("run_id")), job=job
        )

    return WorkersOut(
        workers=[
            WorkerOut(
                name=worker.name,
                hostname=worker.hostname,
                pid=worker.pid,
                device=worker.device,
                queues=list(worker.queues),
                slots=[slot_out(slot) for slot in worker.slots],
                idle_since=worker.idle_since,
                started_at=worker.started_at,
                last_seen_at=worker.last_seen_at,
            )
            for worker in workers
        ],
        queue=[
            QueuedRunOut(
                id=run.id,
                name=run.name,
                queue=run.queue,
                priority=run.priority,
                queued_at=run.queued_at,
                position=position,
                submitted_by=run.submitted_by,
            )
            for position, run in enumerate(queued_runs(session), start=1)
        ],
    )
