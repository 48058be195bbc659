"""Fixtures of the server tests: settings on tmp folders, an app on the rolled-back connection
with a recording task queue, an in-process client, and small datasets written on the fly."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from server.app import create_app
from server.db import create_db_engine, upgrade_database
from server.deps import get_task_queue
from server.models import Base
from server.settings import Settings
from tests.conftest import create_scratch_database, drop_scratch_database
from tests.server.helpers import (
    ApiClient,
    LiveServer,
    RecordingTaskQueue,
    issue_token,
    write_dataset,
)
from tests.server.run_table_data import RunsTable, fill


@pytest.fixture
def task_queue() -> RecordingTaskQueue:
    return RecordingTaskQueue()


@pytest.fixture
def dataset_root(tmp_path: Path) -> Path:
    root = tmp_path / "datasets"
    root.mkdir()
    return root


@pytest.fixture
def shapes_dataset(dataset_root: Path) -> Path:
    """A valid two-class dataset inside the dataset root."""
    return write_dataset(dataset_root / "shapes")


@pytest.fixture
def settings(database_url: str, tmp_path: Path, dataset_root: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        broker_url="memory://",
        redis_url=None,
        dataset_roots=[dataset_root],
        reaper_interval_s=0,
        heartbeat_timeout_s=30,
        allowed_hosts=["testserver"],
    )


@pytest.fixture
def app(
    settings: Settings, session_factory: sessionmaker[Session], task_queue: RecordingTaskQueue
) -> FastAPI:
    app = create_app(settings, session_factory=session_factory)
    app.dependency_overrides[get_task_queue] = lambda: task_queue
    return app


@pytest.fixture
def admin_token(session_factory: sessionmaker[Session]) -> str:
    """An admin's read-write token (rolled back with the test)."""
    return issue_token(session_factory)


@pytest.fixture
def client(app: FastAPI, admin_token: str) -> Iterator[ApiClient]:
    """The app in-process, called as an admin with a bearer token."""
    with ApiClient(app, admin_token) as client:
        yield client


@pytest.fixture
def anonymous(app: FastAPI) -> Iterator[ApiClient]:
    """The app in-process, called without credentials."""
    with ApiClient(app) as client:
        yield client


@pytest.fixture(scope="session")
def live_database_url() -> Iterator[str]:
    """A database the live servers commit to (not rolled back; emptied after each test)."""
    name = f"segtrack_test_{os.getpid()}_live"
    url = create_scratch_database(name)
    upgrade_database(url)
    yield url
    drop_scratch_database(name)


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("SEGTRACK_TEST_REDIS", "redis://127.0.0.1:6379/15")
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(
            f"the tests need Redis at {url}: start it with `scripts/test`, `service redis-server "
            f"start` or `docker run -d -p 6379:6379 redis:7`; or set SEGTRACK_TEST_REDIS ({error})",
            pytrace=False,
        )
    finally:
        client.close()
    return url


@pytest.fixture
def live_settings(live_database_url: str, tmp_path: Path, dataset_root: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "live",
        database_url=live_database_url,
        broker_url="memory://",
        redis_url=None,
        dataset_roots=[dataset_root],
        reaper_interval_s=0,
        event_poll_interval_s=0.05,
    )


@pytest.fixture
def start_live(
    live_settings: Settings, task_queue: RecordingTaskQueue, live_database_url: str
) -> Iterator[Callable[..., LiveServer]]:
    """Start a live server with `live_settings` changed by keyword arguments."""
    servers: list[LiveServer] = []

    def start(**changes: object) -> LiveServer:
        settings = live_settings.model_copy(update=changes)
        app = create_app(settings, task_queue=task_queue)
        token = issue_token(app.state.session_factory)
        server = LiveServer(app, token).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()
    engine = create_db_engine(live_database_url)
    with engine.begin() as connection:
        tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(scope="module")
def sqlite_table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunsTable]:
    """`RUNS` in an embedded (SQLite) app, shared by a module's tests: they only read."""
    folder = tmp_path_factory.mktemp("embedded")
    settings = Settings(
        data_dir=folder / "data",
        broker_url="memory://",
        dataset_roots=[folder],
        reaper_interval_s=0,
        allowed_hosts=["testserver"],
    )
    upgrade_database(settings.database_url)
    app = create_app(settings)
    app.dependency_overrides[get_task_queue] = RecordingTaskQueue
    ids = fill(app.state.session_factory)
    with ApiClient(app, issue_token(app.state.session_factory)) as client:
        yield client, ids


@pytest.fixture(params=["postgresql", "sqlite"])
def table(request: pytest.FixtureRequest) -> RunsTable:
    """`RUNS` on PostgreSQL (rolled back with the test) or in the shared SQLite app."""
    if request.param == "sqlite":
        shared: RunsTable = request.getfixturevalue("sqlite_table")
        return shared
    client: ApiClient = request.getfixturevalue("client")
    factory: sessionmaker[Session] = request.getfixturevalue("session_factory")
    return client, fill(factory)
