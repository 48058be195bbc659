"""Shared database fixtures: a real PostgreSQL database built by the migrations, once per test
session, and a connection per test whose transaction is rolled back at the end.

Set SEGTRACK_TEST_POSTGRES to another server's admin URL to test elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from server.db import create_db_engine, make_session_factory, upgrade_database

# Apps (and the servers tests start) run the sweep controller only where a test asks for it:
# elsewhere its passes would share the test's rolled-back connection.
os.environ.setdefault("SEGTRACK_SWEEP_INTERVAL_S", "0")

POSTGRES_ADMIN_URL = os.environ.get(
    "SEGTRACK_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
HOW_TO_START = (
    "the tests need PostgreSQL at {url} (trust auth): start it with `scripts/test` (which starts "
    "it), `service postgresql start`, or `docker run -d -p 5432:5432 -e "
    "POSTGRES_HOST_AUTH_METHOD=trust postgres:16`; or point SEGTRACK_TEST_POSTGRES elsewhere"
)


def _admin_engine() -> Engine:
    engine = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect():
            pass
    except OperationalError as error:
        engine.dispose()
        pytest.fail(HOW_TO_START.format(url=POSTGRES_ADMIN_URL) + f"\n({error})", pytrace=False)
    return engine


def create_scratch_database(name: str) -> str:
    """An empty PostgreSQL database (dropped first if a crashed run left it); returns its URL."""
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_scratch_database(name: str) -> None:
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database at the head migration, for the whole test session."""
    name = f"segtrack_test_{os.getpid()}"
    url = create_scratch_database(name)
    upgrade_database(url)
    yield url
    drop_scratch_database(name)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        if transaction.is_active:
            transaction.rollback()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    """Sessions whose commits are savepoints of the test's rolled-back transaction."""
    return make_session_factory(connection, join_savepoint=True)


@pytest.fixture
def db_session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as session:
        yield session
