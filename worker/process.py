"""`segtrack worker`: one Celery worker process per host, owning its GPUs (or CPU slots) as slots.

The process never imports torch or touches CUDA: it finds its GPUs with NVML (`worker.slots`),
takes messages on Celery's threads pool with one thread per slot (prefetch 1, acks late), and
trains each run in a child process on the run's slots (`worker.training`). SIGTERM or Ctrl-C
stops the runs (their training gets the cancel grace), records them and exits.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Sequence
from typing import NoReturn

from server.db import create_db_engine, make_session_factory, require_schema_at_head
from server.settings import Settings
from worker.heartbeat import Heartbeat, WorkerIdentity
from worker.run_logging import install_run_id_logging
from worker.slots import HostSlots, SlotPool

logger = logging.getLogger(__name__)

HEARTBEAT_FRACTION = 6
"""Heartbeats per `heartbeat_timeout_s`, so one missed beat is never fatal."""


def default_name(host: HostSlots, hostname: str) -> str:
    """'gpu0-1@host' for a GPU worker, 'cpu<pid>@host' for a CPU one (several may share a host)."""
    gpus = [slot.gpu for slot in host.slots if slot.gpu is not None]
    return f"gpu{'-'.join(gpus)}@{hostname}" if gpus else f"cpu{os.getpid()}@{hostname}"


def run_worker(
    settings: Settings, host: HostSlots, *, queues: Sequence[str], name: str | None = None
) -> int:
    """Serve `queues` with `host`'s slots until interrupted (blocks); returns the exit code."""
    from worker.celery_app import create_worker_app  # noqa: PLC0415 - Celery loads slowly
    from worker.training import TaskThreads, WorkerContext  # noqa: PLC0415

    install_run_id_logging()
    engine = create_db_engine(settings.database_url)
    require_schema_at_head(engine)
    sessions = make_session_factory(engine)
    hostname = socket.gethostname()
    identity = WorkerIdentity(
        name=name or default_name(host, hostname),
        hostname=hostname,
        pid=os.getpid(),
        device=host.device,
        queues=tuple(queues),
    )
    pool = SlotPool(host.slots)
    threads = TaskThreads(pool.capacity)
    heartbeat = Heartbeat(
        sessions,
        identity,
        interval=min(5.0, settings.heartbeat_timeout_s / HEARTBEAT_FRACTION),
        slots=pool,
        taking_messages=threads.taking_messages,
    )
    context = WorkerContext(settings, sessions, identity, pool, threads, heartbeat)
    app = create_worker_app(context)
    heartbeat.start()
    logger.info(
        "worker %s serves queues %s with %d slots (%s: %s)",
        identity.name, ", ".join(queues), pool.capacity, host.device,
        ", ".join(slot.label for slot in host.slots),
    )  # fmt: skip
    code = 0
    try:
        app.worker_main(
            [
                "worker",
                "--pool=threads",
                f"--concurrency={pool.capacity}",
                "--prefetch-multiplier=1",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                f"--queues={','.join(queues)}",
                f"--hostname={identity.name}",
                "--loglevel=INFO",
            ]
        )
    except SystemExit as stopped:  # how Celery ends a worker it shut down
        code = stopped.code if isinstance(stopped.code, int) else 1
    finally:
        heartbeat.stop()
        engine.dispose()
    return code


def exit_without_teardown(code: int) -> NoReturn:
    """End the process now that the worker has cleaned up.

    The interpreter's own teardown frees Celery's objects one by one, which takes a while on a
    busy machine; a stopping worker (Ctrl-C on `segtrack up`) should be gone at once.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            stream.flush()
    os._exit(code)
