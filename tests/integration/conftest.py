"""Fixtures of the integration tests: for those that write as a worker does, a real SQLite
database at head and a running run in it; for the job tests, one API and worker they share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from segtrack.client import SegtrackClient
from server.db import create_db_engine, make_session_factory, session_scope, upgrade_database
from server.models import Run
from tests.integration.binary_dataset import PREDICT_DATASET, write_binary_dataset
from tests.integration.services import Service, serving


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'worker.db'}"
    upgrade_database(url)
    # A short wait for the write lock, so a held lock fails a write at once and it is retried.
    engine = create_db_engine(url, sqlite_lock_timeout_s=0.05)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def run_id(sessions: sessionmaker[Session]) -> int:
    with session_scope(sessions) as session:
        run = Run(name="training", status="running", config={}, queue="default", worker="cpu1")
        session.add(run)
        session.flush()
        return run.id


@pytest.fixture(scope="session")
def jobs_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """An API and a one-slot worker the job modules share (starting them is most of a job
    module's set-up). Its datasets: "demo", 12 binary pairs and a test split of 2, and
    `PREDICT_DATASET`; each module trains its own runs on them."""
    data_dir = tmp_path_factory.mktemp("jobs")
    # Registered by `serving` as "demo".
    write_binary_dataset(data_dir / "datasets" / "demo")
    write_binary_dataset(data_dir / "datasets" / PREDICT_DATASET, train=20, test=0)
    with serving(data_dir, "jobs", {"SEGTRACK_HEARTBEAT_TIMEOUT_S": "10"}) as running:
        with SegtrackClient(running.url, token=running.token, timeout=30) as client:
            client._call(
                "POST", "/api/v1/datasets", json={"name": PREDICT_DATASET, "path": PREDICT_DATASET}
            )
        yield running
