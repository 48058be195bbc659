"""SQLite writers are serialised by design: `BEGIN IMMEDIATE` under one write lock per database
(threads queue in order, processes meet at a lock file), read-only sessions never wait for it,
and a killed writer never leaves the database locked. Ingest on SQLite loses and doubles nothing
under 100 concurrent writers, and concurrent replays count each point once."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from server.app import create_app
from server.db import create_db_engine, make_session_factory, session_scope, upgrade_database
from server.settings import Settings
from tests.server.helpers import LiveServer, RecordingTaskQueue, issue_token

COUNTER_SCRIPT = """
import sys
from sqlalchemy import text
from server.db import create_db_engine, make_session_factory, session_scope, upgrade_database
factory = make_session_factory(create_db_engine(sys.argv[1]))
for _ in range(int(sys.argv[2])):
    with session_scope(factory) as session:
        value = session.execute(text("SELECT value FROM counter")).scalar_one()
        session.execute(text("UPDATE counter SET value = :v"), {"v": value + 1})
"""

HOLD_SCRIPT = """
import sys, time
from sqlalchemy import text
from server.db import create_db_engine, make_session_factory
session = make_session_factory(create_db_engine(sys.argv[1]))()
session.execute(text("UPDATE counter SET value = value + 1000"))
print("holding", flush=True)
time.sleep(600)
"""


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'writes.db'}"


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = create_db_engine(sqlite_url, sqlite_lock_timeout_s=0.5)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE counter (value INTEGER NOT NULL)"))
        connection.execute(text("INSERT INTO counter VALUES (0)"))
    yield engine
    engine.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


def _count(factory: sessionmaker[Session]) -> int:
    with session_scope(factory, write=False) as session:
        return int(session.execute(text("SELECT value FROM counter")).scalar_one())


def _increment(factory: sessionmaker[Session], times: int) -> None:
    for _ in range(times):
        with session_scope(factory) as session:
            value = session.execute(text("SELECT value FROM counter")).scalar_one()
            session.execute(text("UPDATE counter SET value = :v"), {"v": value + 1})


def _script(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def test_read_then_write_transactions_never_interleave(
    factory: sessionmaker[Session], sqlite_url: str
) -> None:
    """Every increment reads then writes; no increment is lost between threads or processes."""
    other = subprocess.Popen(_script(COUNTER_SCRIPT, sqlite_url, "150"))
    threads = [threading.Thread(target=_increment, args=(factory, 25)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert other.wait(60) == 0
    assert _count(factory) == 8 * 25 + 150


def test_readers_go_on_while_a_writer_holds_the_lock(factory: sessionmaker[Session]) -> None:
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with session_scope(factory) as session:
            session.execute(text("UPDATE counter SET value = 5"))
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(10)
        assert _count(factory) == 0  # read-only: no wait, and the uncommitted write is unseen
        with pytest.raises(OperationalError, match="database is locked"):
            _increment(factory, 1)  # a writer waits its turn (here only 0.5 s, then fails)
    finally:
        release.set()
        thread.join(10)
    assert _count(factory) == 5
    _increment(factory, 1)
    assert _count(factory) == 6


def test_a_failed_transaction_gives_the_lock_back(factory: sessionmaker[Session]) -> None:
    with pytest.raises(RuntimeError), session_scope(factory) as session:
        session.execute(text("UPDATE counter SET value = 99"))
        raise RuntimeError("the endpoint failed")
    with pytest.raises(OperationalError), session_scope(factory) as session:
        session.execute(text("INSERT INTO no_such_table VALUES (1)"))
    _increment(factory, 2)
    assert _count(factory) == 2


def test_a_killed_writer_leaves_nothing_locked(
    factory: sessionmaker[Session], sqlite_url: str
) -> None:
    holder = subprocess.Popen(_script(HOLD_SCRIPT, sqlite_url), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()
    _increment(factory, 1)
    assert _count(factory) == 1  # the killed writer's +1000 was never committed


def test_errors_carry_no_sql_parameters(factory: sessionmaker[Session]) -> None:
    with pytest.raises(IntegrityError) as raised, session_scope(factory) as session:
        session.execute(text("INSERT INTO counter VALUES (NULL + :secret)"), {"secret": "hunter2"})
    assert "NOT NULL" in str(raised.value) and "parameters hidden" in str(raised.value)
    assert "hunter2" not in str(raised.value)
    with pytest.raises(OperationalError) as failed, session_scope(factory) as session:
        session.execute(text("SELECT * FROM missing WHERE name = :name"), {"name": "hunter2"})
    assert "hunter2" not in str(failed.value)


# --- ingest over HTTP ----------------------------------------------------------------------------


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[LiveServer]:
    settings = Settings(
        data_dir=tmp_path / "embedded",
        broker_url="memory://",
        dataset_roots=[tmp_path / "roots"],
        reaper_interval_s=0,
    )
    upgrade_database(settings.database_url)
    app = create_app(settings, task_queue=RecordingTaskQueue())
    with LiveServer(app, issue_token(app.state.session_factory)) as server:
        yield server


def _post_all(server: LiveServer, url: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """POST every body at once, one connection each."""

    def post(body: dict[str, Any]) -> httpx.Response:
        with server.http(timeout=60) as http:
            return http.post(url, json=body)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(post, bodies))


def test_100_concurrent_writers_on_one_run_lose_and_double_nothing(
    sqlite_server: LiveServer,
) -> None:
    with sqlite_server.http() as http:
        run = http.post("/api/v1/runs", json={"name": "ingest", "external": True}).json()
    url = f"/api/v1/runs/{run['id']}/metrics"
    bodies = [
        {
            "points": [
                {"key": "loss", "step": writer * 20 + index, "value": float(index)}
                for index in range(20)
            ]
            + [{"key": f"writer/{writer}", "step": 0, "value": 1.0}]
        }
        for writer in range(100)
    ]
    responses = _post_all(sqlite_server, url, bodies)
    assert [response.status_code for response in responses] == [200] * 100
    assert sum(response.json()["new"] for response in responses) == 100 * 21

    replay = {"points": [{"key": "val/iou", "step": s, "value": s / 100} for s in range(100)]}
    replays = _post_all(sqlite_server, url, [replay] * 9)
    assert [response.status_code for response in replays] == [200] * 9
    assert sum(response.json()["new"] for response in replays) == 100

    with sqlite_server.http() as http:
        detail = http.get(f"/api/v1/runs/{run['id']}").json()
        series = http.get(f"{url}?keys=loss,val/iou").json()["series"]
    assert detail["metrics"]["loss"]["count"] == 2000
    assert detail["metrics"]["val/iou"]["count"] == 100
    assert len(series["loss"]["step"]) == 2000 and len(set(series["loss"]["step"])) == 2000
    assert len([key for key in detail["metrics"] if key.startswith("writer/")]) == 100
