"""One job (evaluate, predict, export) on this worker, in one task thread: take a free slot,
claim the job, run it in a child process on that slot, record how it ended.

A job needs a slot as a run does, so it never shares a GPU with a training: it waits until one
of the worker's slots is free and holds it (as `-job_id` in the slot pool, so it cannot be taken
for a run's id) until its process has exited. The claim is atomic: a queued job, or a running
one whose worker stopped beating (it died and the message came back); every other copy of the
message is turned away, and so is a job cancelled while it was queued. The process
(`worker.job_child`) gets `request.json` in the job's folder and writes `outcome.json` there;
the worker beats the job's heartbeat meanwhile, and the status each beat reads back is how a
cancel reaches it: a `cancelling` job's process is stopped (SIGTERM to its process group, SIGKILL
after a grace period) and the job ends `cancelled`. Then the worker stores the outcome, and for
a test-split evaluation the `test/*` metrics on the run, in one transaction. The claim and the
outcome each record a `job` event on the run's stream.

Test metrics are stored at step = epoch = the checkpoint's epoch, so they chart beside the
training curves at the epoch the evaluated weights come from and compare across runs by key;
a second evaluation of the same checkpoint overwrites them (the metric upsert is idempotent).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from server.artifacts import checkpoint_path
from server.db import session_scope
from server.events import notify_committed
from server.job import repository
from server.job.paths import LOG_NAME, OUTCOME_NAME, job_dir
from server.metric.points import MetricPoint
from server.metric.service import record_metrics
from server.models import Run, utcnow
from worker.job_outcome import REQUEST_NAME, JobOutcome, JobRequest
from worker.retry import OUTAGE_LIMIT_SETTING, retry_write
from worker.run_process import child_environment, describe_exit, log_tail
from worker.slots import Slot
from worker.training import SLOT_RECHECK_S, WorkerContext

logger = logging.getLogger(__name__)

BEAT_S = 5.0
"""How often a running job's heartbeat is written."""
SHUTDOWN_REASON = "stopped: the worker was shut down; submit the job again"
STOP_GRACE_S = 10.0
"""How long a stopped job's process has after SIGTERM before SIGKILL."""
CHILD_MODULE = "worker.job_child"
"""The module a job's process runs (`python -m CHILD_MODULE JOB_DIR`)."""


class JobDeferred(Exception):  # noqa: N818 (it is no error)
    """The worker is shutting down: the job stays queued for the next worker."""


@dataclass(frozen=True)
class ClaimedJob:
    job_id: int
    run_id: int
    kind: str
    parameters: dict[str, Any]


def _claim(context: WorkerContext, job_id: int) -> ClaimedJob | None:
    """Claim the job in the database; None when it is not this worker's to do."""
    stale = timedelta(seconds=context.settings.heartbeat_timeout_s)

    def claim() -> ClaimedJob | None:
        with session_scope(context.sessions) as session:
            job = repository.claim_job(
                session, job_id, worker=context.identity.name, stale_before=utcnow() - stale
            )
            if job is None:
                return None
            repository.record_job_event(
                session, job_id=job.id, run_id=job.run_id, kind=job.kind, status=job.status
            )
            return ClaimedJob(job.id, job.run_id, job.kind, dict(job.parameters))

    claimed = retry_write(
        claim,
        what=f"claim of job {job_id}",
        limit_s=context.settings.worker_outage_limit_s,
        setting=OUTAGE_LIMIT_SETTING,
    )
    if claimed is not None:
        notify_committed(context.settings.redis_url)
    return claimed


def claim_on_slot(context: WorkerContext, job_id: int) -> tuple[ClaimedJob, Slot] | None:
    """Wait for a free slot, then claim the job on it (the slot is held for the job)."""
    pool = context.slots
    while not context.shutting_down.is_set():
        releases = pool.releases
        with pool.claiming:
            free = pool.free()
            if free:
                claimed = _claim(context, job_id)
                if claimed is None:
                    return None
                # The last free slot: runs are handed the first ones.
                (slot,) = pool.hold(-job_id, [free[-1].label])
                return claimed, slot
        pool.wait_for_release(releases, SLOT_RECHECK_S)
    return None


def _beat(context: WorkerContext, job_id: int) -> str | None:
    """Beat the job's heartbeat; its status now (`gone` when it ended or was deleted meanwhile,
    None when the database could not be reached)."""
    try:
        with session_scope(context.sessions) as session:
            return repository.beat(session, [job_id]).get(job_id, "gone")
    except Exception as error:  # a missed beat is not fatal; the next one may get through
        logger.warning("job %d: could not write its heartbeat: %s", job_id, error)
        return None


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the job's process group, SIGKILL it after a grace period."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _run_child(context: WorkerContext, claimed: ClaimedJob, slot: Slot) -> JobOutcome:
    """Do the job in a child process on `slot` and say how it ended."""
    settings = context.settings
    folder = job_dir(settings.artifacts_dir, claimed.run_id, claimed.job_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / OUTCOME_NAME).unlink(missing_ok=True)  # an earlier attempt's
    checkpoint = checkpoint_path(
        settings.artifacts_dir, claimed.run_id, claimed.parameters["checkpoint"]
    )
    JobRequest(
        claimed.job_id, claimed.run_id, claimed.kind, str(checkpoint), claimed.parameters
    ).write(folder / REQUEST_NAME)
    log = folder / LOG_NAME
    gpus = [slot.gpu] if slot.gpu is not None else []
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", CHILD_MODULE, str(folder)],
            env=child_environment(gpus, cpu_threads=context.cpu_threads()),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    logger.info("job %d (%s) runs in process %d", claimed.job_id, claimed.kind, process.pid)
    while True:
        try:
            returncode = process.wait(timeout=BEAT_S)
            break
        except subprocess.TimeoutExpired:
            pass
        if context.shutting_down.is_set():
            _stop(process)
            return JobOutcome("failed", SHUTDOWN_REASON)
        status = _beat(context, claimed.job_id)
        if status in ("cancelling", "gone"):
            logger.info("job %d is %s; stopping its process", claimed.job_id, status)
            _stop(process)
            # The reason the cancel stored (who asked) stays.
            return JobOutcome("cancelled")
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # what the process left behind in its group
    outcome = JobOutcome.read(folder / OUTCOME_NAME)
    if outcome is None:
        reason = describe_exit(returncode).replace("training process", "job process")
        return JobOutcome("failed", reason, log_tail(log) or None)
    return outcome


def evaluation_points(claimed: ClaimedJob, outcome: JobOutcome) -> list[MetricPoint]:
    """The `test/*` metrics a succeeded test-split evaluation attaches to its run."""
    result = outcome.result or {}
    if claimed.kind != "evaluate" or outcome.status != "succeeded" or result.get("split") != "test":
        return []
    epoch = int(result["epoch"])
    metrics: dict[str, Any] = result.get("metrics") or {}
    return [
        MetricPoint(key, epoch, float(value), epoch)
        for key, value in sorted(metrics.items())
        if key.startswith("test/") and isinstance(value, int | float)
    ]


def _record(context: WorkerContext, claimed: ClaimedJob, outcome: JobOutcome) -> None:
    points = evaluation_points(claimed, outcome)

    def record() -> None:
        with session_scope(context.sessions) as session:
            # The run is held while its metrics change, as every metric writer holds it.
            held = session.scalar(select(Run.id).where(Run.id == claimed.run_id).with_for_update())
            ended = repository.finish_job(
                session,
                claimed.job_id,
                status=outcome.status,
                reason=outcome.reason,
                details=outcome.details,
                result=outcome.result,
                files=outcome.files,
            )
            if ended:
                repository.record_job_event(
                    session,
                    job_id=claimed.job_id,
                    run_id=claimed.run_id,
                    kind=claimed.kind,
                    status=outcome.status,
                )
            if ended and held is not None and points:
                # As every metric write: checked, upserted, and a `metrics` event for the
                # run's open pages.
                record_metrics(session, claimed.run_id, points)

    retry_write(
        record,
        what=f"outcome of job {claimed.job_id} ({outcome.status})",
        limit_s=context.settings.worker_outage_limit_s,
        setting=OUTAGE_LIMIT_SETTING,
    )
    notify_committed(context.settings.redis_url)


def execute_job(context: WorkerContext, job_id: int) -> str:
    """Do job `job_id` on a free slot of this worker; returns what happened, for Celery's log.

    Raises:
        JobDeferred: the worker is shutting down and did not claim the job.
    """
    if context.shutting_down.is_set():
        raise JobDeferred(f"job {job_id} waits for another worker: this one is shutting down")
    with context.threads.busy():
        taken = claim_on_slot(context, job_id)
        if taken is None and context.shutting_down.is_set():
            raise JobDeferred(f"job {job_id} waits for another worker: this one is shutting down")
        if taken is None:
            return f"skipped: job {job_id} is not queued"
        claimed, slot = taken
        context.heartbeat.beat()  # the workers page shows the slot busy with the job now
        try:
            logger.info("job %d (%s) of run %d on slot %s", job_id, claimed.kind,
                        claimed.run_id, slot.label)  # fmt: skip
            outcome = _run_child(context, claimed, slot)
            if outcome.reason:
                logger.warning("job %d %s: %s", job_id, outcome.status, outcome.reason)
            _record(context, claimed, outcome)
        finally:
            context.slots.release(-job_id)
            context.heartbeat.beat()
    return f"job {job_id} {outcome.status}"
