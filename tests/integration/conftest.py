"""Fixtures of the integration tests that write as a worker does: a real SQLite database at head
and a running run in it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from server.db import create_db_engine, make_session_factory, session_scope, upgrade_database
from server.models import Run


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
