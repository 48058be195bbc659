"""Run state transitions shared by the API, the worker and the reaper. Never commits.

    queued -> running -> succeeded | failed | cancelled | pruned   (cancelling while a cancel is
    pending; pruned: stopped at an epoch end by its sweep's pruner)

Every transition records a `status` event in the same transaction. Messages to the broker are
sent only after the commit (`server.db.after_commit`), so a worker never receives the id of a
run that is not in the database yet.

The worker's calls, each in its own short transaction (`server.db.session_scope`):
`claim_next` once per message (again while it waits for slots), `heartbeat` every few seconds
(its answer says whether to stop), `record_start` when the trainer reports its RunInfo, then
`finish_run`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from server.db import after_commit
from server.events import record_event
from server.models import Run, utcnow
from server.queue import TaskQueue, new_task_id
from server.run.schemas import RunInfoOut

logger = logging.getLogger(__name__)

FinalStatus = Literal["succeeded", "failed", "cancelled", "pruned"]
RUNNING_STATUSES = ("running", "cancelling")
MAX_REASON = 1000


def one_line(reason: str) -> str:
    """The first non-empty line of `reason`, at most MAX_REASON characters."""
    line = next((part.strip() for part in reason.splitlines() if part.strip()), "")
    return line[: MAX_REASON - 1] + "…" if len(line) > MAX_REASON else line


def status_event(session: Session, run: Run, previous: str, **extra: Any) -> None:
    """Record that `run` moved from `previous` to its current status."""
    payload = {"status": run.status, "previous": previous, "name": run.name, **extra}
    if run.failure_reason:
        payload["failure_reason"] = run.failure_reason
    record_event(session, "status", run.id, payload)


def enqueue(session: Session, task_queue: TaskQueue, run: Run, *, resume: bool = False) -> None:
    """Put `run` in the queue and send its message once the transaction commits.

    Each send gets a fresh task id, so revoking an old message never drops a later one.
    """
    previous = run.status
    run.status = "queued"
    run.queued_at = utcnow()
    run.worker = None
    run.heartbeat_at = None
    run.finished_at = None
    if resume:
        run.resume_requested = True
        run.failure_reason = None
        run.failure_traceback = None
    dispatch(session, task_queue, run)
    if previous != "queued":
        status_event(session, run, previous, resume=resume)


def dispatch(session: Session, task_queue: TaskQueue, run: Run) -> None:
    """Send a message for the queued `run` once the transaction commits, under a fresh task id.

    Sending again is always safe: the worker's atomic claim lets one message train the run and
    turns every other copy away.
    """
    run.task_id = new_task_id()
    run.sent_at = utcnow()
    session.flush()
    run_id, queue, priority, task_id = run.id, run.queue, run.priority, run.task_id

    def send() -> None:
        try:
            task_queue.send_run(run_id, queue=queue, priority=priority, task_id=task_id)
        except Exception as error:  # every transport fails differently; the reaper recovers it
            logger.warning(
                "run %d: could not send its message to queue %s (%s); it stays queued and is "
                "sent again once a worker serving that queue is idle",
                run_id, queue, error,
            )  # fmt: skip

    after_commit(session, send)


def claim_run(
    session: Session, run_id: int, *, worker: str, device: str, slots: Sequence[str] = ()
) -> Run | None:
    """Atomically take a queued run for `worker`; None if it is not queued any more.

    None means another worker has it, or it was cancelled or deleted: a redelivered message is
    harmless. The returned run's `resume_requested` says whether to continue from its last
    checkpoint. `slots` (the worker's slots the run gets) go into the status event.
    """
    now = utcnow()
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == "queued")
        .values(
            status="running",
            worker=worker,
            device=device,
            started_at=func.coalesce(Run.started_at, now),
            heartbeat_at=now,
            finished_at=None,
            failure_reason=None,
            failure_traceback=None,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        logger.info("run %d: not queued any more; %s leaves it", run_id, worker)
        return None
    run = session.get(Run, run_id, populate_existing=True)
    assert run is not None
    status_event(session, run, "queued", worker=worker, device=device, slots=list(slots))
    return run


CLAIM_ATTEMPTS = 5
ONE_FREE_SLOT = ("0",)
"""The free slots of a worker with a single slot, idle."""


@dataclass(frozen=True)
class SlotWait:
    """The run this worker should train next needs more slots than are free now.

    The worker waits until enough of its slots are free and claims again; runs behind this one
    do not take the freed slots meanwhile, so a multi-GPU run is never starved by 1-GPU runs.
    """

    run_id: int
    gpus: int
    free: int


def claim_next(
    session: Session,
    run_id: int,
    *,
    queues: Sequence[str],
    worker: str,
    device: str,
    free_slots: Sequence[str] = ONE_FREE_SLOT,
    capacity: int | None = None,
    task_id: str | None = None,
) -> Run | SlotWait | None:
    """Take the queued run of `queues` that should go first (priority, then queue time) among
    those that fit the worker: a run fits when its `gpus` are at most the worker's `capacity`
    (its slot count; default: as many as `free_slots`).

    The run gets the first `run.gpus` of `free_slots` (the worker's free slots, in the order it
    hands them out). When the most urgent fitting run needs more slots than are free, nothing is
    claimed: the answer is a `SlotWait` for it (head-of-line reservation).

    Every queued run has a message out, but a message does not fix which run it trains: the
    worker that receives one (for `run_id`) takes the most urgent run it serves. So priorities hold
    with any broker, the embedded filesystem broker included, which delivers in sending order.
    A message still claims at most one run, and as many messages are out as runs are queued.
    Falls back to `run_id` itself, which a message sent by hand may name outside `queues`, unless
    the message (`task_id`, when known) is not that run's latest: the run was moved to another
    queue since, and a worker of that queue trains it.
    """
    total = len(free_slots) if capacity is None else capacity
    if total < len(free_slots):
        raise ValueError(f"{len(free_slots)} free slots but a capacity of {total}")
    candidates = session.execute(
        select(Run.id, Run.gpus)
        .where(Run.status == "queued", Run.queue.in_(list(queues)), Run.gpus <= total)
        .order_by(Run.priority.desc(), Run.queued_at, Run.id)
        .limit(CLAIM_ATTEMPTS)
    ).all()
    for candidate, gpus in candidates:  # another worker may take one between the read and the claim
        if gpus > len(free_slots):
            return SlotWait(candidate, gpus, len(free_slots))
        run = claim_run(session, candidate, worker=worker, device=device, slots=free_slots[:gpus])
        if run is not None:
            return run
    if run_id in (candidate for candidate, _ in candidates):
        return None
    return _claim_named(
        session,
        run_id,
        task_id=task_id,
        worker=worker,
        device=device,
        free_slots=free_slots,
        capacity=total,
    )


def _claim_named(
    session: Session,
    run_id: int,
    *,
    task_id: str | None,
    worker: str,
    device: str,
    free_slots: Sequence[str],
    capacity: int,
) -> Run | SlotWait | None:
    """`claim_next`'s fallback: the run the message names, outside the worker's queues."""
    run = session.execute(
        select(Run.task_id, Run.gpus).where(Run.id == run_id, Run.status == "queued")
    ).one_or_none()
    if run is None:
        return None
    if task_id is not None and run.task_id is not None and run.task_id != task_id:
        logger.info(
            "run %d: message %s is not its latest (the run moved to another queue); %s "
            "leaves it",
            run_id, task_id, worker,
        )  # fmt: skip
        return None
    if run.gpus > capacity:
        logger.info(
            "run %d: needs %d slots; %s has %d and leaves it", run_id, run.gpus, worker, capacity
        )
        return None
    if run.gpus > len(free_slots):
        return SlotWait(run_id, run.gpus, len(free_slots))
    return claim_run(session, run_id, worker=worker, device=device, slots=free_slots[: run.gpus])


def heartbeat(session: Session, run_id: int) -> str | None:
    """Mark the run alive; returns its status (`cancelling` means stop) or None if it is gone.

    None means the run was deleted, or it is no longer running (e.g. the reaper declared it lost):
    the worker should stop either way.
    """
    session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status.in_(RUNNING_STATUSES))
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    status = session.scalar(select(Run.status).where(Run.id == run_id))
    return status if status in RUNNING_STATUSES else None


def record_start(
    session: Session,
    run_id: int,
    *,
    class_names: list[str] | None = None,
    epochs_planned: int | None = None,
    device: str | None = None,
    run_info: RunInfoOut | None = None,
    environment: Mapping[str, Any] | None = None,
) -> None:
    """Store what the trainer reported before epoch 1 (its RunInfo and environment).

    `run_info` (image counts, channels, parameters, mask mapping, warnings) and `environment`
    (versions, host, GPUs, command, git) stay out of the event: pages read them from the run
    when the event arrives.
    """
    reported: dict[str, Any] = {
        name: value
        for name, value in (
            ("class_names", list(class_names) if class_names is not None else None),
            ("epochs_planned", epochs_planned),
            ("device", device),
        )
        if value is not None
    }
    stored: dict[str, Any] = {}
    if run_info is not None:
        stored["run_info"] = run_info.model_dump(mode="json")
    if environment is not None:
        stored["environment"] = dict(environment)
    session.execute(
        update(Run)
        .where(Run.id == run_id)
        .values(heartbeat_at=utcnow(), **reported, **stored)
        .execution_options(synchronize_session=False)
    )
    record_event(session, "run", run_id, {"action": "started", **reported})


def finish_run(
    session: Session,
    run_id: int,
    status: FinalStatus,
    *,
    failure_reason: str | None = None,
    failure_traceback: str | None = None,
    finished_at: datetime | None = None,
) -> Run | None:
    """End a running (or cancelling) run; None if it is not running any more.

    Args:
        status: succeeded, failed or cancelled.
        failure_reason: One line for people (the first line of a longer text is kept).
        failure_traceback: The full traceback, shown on the run page.
    """
    run = session.scalars(select(Run).where(Run.id == run_id).with_for_update()).one_or_none()
    if run is None or run.status not in RUNNING_STATUSES:
        logger.info("run %d: not running any more; outcome %s dropped", run_id, status)
        return None
    previous = run.status
    run.status = status
    run.finished_at = finished_at or utcnow()
    run.failure_reason = one_line(failure_reason) if failure_reason else None
    run.failure_traceback = failure_traceback
    session.flush()
    status_event(session, run, previous)
    return run


def end_now(
    session: Session, run: Run, status: FinalStatus, *, failure_reason: str | None = None
) -> None:
    """End a run from the API or the reaper (no worker involved)."""
    previous = run.status
    run.status = status
    run.finished_at = utcnow()
    if failure_reason is not None:
        run.failure_reason = one_line(failure_reason)
    session.flush()
    status_event(session, run, previous)
