"""GET /api/v1/workers: workers online, what they run, and the queue in the order it will run."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from sqlalchemy import select

from server.deps import SessionDep, SettingsDep
from server.models import Run, utcnow
from server.run.repository import queued_runs
from server.unit_of_work import UnitOfWorkRoute
from server.worker_status.repository import online_workers
from server.worker_status.schemas import QueuedRunOut, RunRef, WorkerOut, WorkersOut

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1", tags=["workers"])


@router.get("/workers")
def list_workers(session: SessionDep, settings: SettingsDep) -> WorkersOut:
    """Workers seen within the heartbeat timeout; queued runs by priority (high first), then age."""
    seen_after = utcnow() - timedelta(seconds=settings.heartbeat_timeout_s)
    workers = online_workers(session, seen_after)
    run_ids = [worker.current_run_id for worker in workers if worker.current_run_id is not None]
    names: dict[int, str] = dict(
        session.execute(select(Run.id, Run.name).where(Run.id.in_(run_ids))).all()
    )

    return WorkersOut(
        workers=[
            WorkerOut(
                name=worker.name,
                hostname=worker.hostname,
                pid=worker.pid,
                device=worker.device,
                queues=list(worker.queues),
                current_run=RunRef(id=worker.current_run_id, name=names[worker.current_run_id])
                if worker.current_run_id in names
                else None,
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
            )
            for position, run in enumerate(queued_runs(session), start=1)
        ],
    )
