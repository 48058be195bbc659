"""A tracked run's heartbeat: a daemon thread that tells the server every few seconds that the
training process is alive (the server fails the run when heartbeats stop for the run's
`heartbeat_timeout_s`) and learns from the answer whether someone asked the run to stop, and
which validation images users pinned on it.

It has its own thread and connection so that a long upload on the sender's never delays it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from segtrack.client import SegtrackError
from segtrack.tracking.api import TrackingApi, Unreachable

logger = logging.getLogger(__name__)

INTERVAL_S = 5.0


class Heartbeat:
    """Beats for the run whose id `run_id()` gives (nothing until it is known)."""

    def __init__(
        self,
        api: TrackingApi,
        run_id: Callable[[], int | None],
        on_stop_requested: Callable[[str], None],
        *,
        name: str = "segtrack-heartbeat",
        on_pins: Callable[[tuple[int, ...]], None] = lambda pins: None,
    ) -> None:
        """Args:
        on_stop_requested: Called with the run's status when an answer asks the run to stop
            (a cancel from the dashboard, or a run the server already ended).
        on_pins: Called with the validation images pinned on the run, from every answer
            that lists them.
        """
        self._api = api
        self._run_id = run_id
        self._on_stop_requested = on_stop_requested
        self._on_pins = on_pins
        self._interval_s = INTERVAL_S
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def beat_now(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(10)
        self._api.close()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self._interval_s)
            self._wake.clear()
            if self._stopping:
                return
            run_id = self._run_id()
            if run_id is None:
                continue
            try:
                answer = self._api.heartbeat(run_id)
            except (Unreachable, SegtrackError) as error:
                # The sender reports an unreachable server; a missed beat is only logged here.
                logger.debug("heartbeat of run %d failed: %s", run_id, error)
                continue
            if answer.get("stop_requested"):
                self._on_stop_requested(str(answer.get("status")))
            pins = answer.get("pinned_images")
            if isinstance(pins, list):
                self._on_pins(tuple(pin for pin in pins if isinstance(pin, int) and pin >= 0))
