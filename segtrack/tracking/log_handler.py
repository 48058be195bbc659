"""A logging handler that sends a process's log lines to its tracked run's log (the run page's
log tail), numbered in order; a traceback logged with `logger.exception` arrives whole."""

from __future__ import annotations

import logging
from typing import Protocol

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_LOGGERS = ("segtrack.tracking", "httpx", "httpcore")
"""The tracker's own lines (and its HTTP library's) stay local: a run's log would otherwise
fill with 'cannot reach the server' while the server is away."""


class LineSink(Protocol):
    def log_lines(self, lines: list[str]) -> None: ...


class RunLogHandler(logging.Handler):
    """Queues each formatted record's lines on a tracked run (never blocks on the network)."""

    def __init__(self, run: LineSink, level: int = logging.INFO) -> None:
        super().__init__(level)
        self._run = run
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if any(name == quiet or name.startswith(f"{quiet}.") for quiet in QUIET_LOGGERS):
            return False
        return super().filter(record)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._run.log_lines(self.format(record).splitlines() or [""])
        except Exception:
            self.handleError(record)
