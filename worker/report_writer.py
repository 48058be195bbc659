"""The training's reports reach the database from a background thread, in order, so that a
database outage delays them without stopping the training.

`ReportWriter.submit` queues one report (a function that writes it in a session) and returns at
once; one thread stores the reports in the order they came, each in one short transaction retried
for the worker's outage limit (`worker.retry`), then publishes their events. At most `CAPACITY`
reports wait in memory: a training that reports faster than they can be stored (an outage longer
than the queue lasts) waits for room, and only then. A report that cannot be stored (the limit ran
out, or a lasting error) ends the writing: the next `submit` or `flush` raises `ReportWriteError`
with the reason the run fails with. Reports that may be lost (`essential=False`, system samples)
are only logged when they fail.
"""

from __future__ import annotations

import logging
import queue
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from server.db import session_scope
from server.events import notify_committed
from worker.retry import OUTAGE_LIMIT_SETTING, DatabaseUnavailableError, retry_write
from worker.run_logging import CURRENT_RUN

logger = logging.getLogger(__name__)

CAPACITY = 10_000
"""Reports waiting to be stored, at most: hours of epochs, or minutes of step losses."""


class ReportWriteError(RuntimeError):
    """A report could not be stored; the message is the failed run's reason.

    Attributes:
        details: The traceback of the failed write, in the writer's thread.
    """

    def __init__(self, reason: str, details: str) -> None:
        super().__init__(reason)
        self.details = details


@dataclass(frozen=True)
class _Report:
    what: str
    write: Callable[[Session], object]
    essential: bool


class ReportWriter:
    """One run's reports, stored in order by a background thread (started by the first report).

    Args:
        run_id: Named in the thread's log lines.
        sessions: Sessions of the worker's database.
        redis_url: Where events are published after each commit (None: nowhere).
        limit_s: How long one report is retried before the writing fails.
        capacity: Reports that may wait; `submit` blocks while this many do.
    """

    def __init__(
        self,
        *,
        run_id: int,
        sessions: sessionmaker[Session],
        redis_url: str | None,
        limit_s: float,
        capacity: int = CAPACITY,
    ) -> None:
        self._run_id = run_id
        self._sessions = sessions
        self._redis_url = redis_url
        self._limit_s = limit_s
        self._queue: queue.Queue[_Report | None] = queue.Queue(maxsize=capacity)
        self._failure: ReportWriteError | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(
        self, what: str, write: Callable[[Session], object], *, essential: bool = True
    ) -> None:
        """Queue `write` (it runs in a session of its own, maybe more than once: it must be safe
        to repeat); returns at once unless `CAPACITY` reports are waiting.

        Args:
            what: Names the report in log lines and in the failed run's reason.
            essential: False for a report the run can do without: a failure is logged.

        Raises:
            ReportWriteError: an earlier essential report could not be stored.
        """
        self._raise_failure()
        self._start()
        self._queue.put(_Report(what, write, essential))

    def flush(self) -> None:
        """Wait until every report submitted so far is stored (or given up).

        Raises:
            ReportWriteError: an essential report could not be stored.
        """
        self._queue.join()
        self._raise_failure()

    def close(self) -> None:
        """Store what is queued, then end the thread; failures are left to `flush` to raise."""
        if self._thread is None:
            return
        self._queue.put(None)  # the thread ends once everything before it is stored
        self._thread.join()
        self._thread = None

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"reports-{self._run_id}", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        CURRENT_RUN.set(self._run_id)
        while True:
            report = self._queue.get()
            try:
                if report is None:  # from close()
                    return
                if self._failure is None:
                    self._store(report)
            finally:
                self._queue.task_done()

    def _store(self, report: _Report) -> None:
        def attempt() -> None:
            with session_scope(self._sessions) as session:
                report.write(session)

        try:
            retry_write(
                attempt, what=report.what, limit_s=self._limit_s, setting=OUTAGE_LIMIT_SETTING
            )
        except Exception as error:
            if not report.essential:
                logger.warning("dropped the %s: %s", report.what, error)
                return
            reason = (
                str(error)
                if isinstance(error, DatabaseUnavailableError)
                else f"could not store the {report.what}: {type(error).__name__}: {error}"
            )
            logger.error("%s; the reports after it are not stored", reason)
            self._failure = ReportWriteError(reason, "".join(traceback.format_exception(error)))
            return
        notify_committed(self._redis_url)
