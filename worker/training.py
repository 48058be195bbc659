"""One run on this worker, in one task thread: claim it on free slots, supervise its training
process, record how it ended.

The claim takes the most urgent queued run that fits this worker's slots; when that run needs
more slots than are free, the thread waits for them (head-of-line reservation, see
`server.run.lifecycle.claim_next`). The run then trains in a child process of its own
(`worker.run_process`), beside this worker's system metrics sampling, while the heartbeat keeps
it alive and brings cancels. A child that dies (a segfault, a CUDA error, the OOM killer) fails
its run with its exit status and the last lines of its log; the worker goes on serving.

Every write goes through `worker.retry`, so a busy or unreachable database delays the claim or
the outcome but never loses them, for up to the worker's outage limit. A worker asked to shut
down (SIGTERM, Ctrl-C) stops its runs like a cancel and records them `cancelled` with a reason
that says so; they can be resumed from their last checkpoint.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from server.artifacts import checkpoint_dir, log_path
from server.db import session_scope
from server.events import notify_committed
from server.run.lifecycle import FinalStatus, SlotWait, claim_next, finish_run
from server.settings import Settings
from worker.heartbeat import Heartbeat, WorkerIdentity
from worker.retry import OUTAGE_LIMIT_SETTING, retry_write
from worker.run_logging import run_logging
from worker.run_process import ChildExit, RunProcess, describe_exit
from worker.slots import Slot, SlotPool
from worker.system_metrics import SystemMetricsRecorder

logger = logging.getLogger(__name__)

SHUTDOWN_REASON = "stopped: the worker was shut down"
SLOT_RECHECK_S = 2.0
"""A thread waiting for slots claims again this often (the queue may have changed)."""


class TaskThreads:
    """How many of the worker's task threads (one per slot) are busy with a run, or waiting
    for slots for one."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._busy = 0
        self._lock = threading.Lock()

    def taking_messages(self) -> bool:
        """Whether a thread is free to take a message."""
        with self._lock:
            return self._busy < self.count

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Count the calling thread as busy within the block."""
        with self._lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1


@dataclass(frozen=True)
class WorkerContext:
    """What a worker process holds for all the runs it trains."""

    settings: Settings
    sessions: sessionmaker[Session]
    identity: WorkerIdentity
    slots: SlotPool
    threads: TaskThreads
    heartbeat: Heartbeat
    shutting_down: threading.Event = field(default_factory=threading.Event)
    """Set when the worker is asked to stop: its runs stop, no new one starts."""

    def cpu_threads(self) -> int:
        """OpenMP threads per training process: the host's cores shared by the slots."""
        return max((os.cpu_count() or 1) // self.slots.capacity, 1)


@dataclass(frozen=True)
class Outcome:
    """How a run ended, as stored on the run."""

    status: FinalStatus
    reason: str | None = None
    details: str | None = None


@dataclass(frozen=True)
class Claimed:
    """The run a message gave this worker, and the slots it trains on."""

    run_id: int
    resume: bool
    slots: tuple[Slot, ...]


def _claim_once(
    context: WorkerContext, message_run_id: int, task_id: str | None, free: list[str]
) -> Claimed | SlotWait | None:
    """One claim on the `free` slots (their labels); the caller holds `slots.claiming`."""
    identity, pool = context.identity, context.slots

    def claim() -> tuple[int, bool, list[str]] | SlotWait | None:
        with session_scope(context.sessions) as session:
            run = claim_next(
                session,
                message_run_id,
                queues=identity.queues,
                worker=identity.name,
                device=identity.device,
                free_slots=free,
                capacity=pool.capacity,
                task_id=task_id,
            )
            if run is None or isinstance(run, SlotWait):
                return run
            return run.id, run.resume_requested, free[: run.gpus]

    result = retry_write(
        claim,
        what=f"claim of run {message_run_id}",
        limit_s=context.settings.worker_outage_limit_s,
        setting=OUTAGE_LIMIT_SETTING,
    )
    if isinstance(result, SlotWait):
        return result
    notify_committed(context.settings.redis_url)
    if result is None:
        return None
    run_id, resume, labels = result
    return Claimed(run_id, resume, pool.hold(run_id, labels))


def _claim(context: WorkerContext, message_run_id: int, task_id: str | None) -> Claimed | None:
    """Claim the next run on free slots, waiting while the most urgent one needs more."""
    pool = context.slots
    waiting_for: int | None = None
    while not context.shutting_down.is_set():
        releases = pool.releases
        with pool.claiming:
            free = [slot.label for slot in pool.free()]
            result = _claim_once(context, message_run_id, task_id, free)
        if not isinstance(result, SlotWait):
            return result
        if waiting_for != result.run_id:
            logger.info(
                "run %d goes next and needs %d slots; %d free: waiting for them",
                result.run_id, result.gpus, result.free,
            )  # fmt: skip
            waiting_for = result.run_id
        pool.wait_for_release(releases, SLOT_RECHECK_S)
    return None


def _shutdown_outcome(resumable: bool, epochs_done: int | None) -> Outcome:
    """A run the worker's shutdown stopped: cancelled, saying how to carry on."""
    if resumable and epochs_done:
        advice = f"resume it to continue after epoch {epochs_done}"
    elif resumable:
        advice = "resume it to continue from its last checkpoint"
    else:
        advice = "it stopped before its first checkpoint; clone it to start over"
    return Outcome("cancelled", f"{SHUTDOWN_REASON}; {advice}")


def _outcome(context: WorkerContext, claimed: Claimed, ended: ChildExit) -> Outcome:
    """What to record for a run whose training process ended as `ended`."""
    report = ended.outcome
    if report is not None and report.status != "stopped":
        return Outcome(report.status, report.reason, report.details)
    if report is None and not ended.stop_asked:
        return Outcome("failed", describe_exit(ended.returncode), ended.log_tail or None)
    by_shutdown = context.shutting_down.is_set() and not context.heartbeat.stop_requested(
        claimed.run_id
    )
    if by_shutdown:
        if report is not None:
            return _shutdown_outcome(report.resumable, report.epochs_done)
        last = checkpoint_dir(context.settings.artifacts_dir, claimed.run_id) / "last.pt"
        return _shutdown_outcome(last.exists(), None)
    if ended.signalled is not None and report is None:
        grace = context.settings.cancel_grace_s
        return Outcome(
            "cancelled", f"the training did not stop within {grace:g} s: {ended.signalled}"
        )
    return Outcome("cancelled")


def _train(context: WorkerContext, claimed: Claimed) -> Outcome:
    """Run the claimed run's training process to its end, with its system metrics."""
    settings = context.settings
    gpus = [slot.gpu for slot in claimed.slots if slot.gpu is not None]
    child = RunProcess(
        settings,
        claimed.run_id,
        resume=claimed.resume,
        gpus=gpus,
        slots=len(claimed.slots),
        cpu_threads=context.cpu_threads(),
    )
    pid = child.start()
    recorder = SystemMetricsRecorder(
        run_id=claimed.run_id,
        sessions=context.sessions,
        redis_url=settings.redis_url,
        root_pid=pid,
        gpu_indices=gpus,
        interval_s=settings.system_metrics_interval_s,
    )
    recorder.start()
    try:
        ended = child.supervise(
            lambda: (
                context.heartbeat.stop_requested(claimed.run_id) or context.shutting_down.is_set()
            )
        )
    finally:
        recorder.stop()
    return _outcome(context, claimed, ended)


def execute_run(context: WorkerContext, message_run_id: int, task_id: str | None = None) -> str:
    """Train the most urgent queued run this worker serves (normally `message_run_id`, the run
    the message `task_id` was sent for); returns what happened, for Celery's log."""
    if context.shutting_down.is_set():
        # The run stays queued; the reaper sends its message again once a worker is idle.
        return "skipped: the worker is shutting down"
    with context.threads.busy():
        claimed = _claim(context, message_run_id, task_id)
        if claimed is None:
            return "skipped: nothing queued"
        run_id = claimed.run_id
        if run_id != message_run_id:
            logger.info("message of run %d takes run %d, which goes first", message_run_id, run_id)
        context.heartbeat.watch(run_id)
        try:
            with run_logging(run_id, log_path(context.settings.artifacts_dir, run_id)):
                labels = ", ".join(slot.label for slot in claimed.slots)
                logger.info("%s starts the run on slots %s", context.identity.name, labels)
                outcome = _train(context, claimed)
                if outcome.reason:
                    logger.log(
                        logging.ERROR if outcome.status == "failed" else logging.WARNING,
                        "run %s: %s",
                        outcome.status,
                        outcome.reason,
                    )

                def record_outcome() -> None:
                    with session_scope(context.sessions) as session:
                        finish_run(
                            session,
                            run_id,
                            outcome.status,
                            failure_reason=outcome.reason,
                            failure_traceback=outcome.details,
                        )

                retry_write(
                    record_outcome,
                    what=f"outcome of run {run_id} ({outcome.status})",
                    limit_s=context.settings.worker_outage_limit_s,
                    setting=OUTAGE_LIMIT_SETTING,
                )
                notify_committed(context.settings.redis_url)
        finally:
            context.slots.release(run_id)
            context.heartbeat.unwatch(run_id)
    return f"run {run_id} {outcome.status}"
