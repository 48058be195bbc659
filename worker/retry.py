"""A worker's database writes outlast database hiccups: they are retried, never dropped.

The worker shares its database with the API. On SQLite the API's writers take the one write lock
in turn, so under ingest load a report may wait its turn or hit "database is locked"; PostgreSQL
may restart or drop a connection. Those errors are transient: each write (a claim, a report, a
heartbeat, the outcome) runs again with exponential back-off until it commits. The writes that
must not be lost retry for the worker's outage limit (`SEGTRACK_WORKER_OUTAGE_LIMIT_S`); after
that `DatabaseUnavailableError` gives up, and its message, which names the limit, becomes the
failed run's reason.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

logger = logging.getLogger(__name__)

T = TypeVar("T")

OUTAGE_LIMIT_SETTING = "SEGTRACK_WORKER_OUTAGE_LIMIT_S"
"""The setting of how long a run's writes are retried (`Settings.worker_outage_limit_s`)."""
FIRST_DELAY_S = 0.05
MAX_DELAY_S = 5.0
_SQLITE_TRANSIENT = ("locked", "busy")


class DatabaseUnavailableError(RuntimeError):
    """A write kept failing with transient errors for longer than the retry limit."""


def is_transient(error: BaseException) -> bool:
    """True for errors that go away by themselves: a locked SQLite database, a dropped or
    refused connection, a full connection pool, a deadlock or serialisation failure."""
    if isinstance(error, PoolTimeoutError):
        return True
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated or isinstance(error, InterfaceError):
        return True
    if not isinstance(error, OperationalError):
        return False
    if isinstance(error.orig, sqlite3.Error):
        # Other SQLite operational errors (no such table, disk I/O error) do not heal.
        return any(word in str(error.orig).lower() for word in _SQLITE_TRANSIENT)
    return True  # PostgreSQL: connection trouble, deadlocks, lock and statement timeouts


def retry_write(
    write: Callable[[], T],
    *,
    what: str,
    limit_s: float,
    setting: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run `write` (one whole unit of work, e.g. a `session_scope` block) until it succeeds.

    Args:
        write: Opens its own session and commits; it runs again from the start after a
            transient error, so it must be safe to repeat (upserts, guarded updates).
        what: Names the write in log lines and in the error.
        limit_s: Give up after retrying for this long.
        setting: The setting `limit_s` comes from, named in the error so a reader knows
            what to raise.
        sleep: Waits between attempts; `clock` tells the time (tests pass fakes).

    Raises:
        DatabaseUnavailableError: transient errors for longer than `limit_s`.
        Exception: any other error of `write`, at once.
    """
    started = clock()
    delay = FIRST_DELAY_S
    attempts = 0
    while True:
        try:
            result = write()
        except Exception as error:
            if not is_transient(error):
                raise
            attempts += 1
            waited = clock() - started
            if waited >= limit_s:
                limit = f"{limit_s:g} s, the limit {setting} sets" if setting else f"{limit_s:g} s"
                raise DatabaseUnavailableError(
                    f"the database refused to store the {what} for {limit} "
                    f"({attempts} attempts): {_first_line(error)}"
                ) from error
            if attempts == 1 or attempts % 10 == 0:
                logger.warning(
                    "could not store the %s (%s); retrying (attempt %d, %.0f s of %g s)",
                    what, _first_line(error), attempts, waited, limit_s,
                )  # fmt: skip
            # Jitter keeps the retries of several writers from meeting again.
            sleep(min(delay * random.uniform(0.5, 1.0), max(limit_s - waited, 0.0)))
            delay = min(delay * 2, MAX_DELAY_S)
            continue
        if attempts:
            logger.info("stored the %s after %d retries", what, attempts)
        return result


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
