"""Failed sign-ins counted per client address and per account name in a sliding window, in
memory: enough to make guessing passwords over the network hopeless (each API process counts
on its own, so N processes allow N times the attempts)."""

from __future__ import annotations

import threading
import time
from collections import deque


class LoginRateLimiter:
    """At most `attempts` failures per key within `window_s` seconds."""

    MAX_KEYS = 100_000
    """Keys kept at most: a flood of made-up names cannot grow memory without bound."""

    def __init__(self, attempts: int, window_s: float) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, *keys: str) -> float:
        """Seconds until every key may try again; 0 when all may try now."""
        now = time.monotonic()
        wait = 0.0
        with self._lock:
            for key in keys:
                failures = self._recent(key, now)
                if len(failures) >= self.attempts:
                    wait = max(wait, failures[0] + self.window_s - now)
        return wait

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) >= self.MAX_KEYS:
                # The oldest keys go first; one address hits its own limit long before this.
                for stale in list(self._failures)[: self.MAX_KEYS // 10]:
                    del self._failures[stale]
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures
