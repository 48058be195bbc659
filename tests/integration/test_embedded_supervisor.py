"""The supervisor of `segtrack up`, on stand-in processes: a child that exits is started again
after its back-off while the other keeps running, one that keeps crashing stops segtrack, and the
runs of a worker killed while stopping are recorded cancelled (resumable)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from segtrack.embedded import (
    MAX_RESTARTS,
    RESTART_FIRST_DELAY_S,
    RESTART_MAX_DELAY_S,
    SHUTDOWN_REASON,
    Child,
    Supervisor,
    settle_abandoned_runs,
)
from server.db import create_db_engine, make_session_factory, session_scope, upgrade_database
from server.models import Run, Worker
from server.settings import Settings

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
CRASHER = [sys.executable, "-c", "raise SystemExit(3)"]


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    supervisor = Supervisor([Child("API", SLEEPER), Child("worker", SLEEPER)], dict(os.environ))
    supervisor.start()
    yield supervisor
    supervisor.stop(grace_s=2)


def _pid(child: Child) -> int:
    assert child.process is not None
    return child.process.pid


def test_a_child_that_exits_comes_back_after_its_back_off(supervisor: Supervisor) -> None:
    api, worker = supervisor.children
    api_pid, worker_pid = _pid(api), _pid(worker)
    assert worker.process is not None
    worker.process.kill()
    worker.process.wait()

    now = 1000.0
    assert supervisor.keep_alive(now)
    assert not worker.running and _pid(worker) == worker_pid  # waiting out its back-off
    assert supervisor.keep_alive(now + RESTART_FIRST_DELAY_S)
    assert worker.running and _pid(worker) != worker_pid
    assert api.running and _pid(api) == api_pid  # the API never stopped


def test_a_child_that_keeps_crashing_stops_segtrack() -> None:
    crasher = Child("worker", CRASHER)
    supervisor = Supervisor([crasher], dict(os.environ))
    supervisor.start()
    now = 0.0
    try:
        for _ in range(MAX_RESTARTS):
            assert crasher.process is not None
            crasher.process.wait(30)
            assert supervisor.keep_alive(now)  # crash noted, restart scheduled
            now += RESTART_MAX_DELAY_S
            assert supervisor.keep_alive(now)  # restarted
        assert crasher.process is not None
        crasher.process.wait(30)
        assert not supervisor.keep_alive(now)  # the sixth crash within the window: give up
    finally:
        supervisor.stop(grace_s=1)


def test_stop_kills_a_child_that_ignores_sigterm() -> None:
    stubborn = Child(
        "worker",
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
         "signal.SIG_IGN); print('ready', flush=True); time.sleep(120)"],
    )  # fmt: skip
    supervisor = Supervisor([stubborn], dict(os.environ))
    process = subprocess.Popen(stubborn.command, stdout=subprocess.PIPE, start_new_session=True)
    stubborn.process = process
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"ready"
    process.stdout.close()
    supervisor.stop(grace_s=0.5)
    assert process.returncode is not None and not stubborn.running


def test_the_runs_of_a_killed_worker_are_recorded_cancelled(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    upgrade_database(settings.database_url)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    engine = create_db_engine(settings.database_url)
    factory = make_session_factory(engine)
    hostname = socket.gethostname()
    with session_scope(factory) as session:
        for name, pid in (("killed@here", gone.pid), ("alive@here", os.getpid())):
            session.add(
                Worker(name=name, hostname=hostname, pid=pid, device="cpu", queues=["default"])
            )
        session.add_all(
            [
                Run(name="abandoned", status="running", config={}, queue="default",
                    worker="killed@here"),
                Run(name="still training", status="running", config={}, queue="default",
                    worker="alive@here"),
            ]
        )  # fmt: skip

    settled = settle_abandoned_runs(settings)

    with session_scope(factory, write=False) as session:
        runs = {run.name: run for run in session.scalars(select(Run))}
        workers = set(session.scalars(select(Worker.name)))
    engine.dispose()
    assert settled == [runs["abandoned"].id]
    assert runs["abandoned"].status == "cancelled"
    assert runs["abandoned"].failure_reason == SHUTDOWN_REASON
    assert runs["still training"].status == "running"
    assert workers == {"alive@here"}
