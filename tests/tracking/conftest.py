"""Fixtures of the tracking client tests: one real server per test module (uvicorn serving the
app on a PostgreSQL database of its own), quick retries and heartbeats, and an environment
with no server, token or spool folder of the machine's own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from segtrack.tracking import heartbeat, sender
from server.app import create_app
from server.db import upgrade_database
from server.settings import Settings
from tests.conftest import create_scratch_database, drop_scratch_database
from tests.server.helpers import LiveServer, RecordingTaskQueue, issue_token


@pytest.fixture(scope="module")
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"segtrack_tracking_{os.getpid()}_{request.module.__name__.rsplit('.', 1)[-1]}"
    url = create_scratch_database(name)
    upgrade_database(url)
    yield url
    drop_scratch_database(name)


def server_settings(data_dir: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        broker_url="memory://",
        redis_url=None,
        reaper_interval_s=0,
        event_poll_interval_s=0.05,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[LiveServer]:
    """The app on a free port; `server.token` is an admin's write token."""
    settings = server_settings(tmp_path_factory.mktemp("server"), database)
    app = create_app(settings, task_queue=RecordingTaskQueue())
    with LiveServer(app, issue_token(app.state.session_factory)) as live:
        yield live


@pytest.fixture(autouse=True)
def quick_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Retries within a fraction of a second and heartbeats 5 times a second; no token, server
    or spool folder from the machine running the tests."""
    monkeypatch.setattr(sender, "MIN_BACKOFF_S", 0.02)
    monkeypatch.setattr(sender, "MAX_BACKOFF_S", 0.3)
    monkeypatch.setattr(heartbeat, "INTERVAL_S", 0.2)
    monkeypatch.setenv("SEGTRACK_HOME", str(tmp_path / "home"))
    for name in ("SEGTRACK_SERVER", "SEGTRACK_TOKEN", "SEGTRACK_SPOOL_DIR"):
        monkeypatch.delenv(name, raising=False)
