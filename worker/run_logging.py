"""Every log line names its run, and each run's lines also go to the run's own log file.

The file is what `GET /api/v1/runs/{id}/logs` tails; the run id in the format lets a worker's
combined output be grepped per run.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CURRENT_RUN: contextvars.ContextVar[int | None] = contextvars.ContextVar("run_id", default=None)
LOG_FORMAT = "%(asctime)s %(levelname)s [run %(run_id)s] %(name)s: %(message)s"


class RunIdFilter(logging.Filter):
    """Adds `record.run_id` (the current run, or '-')."""

    def filter(self, record: logging.LogRecord) -> bool:
        run_id = CURRENT_RUN.get()
        record.run_id = "-" if run_id is None else str(run_id)
        return True


def install_run_id_logging(level: int = logging.INFO) -> None:
    """Give every handler of the root logger the run id filter and format."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level)
    root.setLevel(level)
    for handler in root.handlers:
        _prepare(handler)


def _prepare(handler: logging.Handler) -> None:
    if not any(isinstance(f, RunIdFilter) for f in handler.filters):
        handler.addFilter(RunIdFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))


class OnlyRunFilter(logging.Filter):
    """Passes the lines logged for one run (in whatever thread); a worker trains several."""

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self._run_id = run_id

    def filter(self, record: logging.LogRecord) -> bool:
        return CURRENT_RUN.get() == self._run_id


@contextmanager
def run_logging(run_id: int, log_file: Path) -> Iterator[None]:
    """Within the block, log lines carry `run_id`, and the lines of `run_id` (logged in any
    thread) are appended to `log_file`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, encoding="utf-8")
    _prepare(handler)
    handler.addFilter(OnlyRunFilter(run_id))
    root = logging.getLogger()
    root.addHandler(handler)
    token = CURRENT_RUN.set(run_id)
    try:
        yield
    finally:
        CURRENT_RUN.reset(token)
        root.removeHandler(handler)
        handler.close()
