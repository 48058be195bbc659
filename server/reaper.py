"""Notice lost runs and workers: a periodic task in the API process.

A run in `running` or `cancelling` whose heartbeat is older than `heartbeat_timeout_s` lost its
worker. While it has retries left (`attempt < max_retries`) it is queued again: a worker resumes
it from its `last` checkpoint, or starts it over when the worker died before the first one was
written. Otherwise it fails with "worker lost (no heartbeat for N s)". Several API processes may
run reapers: rows are locked with SKIP LOCKED (PostgreSQL) and each update re-checks the status,
so a run is handled once.
A running evaluate, predict or export job whose heartbeat is older than the timeout fails the
same way ("worker lost"); it can be queued again from its run.
An external run whose tracker announced a heartbeat (`heartbeat_timeout_s`) and fell silent for
longer fails the same way: its training process was killed.
A queued run whose message went out `redispatch_after_s` ago while a worker serving its queue has
been idle at least that long is sent again: its send failed after the commit, or the broker lost
it. Workers take one message at a time and acknowledge it when the run ends, so an idle worker
leaves no message waiting in its queues.
Each pass also drops workers not seen within the timeout, deletes events past their retention
and sweeps metric points left behind by recently deleted runs.
After a pass that failed (the database was away), heartbeats are judged again only once the
reaper has reached the database for `heartbeat_timeout_s`: the workers' beats failed during the
outage as well, and their runs go on (see `SEGTRACK_WORKER_OUTAGE_LIMIT_S`); one timeout is what
they need to be seen again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import anyio.to_thread
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from server.auth.repository import delete_expired_access
from server.db import session_scope
from server.job.repository import record_job_event
from server.models import Event, Job, Metric, Run, utcnow
from server.preview.repository import get_checkpoint
from server.queue import TaskQueue
from server.run.lifecycle import RUNNING_STATUSES, FinalStatus, dispatch, end_now, enqueue
from server.settings import Settings
from server.worker_status.repository import drop_stale_workers, idle_queues

logger = logging.getLogger(__name__)

SWEEP_WINDOW = timedelta(hours=1)


@dataclass
class ReapReport:
    """What one pass did."""

    failed: list[int] = field(default_factory=list)
    failed_jobs: list[int] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)
    redispatched: list[int] = field(default_factory=list)
    dropped_workers: list[str] = field(default_factory=list)
    deleted_events: int = 0
    swept_points: int = 0
    expired_sessions: int = 0


def sweep_deleted_runs(session: Session, since: datetime) -> int:
    """Delete points of runs deleted after `since`: an ingest that committed while its run was
    being deleted leaves them behind (metrics have no foreign key). Returns how many went."""
    deleted_runs = select(Event.run_id).where(
        Event.kind == "run",
        Event.created_at >= since,
        Event.payload["action"].as_string() == "deleted",
    )
    result = session.execute(delete(Metric).where(Metric.run_id.in_(deleted_runs)))
    return int(result.rowcount)  # type: ignore[attr-defined]


def redispatch_stranded(
    session: Session, settings: Settings, task_queue: TaskQueue, now: datetime
) -> list[int]:
    """Send again the queued runs that an idle worker should have taken; returns their ids."""
    waited = now - timedelta(seconds=settings.redispatch_after_s)
    queues = idle_queues(
        session,
        seen_after=now - timedelta(seconds=settings.heartbeat_timeout_s),
        idle_before=waited,
    )
    if not queues:
        return []
    stranded = session.scalars(
        select(Run)
        .where(
            Run.status == "queued",
            Run.external.is_(False),
            Run.queue.in_(sorted(queues)),
            func.coalesce(Run.sent_at, Run.queued_at, Run.created_at) <= waited,
        )
        .order_by(Run.priority.desc(), Run.queued_at, Run.id)
        .with_for_update(skip_locked=True)
    ).all()
    for run in stranded:
        logger.warning(
            "run %d: still queued %.0f s after its message was sent while a worker on queue %s "
            "is idle; sending it again",
            run.id,
            (now - (run.sent_at or run.queued_at or run.created_at)).total_seconds(),
            run.queue,
        )
        dispatch(session, task_queue, run)
    return [run.id for run in stranded]


def fail_silent_trackers(session: Session, now: datetime) -> list[int]:
    """End the external runs whose tracker stopped sending heartbeats for longer than the limit
    it announced (a killed training process); returns their ids."""
    tracked = session.scalars(
        select(Run)
        .where(
            Run.status.in_(RUNNING_STATUSES),
            Run.external.is_(True),
            Run.heartbeat_timeout_s.is_not(None),
        )
        .order_by(Run.id)
        .with_for_update(skip_locked=True)
    ).all()
    silent = []
    for run in tracked:
        limit = run.heartbeat_timeout_s or 0
        last = run.heartbeat_at or run.started_at or run.created_at
        if (now - last).total_seconds() <= limit:
            continue
        reason = f"the training process stopped sending heartbeats (none for {limit} s)"
        logger.warning("run %d: %s", run.id, reason)
        outcome: FinalStatus = "cancelled" if run.status == "cancelling" else "failed"
        end_now(session, run, outcome, failure_reason=reason)
        silent.append(run.id)
    return silent


def fail_lost_jobs(session: Session, now: datetime, timeout_s: float) -> list[int]:
    """End the running jobs whose worker stopped beating their heartbeat (failed; a job being
    cancelled ends cancelled, as asked); returns their ids."""
    cutoff = now - timedelta(seconds=timeout_s)
    lost = session.scalars(
        select(Job)
        .where(
            Job.status.in_(("running", "cancelling")),
            func.coalesce(Job.heartbeat_at, Job.started_at) < cutoff,
        )
        .order_by(Job.id)
        .with_for_update(skip_locked=True)
    ).all()
    for job in lost:
        if job.status == "cancelling":
            job.status = "cancelled"
            job.reason = f"{job.reason or 'cancelled'}; its worker was lost meanwhile"
        else:
            job.status = "failed"
            job.reason = (
                f"worker lost (no heartbeat for {timeout_s:g} s); queue the {job.kind} again "
                f"from run {job.run_id}"
            )
        job.finished_at = now
        record_job_event(
            session, job_id=job.id, run_id=job.run_id, kind=job.kind, status=job.status
        )
        logger.warning(
            "job %d (run %d): %s; worker was %s", job.id, job.run_id, job.reason, job.worker
        )
    return [job.id for job in lost]


def reap_once(
    session: Session,
    settings: Settings,
    task_queue: TaskQueue,
    now: datetime | None = None,
    *,
    judge_heartbeats: bool = True,
) -> ReapReport:
    """One pass over lost runs, stranded queued runs, stale workers and expired events (in the
    caller's transaction); with `judge_heartbeats` False, runs and workers are not declared lost
    (the heartbeats may have failed for the reaper's own reason: an outage of the database)."""
    now = now or utcnow()
    report = ReapReport()
    if judge_heartbeats:
        _reap_lost(session, settings, task_queue, now, report)
    report.redispatched = redispatch_stranded(session, settings, task_queue, now)
    report.swept_points = sweep_deleted_runs(session, now - SWEEP_WINDOW)
    expired = now - timedelta(seconds=settings.event_retention_s)
    deleted = session.execute(delete(Event).where(Event.created_at < expired))
    report.deleted_events = int(deleted.rowcount)  # type: ignore[attr-defined]
    report.expired_sessions = delete_expired_access(session, now)
    return report


def _reap_lost(
    session: Session, settings: Settings, task_queue: TaskQueue, now: datetime, report: ReapReport
) -> None:
    """Fail or requeue the runs, and drop the workers, whose heartbeats stopped."""
    timeout = settings.heartbeat_timeout_s
    cutoff = now - timedelta(seconds=timeout)
    last_sign = func.coalesce(Run.heartbeat_at, Run.started_at, Run.queued_at, Run.created_at)
    lost = session.scalars(
        select(Run)
        .where(Run.status.in_(RUNNING_STATUSES), Run.external.is_(False), last_sign < cutoff)
        .order_by(Run.id)
        .with_for_update(skip_locked=True)
    ).all()
    for run in lost:
        if run.attempt < run.max_retries and run.status == "running":
            run.attempt += 1
            checkpoint = get_checkpoint(session, run.id, "last")
            logger.warning(
                "run %d: worker %s lost; requeued to %s (attempt %d of %d)",
                run.id,
                run.worker,
                f"resume after epoch {checkpoint.epoch}" if checkpoint else "start over",
                run.attempt,
                run.max_retries,
            )
            enqueue(session, task_queue, run, resume=checkpoint is not None)
            report.requeued.append(run.id)
        else:
            reason = f"worker lost (no heartbeat for {timeout:g} s)"
            logger.warning("run %d: %s; worker was %s", run.id, reason, run.worker)
            # A run being cancelled when its worker died ends as the user asked; one its sweep
            # was pruning ends pruned (its finished epochs are stored), as it was about to.
            outcome: FinalStatus = "cancelled" if run.status == "cancelling" else "failed"
            if outcome == "failed" and run.prune_requested_at is not None:
                outcome = "pruned"
            end_now(session, run, outcome, failure_reason=reason)
            report.failed.append(run.id)
    report.failed += fail_silent_trackers(session, now)
    report.failed_jobs = fail_lost_jobs(session, now, timeout)
    report.dropped_workers = drop_stale_workers(session, cutoff)


async def run_reaper(
    factory: sessionmaker[Session],
    settings: Settings,
    task_queue: TaskQueue,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Reap every `reaper_interval_s` until cancelled; a failing pass is logged and retried,
    and the passes after it leave heartbeats alone for `heartbeat_timeout_s`."""
    failed_at: float | None = None

    def one_pass(judge_heartbeats: bool) -> ReapReport:
        with session_scope(factory) as session:
            return reap_once(session, settings, task_queue, judge_heartbeats=judge_heartbeats)

    while True:
        judge = failed_at is None or clock() - failed_at >= settings.heartbeat_timeout_s
        try:
            report = await anyio.to_thread.run_sync(one_pass, judge)
            if report.failed or report.requeued or report.redispatched or report.dropped_workers:
                logger.info(
                    "reaper: failed %s, requeued %s, sent again %s, dropped workers %s",
                    report.failed, report.requeued, report.redispatched, report.dropped_workers,
                )  # fmt: skip
        except Exception:
            failed_at = clock()
            logger.exception(
                "reaper pass failed; trying again in %.0f s (lost runs are judged again once "
                "passes succeed for %g s)",
                settings.reaper_interval_s,
                settings.heartbeat_timeout_s,
            )
        await asyncio.sleep(settings.reaper_interval_s)
