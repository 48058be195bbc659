"""`segtrack up`: the whole service on one machine with nothing else installed.

SQLite (WAL) and Celery's filesystem broker under one data folder, the API and one worker as child
processes, and the demo dataset registered as `demo` on the first start. Ctrl-C (or SIGTERM) stops
everything it started.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from server.dataset.repository import by_name
from server.dataset.schemas import DatasetCreate
from server.dataset.service import register_dataset
from server.db import create_db_engine, make_session_factory, session_scope, upgrade_database
from server.settings import Settings

logger = logging.getLogger(__name__)

DEMO_DATASET = "demo"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class EmbeddedOptions:
    """Where `segtrack up` listens and keeps its files."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path(".segtrack")


def prepare(settings: Settings) -> None:
    """Bring the database to the current schema and register the demo dataset once."""
    from trainer.data.demo import make_demo_dataset  # noqa: PLC0415 - only on first start

    upgrade_database(settings.database_url)
    demo_root = settings.dataset_roots[0] / DEMO_DATASET
    if not (demo_root / "classes.json").exists():
        make_demo_dataset(demo_root)
        logger.info("wrote the demo dataset to %s", demo_root)
    engine = create_db_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            if by_name(session, DEMO_DATASET) is None:
                register_dataset(
                    session, settings, DatasetCreate(name=DEMO_DATASET, path=str(demo_root))
                )
    finally:
        engine.dispose()


def _child_environment(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "SEGTRACK_DATA_DIR": str(settings.data_dir),
        "SEGTRACK_DATABASE_URL": settings.database_url,
        "SEGTRACK_BROKER_URL": settings.broker_url,
        "NO_ALBUMENTATIONS_UPDATE": "1",
        # Training shares the cores with the API and the browser; spinning OpenMP threads
        # would slow everything else (and training itself) down several times.
        "OMP_WAIT_POLICY": "PASSIVE",
    }


def _wait_until_ready(url: str, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"a segtrack process exited early (code {process.returncode})")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1.0) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise RuntimeError(f"the API did not answer on {url} within {READY_TIMEOUT_S:.0f} s")


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_embedded(options: EmbeddedOptions) -> int:
    """Start API + worker, print the URL, and block until interrupted; returns the exit code."""
    settings = Settings(data_dir=options.data_dir)
    prepare(settings)
    environment = _child_environment(settings)
    url = f"http://{options.host}:{options.port}"
    api = [
        sys.executable, "-m", "uvicorn", "--factory", "server.app:build_app",
        "--host", options.host, "--port", str(options.port), "--workers", "1",
        "--log-level", "warning", "--timeout-graceful-shutdown", "2",
    ]  # fmt: skip
    worker = [sys.executable, "-m", "segtrack", "worker", "--queues", settings.default_queue]
    # New process groups: a Ctrl-C in the terminal reaches us, and we stop the children in order.
    processes = [
        subprocess.Popen(command, env=environment, start_new_session=True)
        for command in (api, worker)
    ]
    stopping = False

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        _wait_until_ready(url, processes)
        print(f"segtrack is running: open {url}  (data in {settings.data_dir}; Ctrl-C stops)")
        sys.stdout.flush()
        while not stopping:
            if any(process.poll() is not None for process in processes):
                logger.error("a segtrack process exited; stopping the others")
                return 1
            time.sleep(0.2)
        return 0
    finally:
        _stop(processes)
        print("segtrack stopped")
