"""Engines, sessions (one unit of work per request or per worker report) and the schema check.

Repositories never commit: whoever opened the session commits once (`session_scope`). Sessions
from `make_session_factory` then run the callbacks registered with `after_commit` (send a Celery
task, publish an event), so nothing outside the database hears about a change that was rolled
back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
UPGRADE_COMMAND = "segtrack db upgrade"
_HOOKS_KEY = "segtrack.after_commit"
NOTIFIER_KEY = "segtrack.notifier"
SQLITE_BUSY_TIMEOUT_MS = 10_000
DISPOSE_WAIT_S = 5.0
"""How long shutting down waits for in-flight requests to return their connections."""


class SchemaOutdatedError(RuntimeError):
    """The database schema is not the one this segtrack was written for."""


def normalize_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs that name no driver (`postgresql://...`)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while a worker writes; NORMAL is durable enough with WAL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`: PostgreSQL through psycopg 3, or SQLite in WAL mode.

    A SQLite database file's folder is created when missing (embedded mode's first start).
    """
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_recycle", 1800)
    return create_engine(url, **kwargs)


def dispose_when_idle(engine: Engine, timeout_s: float = DISPOSE_WAIT_S) -> None:
    """Close the engine's connections once in-flight requests have returned theirs.

    A request still running in a worker thread when the server stops returns its connection
    after the lifespan ends; disposing first would strand that connection, open, in the old pool.
    """
    deadline = time.monotonic() + timeout_s
    checked_out = getattr(engine.pool, "checkedout", None)
    while checked_out is not None and checked_out() > 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    engine.dispose()


def make_session_factory(
    bind: Engine | Connection,
    *,
    notifier: Callable[[], None] | None = None,
    join_savepoint: bool = False,
) -> sessionmaker[Session]:
    """Sessions on `bind` that run `after_commit` callbacks when they commit.

    Args:
        bind: An engine, or a connection inside a transaction (tests roll it back).
        notifier: Called after the commit of a session that recorded events
            (`server.events.EventNotifier.notify` publishes them to Redis).
        join_savepoint: Commit to a savepoint of `bind`'s open transaction instead of committing
            it; for tests whose outer transaction is rolled back at the end.
    """
    factory = sessionmaker(
        bind=bind,
        expire_on_commit=False,
        info={NOTIFIER_KEY: notifier},
        join_transaction_mode="create_savepoint" if join_savepoint else "conditional_savepoint",
    )
    event.listen(factory, "after_commit", _run_after_commit_hooks)
    event.listen(factory, "after_rollback", _drop_after_commit_hooks)
    return factory


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's work is committed (never if it is rolled back).

    Works with sessions from `make_session_factory`, however they commit.
    """
    session.info.setdefault(_HOOKS_KEY, []).append(callback)


def _run_after_commit_hooks(session: Session) -> None:
    """Run and forget the callbacks registered with `after_commit`.

    A failing callback is logged and the next one still runs: the data is committed already, and
    the lost notification or task is recovered by polling (events) or by the reaper (runs).
    """
    hooks: list[Callable[[], None]] = session.info.pop(_HOOKS_KEY, [])
    for hook in hooks:
        try:
            hook()
        except Exception:
            logger.exception("after-commit callback %r failed", hook)


def _drop_after_commit_hooks(session: Session) -> None:
    session.info.pop(_HOOKS_KEY, None)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits once at the end, or rolls back if the block raises."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# --- schema (Alembic) -----------------------------------------------------------------------------


def alembic_config(url: str) -> Config:
    """An Alembic config for `url` that does not depend on alembic.ini or the working folder."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not an ini option, so '%' in passwords needs no escaping.
    config.attributes["database_url"] = normalize_url(url)
    return config


def head_revision() -> str:
    """The newest migration this code knows."""
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def require_schema_at_head(engine: Engine) -> None:
    """Raise SchemaOutdatedError unless the database is at the newest migration."""
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        shown = current if current is not None else "(none: an empty database)"
        raise SchemaOutdatedError(
            f"database schema is at revision {shown} but this segtrack needs {head}; "
            f"run `{UPGRADE_COMMAND}`"
        )


def upgrade_database(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision` (what `segtrack db upgrade` runs)."""
    command.upgrade(alembic_config(url), revision)


def downgrade_database(url: str, revision: str) -> None:
    """Revert migrations down to `revision` ("base" empties the database)."""
    command.downgrade(alembic_config(url), revision)
