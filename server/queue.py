"""Sending runs to the workers: a Celery client that knows the task by name only.

The server never imports the worker package. A message carries the run id and nothing else; the
worker reads everything from the database and atomically claims the most urgent queued run of its
queues (normally that one), so a redelivered or stale message is harmless and priorities hold
even on a broker without them.

Priorities: runs use 0-9 with 9 served first. The Redis transport serves the LOWEST number first,
so messages carry `broker_priority(priority) = 9 - priority`.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Protocol

from celery import Celery

from server.broker_files import TRANSPORT
from server.settings import Settings

logger = logging.getLogger(__name__)

TASK_NAME = "training.run"
JOB_TASK_NAME = "jobs.run"
JOB_PRIORITY = 9
"""Jobs (an evaluation, a prediction, an export) take minutes at most: they go first."""
MAX_PRIORITY = 9
REDIS_TRANSPORT_OPTIONS: dict[str, Any] = {
    "priority_steps": list(range(MAX_PRIORITY + 1)),
    "sep": ":",
    "queue_order_strategy": "priority",
}


def broker_priority(priority: int) -> int:
    """The message priority for a run priority (0-9, 9 first) on the Redis transport."""
    return MAX_PRIORITY - priority


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    """Transport options shared by the API (producer) and the workers (consumers).

    Redis gets priority queues; the embedded filesystem broker gets its folders under
    `<data_dir>/broker` (created here), the same folder for both directions.
    """
    if settings.broker_url.startswith("filesystem://"):
        messages = settings.broker_dir / "messages"
        processed = settings.broker_dir / "processed"
        control = settings.broker_dir / "control"
        for folder in (messages, processed, control):
            folder.mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(messages),
            "data_folder_out": str(messages),
            "processed_folder": str(processed),
            "control_folder": str(control),
            "store_processed": False,
        }
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return dict(REDIS_TRANSPORT_OPTIONS)
    return {}


def broker_transport(settings: Settings) -> str | None:
    """The transport class for the broker URL, where it is not kombu's own: the embedded
    filesystem broker writes each message whole (`server.broker_files`)."""
    return TRANSPORT if settings.broker_url.startswith("filesystem://") else None


def celery_client(settings: Settings) -> Celery:
    """A Celery app used only to send (and revoke) tasks."""
    app = Celery("segtrack-api", broker=settings.broker_url, set_as_current=False)
    app.conf.broker_transport = broker_transport(settings)
    app.conf.broker_transport_options = broker_transport_options(settings)
    app.conf.task_default_queue = settings.default_queue
    app.conf.broker_connection_retry_on_startup = True
    return app


def new_task_id() -> str:
    """A fresh Celery task id; each send gets its own so a revoke never hits a later send."""
    return str(uuid.uuid4())


class TaskQueue(Protocol):
    """What the API needs from the broker; tests substitute a recorder."""

    def send_run(self, run_id: int, *, queue: str, priority: int, task_id: str) -> None: ...

    def send_job(self, job_id: int, *, queue: str, task_id: str) -> None: ...

    def revoke(self, task_id: str) -> None: ...


class CeleryTaskQueue:
    """Sends `training.run(run_id)` and `jobs.run(job_id)` to the run's queue through Celery."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._app: Celery | None = None

    @property
    def app(self) -> Celery:
        if self._app is None:
            self._app = celery_client(self.settings)
        return self._app

    def send_run(self, run_id: int, *, queue: str, priority: int, task_id: str) -> None:
        self.app.send_task(
            TASK_NAME,
            args=[run_id],
            queue=queue,
            priority=broker_priority(priority),
            task_id=task_id,
        )
        logger.info(
            "run %d sent to queue %s (priority %d, task %s)", run_id, queue, priority, task_id
        )

    def send_job(self, job_id: int, *, queue: str, task_id: str) -> None:
        """`jobs.run(job_id)` to the job's run's queue; the worker's claim makes copies harmless."""
        self.app.send_task(
            JOB_TASK_NAME,
            args=[job_id],
            queue=queue,
            priority=broker_priority(JOB_PRIORITY),
            task_id=task_id,
        )
        logger.info("job %d sent to queue %s (task %s)", job_id, queue, task_id)

    def revoke(self, task_id: str) -> None:
        """Best effort: workers also skip runs that are no longer queued when they claim them."""
        try:
            self.app.control.revoke(task_id)
        except Exception as error:  # every transport fails differently; none of it is fatal
            logger.warning("could not revoke task %s: %s", task_id, error)

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None
