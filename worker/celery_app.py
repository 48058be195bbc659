"""The Celery app of a worker process: tasks `training.run` and `jobs.run`, one task thread per
slot.

Each task thread claims a run, supervises its training process and records how it ended
(`worker.training`), or does an evaluate, predict or export job on a free slot
(`worker.job_execution`). Messages are acknowledged after the run ends (`acks_late`) so a
worker that dies mid-run does not lose its message; the atomic claim makes the redelivered copy
harmless.

A lost broker connection is retried without end while the runs in progress go on training.

A warm shutdown (SIGTERM, or Ctrl-C in the worker's terminal) would wait for the runs to finish,
which may take hours: instead it asks their training to stop, like a cancel, so the worker
records the runs (resumable) and exits within seconds.
"""

from __future__ import annotations

import warnings
from typing import Any

from celery import Celery, Task
from celery.exceptions import CPendingDeprecationWarning, Reject
from celery.signals import worker_shutting_down

from server.queue import JOB_TASK_NAME, TASK_NAME, broker_transport, broker_transport_options
from worker.job_execution import JobDeferred, execute_job
from worker.training import WorkerContext, execute_run

FILESYSTEM_POLL_S = 0.2


def create_worker_app(context: WorkerContext) -> Celery:
    """A Celery app whose `training.run` task trains runs with `context`."""
    settings = context.settings
    app = Celery("segtrack-worker", broker=settings.broker_url, set_as_current=True)
    transport = broker_transport_options(settings)
    if settings.broker_url.startswith("filesystem://"):
        # The folder is polled: a short interval starts runs (and ends an idle worker) sooner.
        transport["polling_interval"] = FILESYSTEM_POLL_S
    app.conf.update(
        broker_transport=broker_transport(settings),
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        # A broker outage (a Redis restart) must not end the worker, nor the runs it trains:
        # it reconnects for as long as it takes, and the runs' training goes on meanwhile (their
        # messages are acknowledged when they end; a redelivered copy finds them claimed).
        broker_connection_retry=True,
        broker_connection_max_retries=None,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_default_queue=settings.default_queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    # Celery warns on every lost connection that the default of the cancel setting above
    # changes in 6.0; it is set explicitly.
    warnings.filterwarnings(
        "ignore",
        message=r"\s*In Celery 5\.1 we introduced an optional breaking change",
        category=CPendingDeprecationWarning,
    )

    def stop_training(**_signal: Any) -> None:
        # Sent from Celery's signal handler: only set a flag; each run's supervisor acts on it.
        context.shutting_down.set()

    worker_shutting_down.connect(stop_training, weak=False)

    @app.task(name=TASK_NAME, bind=True)  # type: ignore[untyped-decorator]
    def run_training(task: Task, run_id: int) -> str:
        return execute_run(context, run_id, task.request.id)

    @app.task(name=JOB_TASK_NAME)  # type: ignore[untyped-decorator]
    def run_job(job_id: int) -> str:
        try:
            return execute_job(context, job_id)
        except JobDeferred as deferred:
            # Back to the broker: a job has no reaper to send it again.
            raise Reject(str(deferred), requeue=True) from deferred

    return app
