"""`segtrack up`: the whole service on one machine with nothing else installed.

SQLite (WAL) and Celery's filesystem broker under one data folder, the API and one worker as child
processes, and the demo dataset registered as `demo` on the first start.

A supervisor keeps the children up: one that exits unexpectedly is started again after a back-off
(1 s, doubling to 30 s), logged, while the other goes on serving; one that keeps crashing (5 times
within 5 minutes) stops segtrack with exit code 1. Ctrl-C (or SIGTERM) stops everything within
`STOP_BUDGET_S`: the worker stops its run at the training's next check and records it `cancelled`
(resumable from its last checkpoint); a worker that cannot stop in time is killed and its run is
recorded cancelled here, so a shutdown never leaves a run "failed: worker lost".
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from sqlalchemy import select

from segtrack.local_tokens import read_token_file, remember, write_private
from server.auth.local_access import ensure_local_token
from server.dataset.repository import by_name
from server.dataset.schemas import DatasetCreate
from server.dataset.service import register_dataset
from server.db import create_db_engine, make_session_factory, session_scope, upgrade_database
from server.models import Run, Worker
from server.run.lifecycle import RUNNING_STATUSES, finish_run
from server.settings import Settings
from server.worker_status.repository import remove_worker

logger = logging.getLogger(__name__)

DEMO_DATASET = "demo"
TOKEN_FILE = "token"
READY_TIMEOUT_S = 60.0
WORKER_STOP_GRACE_S = 3.0
"""How long a stopping worker may take to stop its run and record it before it is killed."""
STOP_BUDGET_S = 5.0
"""Ctrl-C to exit, at most: the grace, then killing what is left and recording its run."""
RESTART_FIRST_DELAY_S = 1.0
RESTART_MAX_DELAY_S = 30.0
RESTART_WINDOW_S = 300.0
MAX_RESTARTS = 5
"""Crashes of one child within RESTART_WINDOW_S after which segtrack gives up and stops."""
SHUTDOWN_REASON = "stopped: the server was shut down"


@dataclass(frozen=True)
class EmbeddedOptions:
    """Where `segtrack up` listens and keeps its files."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path(".segtrack")


def prepare(settings: Settings) -> str:
    """Bring the database to the current schema, register the demo dataset once and return the
    local admin's token (kept in `<data_dir>/token`, readable by its owner only)."""
    from trainer.data.demo import (  # noqa: PLC0415 - only on first start
        DEMO_TEST_COUNT,
        make_demo_dataset,
    )

    upgrade_database(settings.database_url)
    demo_root = settings.dataset_roots[0] / DEMO_DATASET
    if not (demo_root / "classes.json").exists():
        make_demo_dataset(demo_root, test_count=DEMO_TEST_COUNT)
        logger.info("wrote the demo dataset to %s", demo_root)
    engine = create_db_engine(settings.database_url)
    try:
        token_path = settings.data_dir / TOKEN_FILE
        with session_scope(make_session_factory(engine)) as session:
            if by_name(session, DEMO_DATASET) is None:
                register_dataset(
                    session, settings, DatasetCreate(name=DEMO_DATASET, path=str(demo_root))
                )
            token = ensure_local_token(session, read_token_file(token_path))
    finally:
        engine.dispose()
    write_private(token_path, token)
    return token


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


def _exit_description(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass
class Child:
    """One supervised process: what to run, the running process, its recent crashes."""

    name: str
    command: Sequence[str]
    process: subprocess.Popen[bytes] | None = None
    crashes: deque[float] = field(default_factory=deque)
    restart_at: float | None = None

    def start(self, environment: dict[str, str]) -> None:
        # A new session: a Ctrl-C in the terminal reaches only `segtrack up`, which stops the
        # children in order, and killing the session's group takes the child's own children.
        self.process = subprocess.Popen(self.command, env=environment, start_new_session=True)
        self.restart_at = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill_group(self) -> None:
        """SIGKILL the child and whatever it started in its group. (A worker's training processes
        have groups of their own; they die with the worker, see `worker.run_child`.)"""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            if self.process.poll() is None:  # not the leader of its own group after all
                self.process.kill()
            self.process.wait()


class Supervisor:
    """Starts the children, restarts the ones that crash, and stops them all."""

    def __init__(self, children: Sequence[Child], environment: dict[str, str]) -> None:
        self.children = list(children)
        self._environment = environment

    def start(self) -> None:
        for child in self.children:
            child.start(self._environment)

    def exited_early(self) -> Child | None:
        """A child that is not running (before the service is up, that is fatal)."""
        return next((child for child in self.children if not child.running), None)

    def keep_alive(self, now: float | None = None) -> bool:
        """Restart children that exited, each after its back-off; False once one keeps
        crashing (MAX_RESTARTS within RESTART_WINDOW_S)."""
        now = time.monotonic() if now is None else now
        for child in self.children:
            if child.running:
                continue
            if child.restart_at is None:
                code = child.process.returncode if child.process is not None else 0
                while child.crashes and child.crashes[0] < now - RESTART_WINDOW_S:
                    child.crashes.popleft()
                child.crashes.append(now)
                if len(child.crashes) > MAX_RESTARTS:
                    logger.error(
                        "the %s exited (%s) %d times within %.0f s; stopping segtrack",
                        child.name, _exit_description(code), len(child.crashes), RESTART_WINDOW_S,
                    )  # fmt: skip
                    return False
                delay = min(
                    RESTART_FIRST_DELAY_S * 2 ** (len(child.crashes) - 1), RESTART_MAX_DELAY_S
                )
                logger.error(
                    "the %s exited unexpectedly (%s); starting it again in %.0f s",
                    child.name, _exit_description(code), delay,
                )  # fmt: skip
                child.kill_group()  # what it left behind
                child.restart_at = now + delay
            elif now >= child.restart_at:
                child.start(self._environment)
                assert child.process is not None
                logger.info("started the %s again (pid %d)", child.name, child.process.pid)
        return True

    def stop(self, grace_s: float = WORKER_STOP_GRACE_S) -> None:
        """SIGTERM every child, give them `grace_s`, then kill what is left (with its group)."""
        for child in self.children:
            if child.running:
                assert child.process is not None
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(deadline - time.monotonic(), 0.05))
            except subprocess.TimeoutExpired:
                logger.warning("the %s did not stop within %.0f s; killing it", child.name, grace_s)
            child.kill_group()


def settle_abandoned_runs(settings: Settings, reason: str = SHUTDOWN_REASON) -> list[int]:
    """Record as cancelled (resumable) the runs of this machine's workers whose process is gone,
    and forget those workers.

    A worker killed while stopping could not record its run itself; without this the run would
    stay running until the reaper declares it lost. Returns the ids of the runs recorded.
    """
    hostname = socket.gethostname()
    engine = create_db_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            workers = session.execute(
                select(Worker.name, Worker.pid).where(Worker.hostname == hostname)
            ).all()
            gone = [name for name, pid in workers if not _process_alive(pid)]
            runs = session.scalars(
                select(Run.id).where(Run.status.in_(RUNNING_STATUSES), Run.worker.in_(gone))
            ).all()
            for run_id in runs:
                finish_run(session, run_id, "cancelled", failure_reason=reason)
            for name in gone:
                remove_worker(session, name)
        for run_id in runs:
            logger.warning(
                "run %d: its worker was killed while stopping; recorded cancelled", run_id
            )
        return list(runs)
    finally:
        engine.dispose()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_until_ready(url: str, supervisor: Supervisor, stopping: Callable[[], bool]) -> bool:
    """Wait for the API's /healthz; False when asked to stop first."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if stopping():
            return False
        early = supervisor.exited_early()
        if early is not None:
            assert early.process is not None
            raise RuntimeError(
                f"the {early.name} exited early ({_exit_description(early.process.returncode)})"
            )
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1.0) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise RuntimeError(f"the API did not answer on {url} within {READY_TIMEOUT_S:.0f} s")


def run_embedded(options: EmbeddedOptions) -> int:
    """Start API + worker, print the URL, and block until interrupted; returns the exit code."""
    settings = Settings(data_dir=options.data_dir)
    token = prepare(settings)
    url = f"http://{options.host}:{options.port}"
    environment = {**_child_environment(settings), "SEGTRACK_PUBLIC_URL": url}
    remember(url, token)
    api = Child("API", [
        sys.executable, "-m", "uvicorn", "--factory", "server.app:build_app",
        "--host", options.host, "--port", str(options.port), "--workers", "1",
        "--log-level", "warning", "--timeout-graceful-shutdown", "2",
    ])  # fmt: skip
    worker = Child(
        "worker", [sys.executable, "-m", "segtrack", "worker", "--queues", settings.default_queue]
    )
    supervisor = Supervisor([api, worker], environment)
    stopping = False

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        supervisor.start()
        if not _wait_until_ready(url, supervisor, lambda: stopping):
            return 0
        print(f"segtrack is running: open {url}/?token={token}")
        print(f"  (data in {settings.data_dir}; scripts here find the token; Ctrl-C stops)")
        sys.stdout.flush()
        while not stopping:
            if not supervisor.keep_alive():
                return 1
            time.sleep(0.2)
        return 0
    finally:
        supervisor.stop()
        try:
            settle_abandoned_runs(settings)
        except Exception:  # stopping must finish even when the database is unusable
            logger.exception("could not record the runs of a killed worker")
        print("segtrack stopped")
