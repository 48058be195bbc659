"""Failed sign-ins counted per client address and per account name in a sliding window: enough
to make guessing passwords over the network hopeless.

With a Redis URL the counts live in Redis, so every API process (`segtrack serve --workers N`)
and every API host pointed at it shares them: N processes do not allow N times the attempts.
Without one (the embedded mode, one process) they live in the process's memory. While Redis
cannot be reached, each process counts in its own memory again, so an outage never opens the
door wider than one process's allowance.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import deque
from typing import Protocol

import redis

logger = logging.getLogger(__name__)

REDIS_PREFIX = "segtrack:login-failures:"
"""Prefix of the Redis keys; one sorted set of failure times per counted key."""


class LoginRateLimiter(Protocol):
    """At most `attempts` failures per key within `window_s` seconds."""

    def retry_after(self, *keys: str) -> float:
        """Seconds until every key may try again; 0 when all may try now."""
        ...

    def failed(self, *keys: str) -> None:
        """Count one failure against each key."""
        ...

    def succeeded(self, *keys: str) -> None:
        """Forget the failures of each key."""
        ...

    def close(self) -> None:
        """Let go of what the counts need (a Redis connection)."""
        ...


class MemoryLoginRateLimiter:
    """The counts in this process's memory."""

    MAX_KEYS = 100_000
    """Keys kept at most: a flood of made-up names cannot grow memory without bound."""

    def __init__(self, attempts: int, window_s: float) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, *keys: str) -> float:
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

    def close(self) -> None:
        return None

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures


class RedisLoginRateLimiter:
    """The counts in Redis, shared by every process using `redis_url`; this process's memory
    while Redis cannot be reached.

    Each key is a sorted set of failure times (Redis's own clock, so hosts with different
    clocks agree), trimmed to the window on every look and expiring with it.
    """

    TIMEOUT_S = 1.0
    """A sign-in waits at most this long for Redis before counting in memory."""

    def __init__(self, redis_url: str, attempts: int, window_s: float) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._client = redis.Redis.from_url(
            redis_url, socket_connect_timeout=self.TIMEOUT_S, socket_timeout=self.TIMEOUT_S
        )
        self._fallback = MemoryLoginRateLimiter(attempts, window_s)

    def retry_after(self, *keys: str) -> float:
        try:
            now = self._now()
            pipeline = self._client.pipeline()
            for key in keys:
                pipeline.zremrangebyscore(_redis_key(key), 0, now - self.window_s)
                pipeline.zrange(_redis_key(key), 0, 0, withscores=True)
                pipeline.zcard(_redis_key(key))
            replies = pipeline.execute()
        except redis.RedisError as error:
            logger.warning("sign-in failures counted in this process: Redis: %s", error)
            return self._fallback.retry_after(*keys)
        wait = 0.0
        for index in range(len(keys)):
            oldest, count = replies[3 * index + 1], replies[3 * index + 2]
            if count >= self.attempts and oldest:
                wait = max(wait, float(oldest[0][1]) + self.window_s - now)
        return max(wait, self._fallback.retry_after(*keys))

    def failed(self, *keys: str) -> None:
        try:
            now = self._now()
            pipeline = self._client.pipeline()
            for key in keys:
                # A unique member per failure: two at the same instant both count.
                pipeline.zadd(_redis_key(key), {uuid.uuid4().hex: now})
                pipeline.expire(_redis_key(key), max(1, round(self.window_s) + 1))
            pipeline.execute()
        except redis.RedisError as error:
            logger.warning("sign-in failures counted in this process: Redis: %s", error)
            self._fallback.failed(*keys)

    def succeeded(self, *keys: str) -> None:
        self._fallback.succeeded(*keys)
        try:
            self._client.delete(*(_redis_key(key) for key in keys))
        except redis.RedisError as error:
            logger.warning("could not clear sign-in failures in Redis: %s", error)

    def close(self) -> None:
        self._client.close()

    def _now(self) -> float:
        seconds, microseconds = self._client.time()
        return seconds + microseconds / 1e6


def _redis_key(key: str) -> str:
    """Account names are anything a client sends: hashed, so a key's length is bounded."""
    return REDIS_PREFIX + hashlib.sha256(key.encode()).hexdigest()


def login_rate_limiter(redis_url: str | None, attempts: int, window_s: float) -> LoginRateLimiter:
    """Shared through Redis when there is a URL, else in memory."""
    if redis_url is None:
        return MemoryLoginRateLimiter(attempts, window_s)
    return RedisLoginRateLimiter(redis_url, attempts, window_s)
