"""One training run on this worker: claim it, train it, record how it ended.

Every write goes through `worker.retry`, so a busy or briefly unreachable database delays the
claim or the outcome but never loses them. A worker asked to shut down (SIGTERM, Ctrl-C) stops
its run cooperatively, like a cancel, and records it `cancelled` with a reason that says so; the
run can be resumed from its last checkpoint. Stored tracebacks never carry SQL parameters.
"""

from __future__ import annotations

import gc
import logging
import re
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any

import torch
from sqlalchemy.orm import Session, sessionmaker

from server.artifacts import checkpoint_dir, log_path
from server.db import session_scope
from server.events import notify_committed
from server.run.lifecycle import FinalStatus, SlotWait, claim_next, finish_run
from server.settings import Settings
from trainer.config import ConfigError, validate_config
from trainer.data.report import DatasetError
from trainer.loop import FitResult, TrainingError, fit
from trainer.reporting import ConsoleReporter, MultiReporter
from worker.heartbeat import Heartbeat, WorkerIdentity
from worker.reporter import DbReporter
from worker.retry import retry_write
from worker.run_logging import run_logging

logger = logging.getLogger(__name__)

SHUTDOWN_REASON = "stopped: the worker was shut down"
_SQL_PARAMETERS = re.compile(r"^\[parameters: .*\]$", re.MULTILINE)


@dataclass(frozen=True)
class WorkerContext:
    """What a worker process holds for all the runs it trains."""

    settings: Settings
    sessions: sessionmaker[Session]
    identity: WorkerIdentity
    heartbeat: Heartbeat
    shutting_down: threading.Event = field(default_factory=threading.Event)
    """Set when the worker is asked to stop: the current run stops, no new one starts."""

    def should_stop(self) -> bool:
        """Whether the training should stop: its run was cancelled or the worker stops."""
        return self.heartbeat.stop_requested or self.shutting_down.is_set()


@dataclass(frozen=True)
class Outcome:
    """How a run ended, as stored on the run."""

    status: FinalStatus
    reason: str | None = None
    details: str | None = None


@dataclass(frozen=True)
class Claimed:
    """The run a message gave this worker."""

    run_id: int
    config: dict[str, Any]
    resume: bool


def without_sql_parameters(text: str) -> str:
    """`text` (an error message or traceback) without the `[parameters: ...]` lines SQLAlchemy
    adds to database errors: they may hold anything a statement carried."""
    return _SQL_PARAMETERS.sub("[SQL parameters hidden]", text)


def _claim(context: WorkerContext, run_id: int, task_id: str | None) -> Claimed | None:
    identity = context.identity

    def claim() -> Claimed | None:
        with session_scope(context.sessions) as session:
            run = claim_next(
                session,
                run_id,
                queues=identity.queues,
                worker=identity.name,
                device=identity.device,
                task_id=task_id,
            )
            # One slot, which a claim only hands out free: a run never waits for slots here.
            assert not isinstance(run, SlotWait)
            return (
                None
                if run is None
                else Claimed(run.id, dict(run.config or {}), run.resume_requested)
            )

    claimed = retry_write(claim, what=f"claim of run {run_id}")
    notify_committed(context.settings.redis_url)
    return claimed


def _shutdown_outcome(result: FitResult) -> Outcome:
    """A run the worker's shutdown stopped: cancelled, saying how to carry on."""
    if result.last_checkpoint is not None and result.epochs_done > 0:
        advice = f"resume it to continue after epoch {result.epochs_done}"
    else:
        advice = "it stopped before its first checkpoint; clone it to start over"
    return Outcome("cancelled", f"{SHUTDOWN_REASON}; {advice}")


def _train(context: WorkerContext, run_id: int, config: dict[str, Any], resume: bool) -> Outcome:
    settings = context.settings
    out_dir = checkpoint_dir(settings.artifacts_dir, run_id)
    last = out_dir / "last.pt"
    try:
        cfg = validate_config(config)
        reporter = MultiReporter(
            [
                DbReporter(
                    run_id=run_id,
                    sessions=context.sessions,
                    artifacts_dir=settings.artifacts_dir,
                    redis_url=settings.redis_url,
                    stop_requested=context.should_stop,
                ),
                # Epoch summaries and warnings in the run's log, which the run page tails.
                ConsoleReporter(progress_bars=False),
            ]
        )
        resume_from = last if resume and last.exists() else None
        if resume and resume_from is None:
            logger.warning("resume asked but %s is missing; starting from scratch", last)
        result = fit(cfg, reporter, out_dir=out_dir, resume_from=resume_from)
    except TrainingError as error:
        return Outcome("failed", error.reason, without_sql_parameters(traceback.format_exc()))
    except (ConfigError, DatasetError) as error:
        return Outcome("failed", str(error), str(error))
    except Exception as error:
        logger.exception("run failed")
        return Outcome(
            "failed",
            without_sql_parameters(f"{type(error).__name__}: {error}"),
            without_sql_parameters(traceback.format_exc()),
        )
    if result.status == "stopped":
        stopped_by_shutdown = (
            context.shutting_down.is_set() and not context.heartbeat.stop_requested
        )
        return _shutdown_outcome(result) if stopped_by_shutdown else Outcome("cancelled")
    logger.info("run %s after %d epochs", result.status, result.epochs_done)
    return Outcome("succeeded")


def execute_run(context: WorkerContext, message_run_id: int, task_id: str | None = None) -> str:
    """Train the most urgent queued run this worker serves (normally `message_run_id`, the run
    the message `task_id` was sent for); returns what happened, for Celery's log."""
    if context.shutting_down.is_set():
        # The run stays queued; the reaper sends its message again once a worker is idle.
        return "skipped: the worker is shutting down"
    claimed = _claim(context, message_run_id, task_id)
    if claimed is None:
        return "skipped: nothing queued"
    run_id = claimed.run_id
    if run_id != message_run_id:
        logger.info("message of run %d takes run %d, which goes first", message_run_id, run_id)
    context.heartbeat.watch(run_id)
    try:
        with run_logging(run_id, log_path(context.settings.artifacts_dir, run_id)):
            logger.info("%s starts the run on %s", context.identity.name, context.identity.device)
            outcome = _train(context, run_id, claimed.config, claimed.resume)
            if outcome.reason:
                logger.log(
                    logging.ERROR if outcome.status == "failed" else logging.WARNING,
                    "run %s: %s",
                    outcome.status,
                    outcome.reason,
                )
    finally:
        context.heartbeat.watch(None)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def record_outcome() -> None:
        with session_scope(context.sessions) as session:
            finish_run(
                session,
                run_id,
                outcome.status,
                failure_reason=outcome.reason,
                failure_traceback=outcome.details,
            )

    retry_write(record_outcome, what=f"outcome of run {run_id} ({outcome.status})")
    notify_committed(context.settings.redis_url)
    return f"run {run_id} {outcome.status}"
