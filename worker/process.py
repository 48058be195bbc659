"""`segtrack worker`: Celery worker processes, one per GPU (or one on the CPU).

Each process sees one GPU (`CUDA_VISIBLE_DEVICES` pinned before torch starts), uses Celery's solo
pool (the run trains in the process itself, so DataLoader workers may fork) and takes one message
at a time. SIGTERM or Ctrl-C stops the current run at its next check (see `worker.celery_app`),
records it, and the process exits within seconds.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

from server.db import create_db_engine, make_session_factory, require_schema_at_head
from server.settings import Settings
from worker.heartbeat import Heartbeat, WorkerIdentity
from worker.run_logging import install_run_id_logging

logger = logging.getLogger(__name__)

HEARTBEAT_FRACTION = 6
"""Heartbeats per `heartbeat_timeout_s`, so one missed beat is never fatal."""


def describe_device() -> str:
    """The device runs train on in this process, e.g. 'cuda:0 (NVIDIA H100 80GB HBM3)' or 'cpu'."""
    import torch  # noqa: PLC0415 - only once CUDA_VISIBLE_DEVICES is settled

    if torch.cuda.is_available():
        return f"cuda:0 ({torch.cuda.get_device_name(0)})"
    return "cpu"


def run_worker(settings: Settings, *, queues: Sequence[str], name: str | None = None) -> int:
    """Serve `queues` in this process until interrupted (blocks); returns the exit code."""
    from worker.celery_app import create_worker_app  # noqa: PLC0415 - loads torch and trainer
    from worker.training import WorkerContext  # noqa: PLC0415

    install_run_id_logging()
    engine = create_db_engine(settings.database_url)
    require_schema_at_head(engine)
    sessions = make_session_factory(engine)
    hostname = socket.gethostname()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    device = describe_device()
    default_name = (
        f"gpu{visible}@{hostname}"
        if device != "cpu" and visible
        else f"cpu{os.getpid()}@{hostname}"
    )
    identity = WorkerIdentity(
        name=name or default_name,
        hostname=hostname,
        pid=os.getpid(),
        device=device,
        queues=tuple(queues),
    )
    heartbeat = Heartbeat(
        sessions, identity, interval=min(5.0, settings.heartbeat_timeout_s / HEARTBEAT_FRACTION)
    )
    app = create_worker_app(WorkerContext(settings, sessions, identity, heartbeat))
    heartbeat.start()
    logger.info("worker %s serves queues %s on %s", identity.name, ", ".join(queues), device)
    code = 0
    try:
        app.worker_main(
            [
                "worker",
                "--pool=solo",
                "--concurrency=1",
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

    The interpreter's own teardown frees torch's and Celery's objects one by one, which takes
    seconds on a busy machine; a stopping worker (Ctrl-C on `segtrack up`) should be gone at once.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            stream.flush()
    os._exit(code)


def serve_gpus(settings: Settings, *, gpus: Sequence[int] | None, queues: Sequence[str]) -> int:
    """One worker per GPU: the given ones, else every visible one; in this process when one.

    Blocks until the workers stop; returns the exit code of the children, and ends the process
    itself (`exit_without_teardown`) when it was the worker.
    """
    if gpus is None and "CUDA_VISIBLE_DEVICES" not in os.environ:
        import torch  # noqa: PLC0415 - counting GPUs needs it, the API never gets here

        gpus = list(range(torch.cuda.device_count()))
    if gpus and len(gpus) > 1:
        return spawn_gpu_workers(gpus, queues)
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpus[0])
    exit_without_teardown(run_worker(settings, queues=queues))


def spawn_gpu_workers(gpus: Sequence[int], queues: Sequence[str]) -> int:
    """Start one child worker per GPU and wait; Ctrl-C or SIGTERM stops them all."""
    children = []
    for gpu in gpus:
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": str(gpu)}
        command = [sys.executable, "-m", "segtrack", "worker", "--queues", ",".join(queues)]
        children.append(subprocess.Popen(command, env=env))
        logger.info("started worker for GPU %d (pid %d)", gpu, children[-1].pid)

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    try:
        return max(child.wait() for child in children)
    except KeyboardInterrupt:
        forward(signal.SIGINT, None)
        return max(child.wait() for child in children)
