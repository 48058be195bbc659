"""The Celery app of a worker process: one task, `training.run`, one run at a time.

Messages are acknowledged after the run ends (`acks_late`) so a worker that dies mid-run does not
lose its message; the atomic claim makes the redelivered copy harmless.
"""

from __future__ import annotations

from celery import Celery, Task

from server.queue import TASK_NAME, broker_transport_options
from worker.training import WorkerContext, execute_run


def create_worker_app(context: WorkerContext) -> Celery:
    """A Celery app whose `training.run` task trains runs with `context`."""
    settings = context.settings
    app = Celery("segtrack-worker", broker=settings.broker_url, set_as_current=True)
    app.conf.update(
        broker_transport_options=broker_transport_options(settings),
        broker_connection_retry_on_startup=True,
        task_default_queue=settings.default_queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )

    @app.task(name=TASK_NAME, bind=True)  # type: ignore[untyped-decorator]
    def run_training(task: Task, run_id: int) -> str:
        return execute_run(context, run_id, task.request.id)

    return app
