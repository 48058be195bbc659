"""Engines, sessions (one unit of work per request or per worker report) and the schema check.

Repositories never commit: whoever opened the session commits once (`session_scope`). Sessions
from `make_session_factory` then run the callbacks registered with `after_commit` (send a Celery
task, publish an event), so nothing outside the database hears about a change that was rolled
back.

On SQLite (embedded mode) writers are serialised by design: a transaction that may write takes
the database's write lock when it begins (`BEGIN IMMEDIATE`), so it can never fail halfway with
`database is locked` after reading; the writers of one process queue for it in arrival order and
those of several processes (the API and the worker) meet at a lock file beside the database, so
nobody polls in SQLite's busy handler and no process starves another. Read-only sessions
(`write=False`) begin deferred and, in WAL mode, read alongside any writer.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
UPGRADE_COMMAND = "segtrack db upgrade"
_HOOKS_KEY = "segtrack.after_commit"
WRITE_OPTION = "segtrack_write"
"""Execution option: False for a read-only transaction (SQLite: deferred BEGIN, no write lock)."""
_HELD_LOCK = "segtrack.sqlite_write_lock"
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
    # SQLAlchemy, not the driver, begins transactions (see `_SqliteWrites.begin`).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while a worker writes; NORMAL is durable enough with WAL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


class _FairLock:
    """A lock handed to its waiters in arrival order, so no writer waits behind ever-new ones."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Lock] = deque()

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            waiter = threading.Lock()
            waiter.acquire()
            self._waiters.append(waiter)
        if waiter.acquire(timeout=timeout):
            return True
        with self._mutex:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                return False
        return True  # handed over just as the wait ran out: it is ours now

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()  # ownership passes on; still held
            else:
                self._held = False


class SqliteWriteLock:
    """The right to write one SQLite database: first among this process's threads (in arrival
    order), then among processes, through a POSIX lock on `<database>.write-lock`.

    POSIX locks belong to the process (its threads share them, hence the thread lock first), are
    not inherited by forked children (DataLoader workers) and are dropped by the kernel when a
    process dies, so a killed writer never leaves the database locked.
    """

    def __init__(self, lock_file: Path | None) -> None:
        self._threads = _FairLock()
        self._lock_file = lock_file
        self._fd: int | None = None

    def acquire(self, timeout_s: float) -> None:
        """Wait up to `timeout_s` for this process's turn, then for the other processes'.

        Raises:
            OperationalError: ("database is locked") another thread of this process kept the
                database for `timeout_s`.
        """
        if not self._threads.acquire(timeout_s):
            raise OperationalError(
                "BEGIN IMMEDIATE",
                None,
                sqlite3.OperationalError(
                    f"database is locked: other writers of this process held it for {timeout_s:g} s"
                ),
            )
        try:
            if self._lock_file is not None:
                if self._fd is None:
                    self._fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
                # No timeout: the holder is one short transaction of another segtrack process.
                fcntl.lockf(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        try:
            if self._fd is not None:
                fcntl.lockf(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


_WRITE_LOCKS: dict[str, SqliteWriteLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def sqlite_write_lock(database: str) -> SqliteWriteLock:
    """The write lock of SQLite `database` (a path, or ":memory:"), one per file per process."""
    memory = database in ("", ":memory:") or database.startswith("file:")
    key = database if memory else str(Path(database).expanduser().resolve())
    with _WRITE_LOCKS_GUARD:
        lock = _WRITE_LOCKS.get(key)
        if lock is None:
            lock = SqliteWriteLock(None if memory else Path(key + ".write-lock"))
            _WRITE_LOCKS[key] = lock
        return lock


def _forget_write_locks() -> None:
    """In a forked child: the parent's locks (maybe held by a thread that did not fork) and lock
    file descriptor are not this process's."""
    global _WRITE_LOCKS_GUARD  # noqa: PLW0603 - rebuilt once per fork
    _WRITE_LOCKS_GUARD = threading.Lock()
    _WRITE_LOCKS.clear()


os.register_at_fork(after_in_child=_forget_write_locks)


class _SqliteWrites:
    """Engine events that begin SQLite transactions: `BEGIN IMMEDIATE` under the write lock for
    sessions that may write, a deferred `BEGIN` for read-only ones; the lock is released once
    the COMMIT or ROLLBACK has run."""

    def __init__(self, database: str, lock_timeout_s: float) -> None:
        self._database = database
        self._lock_timeout_s = lock_timeout_s

    def install(self, engine: Engine) -> None:
        event.listen(engine, "begin", self.begin)
        event.listen(engine, "commit", self.commit)
        event.listen(engine, "rollback", self.rollback)
        # Safety nets: a connection that goes back to the pool or is thrown away mid-transaction.
        event.listen(engine.pool, "checkin", self._on_pool_event)
        event.listen(engine.pool, "invalidate", self._on_pool_event)

    def begin(self, conn: Connection) -> None:
        if not conn.get_execution_options().get(WRITE_OPTION, True):
            conn.exec_driver_sql("BEGIN")
            return
        lock = sqlite_write_lock(self._database)
        lock.acquire(self._lock_timeout_s)
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            lock.release()
            raise
        conn.info[_HELD_LOCK] = lock

    def commit(self, conn: Connection) -> None:
        lock = self._held(conn)
        if lock is not None:
            try:
                # Committed here so the lock outlives the COMMIT; SQLAlchemy's own commit that
                # follows finds no transaction and does nothing.
                conn.exec_driver_sql("COMMIT")
            finally:
                lock.release()

    def rollback(self, conn: Connection) -> None:
        lock = self._held(conn)
        if lock is not None:
            try:
                with suppress(Exception):  # SQLAlchemy's own rollback follows and reports
                    conn.connection.dbapi_connection.rollback()  # type: ignore[union-attr]
            finally:
                lock.release()

    @staticmethod
    def _held(conn: Connection) -> SqliteWriteLock | None:
        try:
            held: SqliteWriteLock | None = conn.info.pop(_HELD_LOCK, None)
        except Exception:  # an invalidated connection; the pool event releases
            return None
        return held

    @staticmethod
    def _on_pool_event(dbapi_connection: Any, record: Any, *_args: Any) -> None:
        lock: SqliteWriteLock | None = record.info.pop(_HELD_LOCK, None)
        if lock is not None:
            logger.warning("a SQLite connection left its write transaction unfinished")
            with suppress(Exception):
                dbapi_connection.rollback()
            lock.release()


def create_db_engine(
    url: str, *, sqlite_lock_timeout_s: float = SQLITE_BUSY_TIMEOUT_MS / 1000, **kwargs: Any
) -> Engine:
    """An engine for `url`: PostgreSQL through psycopg 3, or SQLite in WAL mode with serialised
    writers (see the module's docstring).

    SQL parameters are left out of error messages and logs (`hide_parameters`): they end up in
    failed runs' tracebacks, which users read. A SQLite database file's folder is created when
    missing (embedded mode's first start).

    Args:
        url: A SQLAlchemy URL.
        sqlite_lock_timeout_s: How long a SQLite writer waits for the writers ahead of it in
            this process before failing with "database is locked".
        **kwargs: Passed to `sqlalchemy.create_engine`.
    """
    url = normalize_url(url)
    parsed = make_url(url)
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        # Readers run side by side in WAL mode: enough connections for the API's thread pool.
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 30)
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        _SqliteWrites(database, sqlite_lock_timeout_s).install(engine)
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
    write: bool = True,
) -> sessionmaker[Session]:
    """Sessions on `bind` that run `after_commit` callbacks when they commit.

    Args:
        bind: An engine, or a connection inside a transaction (tests roll it back).
        notifier: Called after the commit of a session that recorded events
            (`server.events.EventNotifier.notify` publishes them to Redis).
        join_savepoint: Commit to a savepoint of `bind`'s open transaction instead of committing
            it; for tests whose outer transaction is rolled back at the end.
        write: False for sessions that only read (on SQLite they begin deferred and take no
            write lock); `session_scope(factory, write=...)` chooses per session.
    """
    factory = sessionmaker(
        bind=_bind_for(bind, write=write),
        expire_on_commit=False,
        info={NOTIFIER_KEY: notifier},
        join_transaction_mode="create_savepoint" if join_savepoint else "conditional_savepoint",
    )
    event.listen(factory, "after_commit", _run_after_commit_hooks)
    event.listen(factory, "after_rollback", _drop_after_commit_hooks)
    return factory


def _bind_for(bind: Engine | Connection, *, write: bool) -> Engine | Connection:
    """`bind`, or a view of the engine whose transactions are read-only or write ones.

    A connection is returned as it is: its transaction has begun already.
    """
    if (
        not isinstance(bind, Engine)
        or bind.get_execution_options().get(WRITE_OPTION, True) == write
    ):
        return bind
    return bind.execution_options(**{WRITE_OPTION: write})


def open_session(factory: sessionmaker[Session], *, write: bool = True) -> Session:
    """A new session of `factory` that may write (the default) or only reads (`write=False`).

    A read-only session must not write: on SQLite its deferred transaction could meet another
    writer's commit and fail with "database is locked" (the API uses it for GET requests).
    """
    bind = factory.kw.get("bind")
    if bind is None:
        return factory()
    chosen = _bind_for(bind, write=write)
    return factory() if chosen is bind else factory(bind=chosen)


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
def session_scope(factory: sessionmaker[Session], *, write: bool = True) -> Iterator[Session]:
    """A session that commits once at the end, or rolls back if the block raises.

    Args:
        factory: Sessions from `make_session_factory`.
        write: False when the block only reads; see `open_session`.
    """
    with open_session(factory, write=write) as session:
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
