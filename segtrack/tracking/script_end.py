"""How the script ended, for tracked runs it did not finish: sys.excepthook (wrapped once) sees
an exception that reached the top, and the runs' exit handlers finish them failed or cancelled
with its reason instead of succeeded."""

from __future__ import annotations

import sys
import threading
from types import TracebackType


def failure_reason(error: BaseException) -> str:
    """`Type: message`, one line, as the run page shows it."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:MAX_REASON] if text else type(error).__name__


MAX_REASON = 1000


class ScriptEnd:
    """How the script ended, for runs it did not finish: an exception that reached the top
    (seen through sys.excepthook, installed once) makes them failed or cancelled."""

    def __init__(self) -> None:
        self.outcome: tuple[str, str] | None = None
        self._lock = threading.Lock()
        self._installed = False

    def install(self) -> None:
        with self._lock:
            if self._installed:
                return
            self._installed = True
            previous = sys.excepthook

            def remember(
                kind: type[BaseException], error: BaseException, tb: TracebackType | None
            ) -> None:
                if isinstance(error, KeyboardInterrupt):
                    self.outcome = ("cancelled", "interrupted (Ctrl-C)")
                else:
                    self.outcome = ("failed", failure_reason(error))
                previous(kind, error, tb)

            sys.excepthook = remember


script_end = ScriptEnd()
