"""A background thread that keeps the worker (and its current run) visibly alive.

Every `interval` seconds it refreshes the worker's row and, while a run trains, the run's
heartbeat; the status it reads back is how a cancel reaches the training loop without the loop
ever waiting on the database. A beat that meets a locked or unreachable database is retried until
the next one is due (`worker.retry`), so ingest load on the API never lets a run look lost.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from server.db import session_scope
from server.run.lifecycle import heartbeat
from server.worker_status.repository import SlotHolder, remove_worker, upsert_worker
from worker.retry import retry_write
from worker.run_logging import CURRENT_RUN

logger = logging.getLogger(__name__)

REMOVE_RETRY_S = 2.0
"""How long a stopping worker tries to remove its row; the reaper drops it otherwise."""


@dataclass(frozen=True)
class WorkerIdentity:
    """How a worker process shows up on the workers page."""

    name: str
    hostname: str
    pid: int
    device: str
    queues: tuple[str, ...]


class Heartbeat:
    """Refreshes the worker row and the current run's heartbeat until `stop()` is called."""

    def __init__(
        self, sessions: sessionmaker[Session], identity: WorkerIdentity, interval: float
    ) -> None:
        self._sessions = sessions
        self._identity = identity
        self._interval = interval
        self._lock = threading.Lock()
        self._run_id: int | None = None
        self._stop_run = threading.Event()
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="segtrack-heartbeat", daemon=True)

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and remove the worker's row."""
        self._finished.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._interval * 2)

        def remove() -> None:
            with session_scope(self._sessions) as session:
                remove_worker(session, self._identity.name)

        try:
            retry_write(remove, what="removal of this worker", limit_s=REMOVE_RETRY_S)
        except Exception as error:  # the reaper drops a worker that is not seen any more
            logger.warning("could not remove worker %s: %s", self._identity.name, error)

    def watch(self, run_id: int | None) -> None:
        """Start (or, with None, stop) beating for a run; clears any earlier stop request."""
        with self._lock:
            self._run_id = run_id
            self._stop_run.clear()
        self.beat()

    @property
    def stop_requested(self) -> bool:
        """True once the current run was cancelled, deleted or declared lost."""
        return self._stop_run.is_set()

    def beat(self) -> None:
        """One refresh, now; retried until the next beat is due, then logged and left to it."""
        with self._lock:
            run_id = self._run_id
        token = CURRENT_RUN.set(run_id)

        def refresh() -> str | None:
            with session_scope(self._sessions) as session:
                identity = self._identity
                upsert_worker(
                    session,
                    name=identity.name,
                    hostname=identity.hostname,
                    pid=identity.pid,
                    device=identity.device,
                    queues=identity.queues,
                    slots=[SlotHolder(0, None, run_id)],
                    taking_messages=run_id is None,
                )
                return heartbeat(session, run_id) if run_id is not None else None

        try:
            status = retry_write(refresh, what="heartbeat", limit_s=self._interval)
            if run_id is not None and status != "running":
                if not self._stop_run.is_set():
                    logger.info("run is %s; asking the trainer to stop", status or "gone")
                self._stop_run.set()
        except Exception as error:  # the database may blip; training goes on
            logger.warning("heartbeat failed: %s", error)
        finally:
            CURRENT_RUN.reset(token)

    def _loop(self) -> None:
        while not self._finished.wait(self._interval):
            self.beat()
