"""Failed sign-ins counted in Redis are shared by every API process using it (N processes do
not allow N times the guesses), and counted in the process's memory while Redis is away."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from server.app import create_app
from server.auth import service
from server.auth.rate_limit import (
    MemoryLoginRateLimiter,
    RedisLoginRateLimiter,
    login_rate_limiter,
)
from server.db import session_scope
from server.settings import Settings
from tests.own_servers import free_port
from tests.server.helpers import ApiClient

PASSWORD = "correct horse battery"


@pytest.fixture
def key() -> str:
    """A key no other test (or earlier run of this one) has counted against."""
    return f"user:{uuid.uuid4().hex}"


@pytest.fixture
def limiters(redis_url: str, key: str) -> Iterator[tuple[RedisLoginRateLimiter, ...]]:
    """Two processes' limiters on the same Redis: 3 failures per 2 s."""
    pair = (RedisLoginRateLimiter(redis_url, 3, 2.0), RedisLoginRateLimiter(redis_url, 3, 2.0))
    yield pair
    pair[0].succeeded(key)
    for limiter in pair:
        limiter.close()


def test_failures_in_one_process_block_the_others_until_the_window_passes(
    limiters: tuple[RedisLoginRateLimiter, ...], key: str
) -> None:
    first, second = limiters
    first.failed(key)
    second.failed(key)
    assert first.retry_after(key) == second.retry_after(key) == 0
    first.failed(key)
    wait = second.retry_after(key)
    assert 0 < wait <= 2.0
    time.sleep(wait + 0.1)
    assert first.retry_after(key) == second.retry_after(key) == 0


def test_a_success_clears_the_key_for_every_process(
    limiters: tuple[RedisLoginRateLimiter, ...], key: str
) -> None:
    first, second = limiters
    for _ in range(3):
        first.failed(key)
    assert second.retry_after(key) > 0
    second.succeeded(key)
    assert first.retry_after(key) == 0


def test_without_redis_each_process_still_counts_on_its_own(key: str) -> None:
    gone = RedisLoginRateLimiter(f"redis://127.0.0.1:{free_port()}/0", 2, 60.0)
    try:
        gone.failed(key)
        assert gone.retry_after(key) == 0
        gone.failed(key)
        assert gone.retry_after(key) > 0
        gone.succeeded(key)
        assert gone.retry_after(key) == 0
    finally:
        gone.close()


def test_the_limiter_is_shared_only_when_there_is_a_redis_url(redis_url: str) -> None:
    assert isinstance(login_rate_limiter(None, 3, 1.0), MemoryLoginRateLimiter)
    shared = login_rate_limiter(redis_url, 3, 1.0)
    assert isinstance(shared, RedisLoginRateLimiter)
    shared.close()


def test_two_api_processes_on_one_redis_allow_the_attempts_of_one(
    settings: Settings, session_factory: sessionmaker[Session], redis_url: str
) -> None:
    name = f"user{uuid.uuid4().hex[:12]}"
    with session_scope(session_factory) as session:
        service.create_user(session, name, "member", PASSWORD)
    shared = settings.model_copy(update={"redis_url": redis_url, "login_attempts": 4})
    apps: list[FastAPI] = [create_app(shared, session_factory=session_factory) for _ in range(2)]
    try:
        with ApiClient(apps[0]) as first, ApiClient(apps[1]) as second:
            for client in (first, second, first, second):
                wrong = {"name": name, "password": "not the password"}
                assert client.post("/api/v1/auth/login", json=wrong).status_code == 401
            right = {"name": name, "password": PASSWORD}
            for client in (first, second):
                blocked = client.post("/api/v1/auth/login", json=right)
                assert blocked.status_code == 429, blocked.text
                assert "too many failed sign-ins" in blocked.json()["error"]["message"]
    finally:
        # ApiClient (httpx's ASGI transport) calls from 127.0.0.1.
        apps[0].state.login_limiter.succeeded("client:127.0.0.1", f"user:{name}")
