"""Caps on open event streams: per client and in all, 429 with Retry-After and the JSON error
shape over the cap, slots given back when streams end (also refused ones), and the client key
that counts a signed-in user's streams together."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from types import SimpleNamespace

import httpx
from starlette.requests import Request

from server.event_stream import stream_limits
from server.stream_limits import StreamLimits, StreamSlot, client_key
from tests.server.helpers import LiveServer

Start = Callable[..., LiveServer]


def _open(stack: ExitStack, http: httpx.Client, url: str) -> Iterator[str]:
    """The lines of a stream that is subscribed (its first message arrived). Keep them: httpx
    closes the connection when they are dropped."""
    response = stack.enter_context(http.stream("GET", url))
    assert response.status_code == 200
    lines = response.iter_lines()
    assert next(lines).startswith("retry:")
    return lines


def _until_open_streams(server: LiveServer, count: int) -> None:
    deadline = time.monotonic() + 10
    while stream_limits(server.app).open_streams() != count:
        assert time.monotonic() < deadline, "the server did not notice the closed streams"
        time.sleep(0.01)


def test_streams_over_the_per_client_cap_are_refused_until_one_closes(start_live: Start) -> None:
    server = start_live(sse_max_streams_per_client=2, sse_max_streams=10)
    with server.http() as http:
        run = http.post("/api/v1/runs", json={"external": True, "name": "capped"}).json()
        with ExitStack() as stack:
            streams = [
                _open(stack, http, "/api/v1/events"),
                _open(stack, http, f"/api/v1/runs/{run['id']}/events"),
            ]
            assert stream_limits(server.app).open_streams() == len(streams)
            refused = http.get("/api/v1/events?kind=dataset")
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "5"
            error = refused.json()["error"]
            assert error["code"] == "too_many_streams"
            assert error["details"] == {"limit": 2, "scope": "client"}
            assert (
                "2 are allowed" in error["message"]
                and "sse_max_streams_per_client" in error["message"]
            )
            assert http.get(f"/api/v1/runs/{run['id']}/events").status_code == 429
            # Other requests of that client are not limited.
            assert http.get(f"/api/v1/runs/{run['id']}").status_code == 200
        _until_open_streams(server, 0)
        with ExitStack() as stack:
            _open(stack, http, "/api/v1/events")


def test_streams_over_the_server_cap_are_refused(start_live: Start) -> None:
    server = start_live(sse_max_streams_per_client=10, sse_max_streams=1)
    with server.http() as http, ExitStack() as stack:
        stream = _open(stack, http, "/api/v1/events")
        refused = http.get("/api/v1/events")
        assert refused.status_code == 429 and refused.headers["retry-after"] == "5"
        error = refused.json()["error"]
        assert error["details"] == {"limit": 1, "scope": "server"}
        assert "sse_max_streams" in error["message"]
        assert next(stream) == "id: 0", "the open stream is unharmed"


def test_a_stream_refused_for_an_unknown_run_gives_its_slot_back(start_live: Start) -> None:
    server = start_live(sse_max_streams_per_client=1)
    with server.http() as http:
        for _ in range(3):
            assert http.get("/api/v1/runs/98765/events").status_code == 404
        assert http.get("/api/v1/events?after_id=-1").status_code == 422
        assert stream_limits(server.app).open_streams() == 0
        with ExitStack() as stack:
            _open(stack, http, "/api/v1/events")


def test_slots_are_counted_per_key_and_given_back_once() -> None:
    limits = StreamLimits(per_client=2, total=3)
    first, second = limits.admit("a"), limits.admit("a")
    assert isinstance(first, StreamSlot) and isinstance(second, StreamSlot)
    refused = limits.admit("a")
    assert not isinstance(refused, StreamSlot) and refused.scope == "client"
    assert isinstance(limits.admit("b"), StreamSlot)
    refused = limits.admit("c")
    assert not isinstance(refused, StreamSlot) and refused.scope == "server"
    first.release()
    first.release()
    assert limits.open_streams("a") == 1 and limits.open_streams() == 2


def _request(principal: object = None) -> Request:
    scope = {"type": "http", "client": ("10.1.2.3", 50000), "headers": [], "state": {}}
    request = Request(scope)
    if principal is not None:
        request.state.principal = principal
    return request


def test_the_client_key_is_the_user_once_signed_in_else_the_address() -> None:
    assert client_key(_request()) == "address:10.1.2.3"
    assert client_key(_request(SimpleNamespace(user_id=7))) == "user:7"
    assert client_key(_request(SimpleNamespace(user_id=None))) == "address:10.1.2.3"
