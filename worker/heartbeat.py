"""A background thread that keeps the worker (and the runs it trains) visibly alive.

Every `interval` seconds it refreshes the worker's row (which run holds each slot) and the
heartbeat of every run it trains, in one transaction; the status it reads back is how a cancel
reaches the run's supervisor, and through it the training process, without either ever waiting
on the database. A beat that meets a locked or unreachable database is retried until
the next one is due (`worker.retry`), so ingest load on the API never lets a run look lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from server.db import session_scope
from server.run.lifecycle import heartbeat
from server.worker_status.repository import remove_worker, upsert_worker
from worker.retry import retry_write
from worker.run_logging import CURRENT_RUN
from worker.slots import SlotPool

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
    """Refreshes the worker row and the heartbeats of the runs it trains until `stop()`."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        identity: WorkerIdentity,
        interval: float,
        *,
        slots: SlotPool,
        taking_messages: Callable[[], bool],
    ) -> None:
        self._sessions = sessions
        self._identity = identity
        self._interval = interval
        self._slots = slots
        self._taking_messages = taking_messages
        self._lock = threading.Lock()
        self._runs: dict[int, threading.Event] = {}
        """The runs being trained, each with the event set once it should stop."""
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

    def watch(self, run_id: int) -> None:
        """Start beating for a run (and beat now)."""
        with self._lock:
            self._runs[run_id] = threading.Event()
        self.beat()

    def unwatch(self, run_id: int) -> None:
        """Stop beating for a run (and show its slots free now)."""
        with self._lock:
            self._runs.pop(run_id, None)
        self.beat()

    def stop_requested(self, run_id: int) -> bool:
        """True once the run was cancelled, deleted or declared lost."""
        with self._lock:
            event = self._runs.get(run_id)
        return event is not None and event.is_set()

    def beat(self) -> None:
        """One refresh, now; retried until the next beat is due, then logged and left to it."""
        with self._lock:
            runs = dict(self._runs)
        holders = self._slots.holders()
        taking = self._taking_messages()

        def refresh() -> dict[int, str | None]:
            with session_scope(self._sessions) as session:
                identity = self._identity
                upsert_worker(
                    session,
                    name=identity.name,
                    hostname=identity.hostname,
                    pid=identity.pid,
                    device=identity.device,
                    queues=identity.queues,
                    slots=holders,
                    taking_messages=taking,
                )
                return {run_id: heartbeat(session, run_id) for run_id in runs}

        try:
            statuses = retry_write(refresh, what="heartbeat", limit_s=self._interval)
        except Exception as error:  # the database may blip; training goes on
            logger.warning("heartbeat failed: %s", error)
            return
        for run_id, status in statuses.items():
            if status == "running" or runs[run_id].is_set():
                continue
            token = CURRENT_RUN.set(run_id)
            logger.info("run is %s; asking the training to stop", status or "gone")
            CURRENT_RUN.reset(token)
            runs[run_id].set()

    def _loop(self) -> None:
        while not self._finished.wait(self._interval):
            self.beat()
