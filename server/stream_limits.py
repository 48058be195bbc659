"""How many event streams may be open at once: per client and in all.

A stream holds a `StreamSlot` from its request until it ends; one over either cap is refused
(the API answers 429 with Retry-After). Who "a client" is comes from `client_key`.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request

RETRY_AFTER_S = 5
"""What a refused client is told to wait: streams end when pages close or scripts stop."""


def client_key(request: Request) -> str:
    """Whom a stream counts against for the per-client cap.

    The signed-in user or token owner once authentication puts a principal with a `user_id` on
    `request.state.principal` (all of a user's streams together, from any address); else the
    client's address.
    """
    principal = getattr(request.state, "principal", None)
    user_id = getattr(principal, "user_id", None)
    if user_id is not None:
        return f"user:{user_id}"
    return f"address:{request.client.host if request.client else 'unknown'}"


@dataclass(frozen=True)
class Refusal:
    """Why a stream was not admitted."""

    scope: Literal["client", "server"]
    limit: int
    retry_after_s: int

    @property
    def message(self) -> str:
        if self.scope == "client":
            return (
                f"too many event streams open from this client: {self.limit} are allowed "
                f"(sse_max_streams_per_client); close one (a page or a script) or retry after "
                f"{self.retry_after_s} s"
            )
        return (
            f"the server has {self.limit} event streams open, the most it serves "
            f"(sse_max_streams); retry after {self.retry_after_s} s"
        )


class StreamSlot:
    """One admitted stream; `release` (idempotent) gives its place back."""

    def __init__(self, limits: StreamLimits, key: str) -> None:
        self.limits = limits
        self.key = key
        self._released = False

    def release(self) -> None:
        with self.limits.lock:
            if self._released:
                return
            self._released = True
            self.limits.release(self.key)


class StreamLimits:
    """Counts open streams per client key and in all."""

    def __init__(self, *, per_client: int, total: int, retry_after_s: int = RETRY_AFTER_S) -> None:
        self.per_client = per_client
        self.total = total
        self.retry_after_s = retry_after_s
        # Slots may be given back by the garbage collector, on any thread.
        self.lock = threading.Lock()
        self._open: Counter[str] = Counter()
        self._total = 0

    def admit(self, key: str) -> StreamSlot | Refusal:
        """A slot for one more stream of `key`, or why not."""
        with self.lock:
            if self._total >= self.total:
                return Refusal("server", self.total, self.retry_after_s)
            if self._open[key] >= self.per_client:
                return Refusal("client", self.per_client, self.retry_after_s)
            self._open[key] += 1
            self._total += 1
        return StreamSlot(self, key)

    def release(self, key: str) -> None:
        """Called with `lock` held, by `StreamSlot.release`."""
        self._open[key] -= 1
        if self._open[key] <= 0:
            del self._open[key]
        self._total -= 1

    def open_streams(self, key: str | None = None) -> int:
        """Streams open now, of `key` or in all."""
        with self.lock:
            return self._total if key is None else self._open[key]
