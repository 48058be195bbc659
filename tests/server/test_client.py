"""segtrack.client against a live server: submit, wait, stream, metrics, checkpoint download,
and buffered logging from an external run that survives a tracker outage; event streams that
reconnect and resume (against a scripted server, and across a real server's restart); the token
on every request."""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

import segtrack.client as client_module
from segtrack.client import ExternalRun, SegtrackClient, SegtrackError
from server.app import create_app
from server.artifacts import checkpoint_dir
from server.db import create_db_engine, make_session_factory, session_scope
from server.events import record_event
from server.preview.service import record_checkpoint
from server.run.lifecycle import claim_run, finish_run
from server.settings import Settings
from tests.server.helpers import LiveServer, RecordingTaskQueue, issue_token, valid_config

Start = Callable[..., LiveServer]


def test_submit_wait_metrics_and_checkpoint(
    start_live: Start, shapes_dataset: Path, tmp_path: Path
) -> None:
    server = start_live()
    settings = server.app.state.settings
    engine = create_db_engine(settings.database_url)
    factory = make_session_factory(engine)
    with SegtrackClient(server.url, token=server.token) as client:
        run = client.submit(valid_config(), name="via-client", tags=["c"], priority=3)
        assert run["status"] == "queued" and run["priority"] == 3

        def worker() -> None:
            time.sleep(0.3)
            with session_scope(factory) as session:
                claim_run(session, run["id"], worker="w", device="cpu")
            client_points = [{"key": "val/iou", "step": 1, "value": 0.7, "epoch": 1}]
            with SegtrackClient(server.url, token=server.token) as other:
                other.log_metrics(run["id"], client_points)
            folder = checkpoint_dir(settings.artifacts_dir, run["id"])
            folder.mkdir(parents=True)
            (folder / "best.pt").write_bytes(b"\x00weights")
            with session_scope(factory) as session:
                record_checkpoint(
                    session, settings.artifacts_dir, run["id"], "best", folder / "best.pt",
                    epoch=1, metric=0.7,
                )  # fmt: skip
                finish_run(session, run["id"], "succeeded")

        thread = threading.Thread(target=worker)
        thread.start()
        final = client.wait(run["id"], timeout=20, poll=1.0)
        thread.join()
        assert final["status"] == "succeeded"
        assert client.metrics(run["id"])["val/iou"]["value"] == [0.7]
        saved = client.download_checkpoint(run["id"], "best", tmp_path)
        assert saved.name == f"run-{run['id']}-best.pt" and saved.read_bytes() == b"\x00weights"
        with pytest.raises(SegtrackError) as error:
            client.download_checkpoint(run["id"], "last", tmp_path)
        assert error.value.status_code == 404
        assert [item["id"] for item in client.list_runs(tag="c")] == [run["id"]]
        with pytest.raises(TimeoutError):
            client.wait(client.submit(valid_config())["id"], timeout=0.5, poll=0.2)
    engine.dispose()


def test_errors_carry_the_server_message(start_live: Start) -> None:
    server = start_live()
    with SegtrackClient(server.url, token=server.token) as client:
        with pytest.raises(SegtrackError) as error:
            client.submit({"dataset": "shapes", "model": "resnet"})
        assert error.value.status_code == 422 and "model" in error.value.message
        with pytest.raises(SegtrackError, match="404"):
            client.get_run(123456)


def test_external_run_logs_in_batches(start_live: Start) -> None:
    server = start_live()
    with SegtrackClient(server.url, token=server.token) as client:
        events: list[dict[str, object]] = []
        with client.create_external_run("script", params={"lr": 0.1}, flush_interval=0.1) as run:
            assert isinstance(run, ExternalRun)
            started = time.perf_counter()
            for step in range(2_500):
                run.log("train/loss", 1.0 / (step + 1), step)
            run.log("val/iou", float("nan"), 0)
            assert time.perf_counter() - started < 1.0, "log() must not wait for the network"
            run.log_dict({"val/iou": 0.5, "val/dice": 0.6}, step=1, epoch=1)
            assert run.flush(timeout=10)
            stream = client.stream_events(run.id, after_id=0, read_timeout=5)
            for event in stream:
                events.append(event)
                if event.get("kind") == "metrics":
                    break
        final = client.get_run(run.id)
        assert final["status"] == "succeeded" and final["params"] == {"lr": 0.1}
        series = client.metrics(run.id)
        assert len(series["train/loss"]["step"]) == 2_500
        assert series["val/iou"]["value"] == [0.5]
        assert any(event.get("kind") == "metrics" for event in events)


def test_external_run_survives_a_tracker_outage(
    start_live: Start, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_live()
    client = SegtrackClient(server.url, token=server.token)
    run = client.create_external_run("flaky", flush_interval=0.05, close_timeout=1.0)
    server.__exit__()  # the tracker goes away mid-training
    with caplog.at_level(logging.WARNING, logger="segtrack.client"):
        for step in range(100):
            run.log("loss", float(step), step)
        assert run.flush(timeout=0.5) is False
        run.close("failed", failure_reason="boom")
    assert "cannot reach the tracker" in caplog.text
    client.close()


def test_failed_block_marks_the_run_failed(start_live: Start) -> None:
    server = start_live()
    with SegtrackClient(server.url, token=server.token) as client:
        with pytest.raises(RuntimeError), client.create_external_run("crash") as run:
            run.log("loss", 1.0, 0)
            raise RuntimeError("diverged")
        final = client.get_run(run.id)
        assert final["status"] == "failed" and final["failure_reason"] == "RuntimeError: diverged"


# --- event streams that reconnect, and the token ---------------------------------------------


class _Dropping(httpx.SyncByteStream):
    """A response body that sends `chunks`, then fails as a reset connection would (or ends)."""

    def __init__(self, chunks: list[bytes], *, drop: bool = True) -> None:
        self.chunks = chunks
        self.drop = drop

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.drop:
            raise httpx.ReadError("connection reset by peer")


def _sse(event_id: int, step: int) -> bytes:
    data = json.dumps({"id": event_id, "kind": "metrics", "run_id": 1, "points": [{"step": step}]})
    return f"id: {event_id}\nevent: metrics\ndata: {data}\n\n".encode()


def _error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"code": code, "message": f"{code} here", "details": None}}
    return httpx.Response(status, json=body, headers=headers)


class _Scripted:
    """A fake server answering each request with the next scripted response."""

    def __init__(self, answers: list[Callable[[], httpx.Response]]) -> None:
        self.answers = answers
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers[len(self.requests) - 1]()

    def resumed_from(self) -> list[str | None]:
        return [request.headers.get("last-event-id") for request in self.requests]


def _stream(*chunks: bytes, drop: bool = True) -> Callable[[], httpx.Response]:
    headers = {"content-type": "text/event-stream"}
    return lambda: httpx.Response(200, headers=headers, stream=_Dropping(list(chunks), drop=drop))


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "RECONNECT_MIN_S", 0.001)


@pytest.mark.usefixtures("no_backoff")
def test_a_dropped_stream_reconnects_from_the_last_event_it_got() -> None:
    script = _Scripted(
        [
            _stream(b"retry: 2000\nid: 5\n\n"),  # drops before any event: resume from its position
            _stream(_sse(6, 1), _sse(7, 2)),
            lambda: _error(429, "too_many_streams", {"Retry-After": "0"}),
            lambda: _error(503, "unavailable"),
            _stream(b": keep-alive\n\n", _sse(8, 3), drop=False),  # the server closed it
            _stream(_sse(9, 4)),
            lambda: _error(404, "not_found"),
        ]
    )
    with SegtrackClient("http://segtrack.test", transport=httpx.MockTransport(script)) as client:
        got: list[dict[str, object]] = []
        with pytest.raises(SegtrackError) as error:
            got.extend(client.stream_events(1))
    assert error.value.status_code == 404, "a 4xx other than 429 ends the stream"
    assert [event["id"] for event in got] == [6, 7, 8, 9]
    assert script.resumed_from() == [None, "5", "7", "7", "7", "8", "9"]
    assert script.requests[1].url.params["after_id"] == "5"


def test_a_stream_refused_with_a_4xx_is_not_retried() -> None:
    script = _Scripted([lambda: _error(401, "unauthenticated")])
    transport = httpx.MockTransport(script)
    with (
        SegtrackClient("http://segtrack.test", transport=transport) as client,
        pytest.raises(SegtrackError) as error,
    ):
        next(client.stream_events())
    assert error.value.status_code == 401 and len(script.requests) == 1


def test_without_reconnect_the_first_drop_raises() -> None:
    script = _Scripted([_stream(_sse(1, 1)), lambda: _error(429, "too_many_streams")])
    with SegtrackClient("http://segtrack.test", transport=httpx.MockTransport(script)) as client:
        stream = client.stream_events(reconnect=False)
        assert next(stream)["id"] == 1
        with pytest.raises(httpx.ReadError):
            next(stream)
        with pytest.raises(SegtrackError) as error:
            next(client.stream_events(reconnect=False))
    assert error.value.status_code == 429


@pytest.mark.usefixtures("no_backoff")
def test_read_timeout_bounds_the_reconnecting_too() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    transport = httpx.MockTransport(refuse)
    with (
        SegtrackClient("http://segtrack.test", transport=transport) as client,
        pytest.raises(httpx.ReadTimeout, match=r"no events for 0\.2 s"),
    ):
        next(client.stream_events(read_timeout=0.2))


def test_the_token_goes_with_every_request(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str | None]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.headers.get("authorization")))
        if request.url.path.endswith("/events"):
            return _stream(_sse(1, 1), drop=False)()
        if request.url.path.endswith("/metrics"):
            return httpx.Response(200, json={"written": 1, "new": 1})
        return httpx.Response(200, json={"id": 3, "status": "running"})

    transport = httpx.MockTransport(answer)
    with SegtrackClient("http://segtrack.test", token="t0k", transport=transport) as client:
        client.get_run(3)
        next(client.stream_events(3))
        with client.create_external_run("script", flush_interval=0.01) as run:
            run.log("loss", 1.0, 1)
            assert run.flush(timeout=10)
    assert {method for method, _ in seen} == {"GET", "POST", "PATCH"}
    assert {header for _, header in seen} == {"Bearer t0k"}

    monkeypatch.setenv("SEGTRACK_TOKEN", "from-env")
    seen.clear()
    with SegtrackClient("http://segtrack.test", transport=transport) as client:
        client.get_run(3)
    with SegtrackClient("http://segtrack.test", token="", transport=transport) as client:
        client.get_run(3)
    monkeypatch.delenv("SEGTRACK_TOKEN")
    with SegtrackClient("http://segtrack.test", transport=transport) as client:
        client.get_run(3)
    assert [header for _, header in seen] == ["Bearer from-env", None, None]


class _ServerOnPort:
    """The app served by uvicorn on a given port (so a restarted server has the same URL)."""

    def __init__(self, app: FastAPI, port: int) -> None:
        self.app = app
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", port))
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "no server"
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()


def test_a_stream_resumes_across_a_server_restart_without_missing_events(
    start_live: Start,
    live_settings: Settings,
    task_queue: RecordingTaskQueue,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`start_live` is only asked for its clean-up of the live database."""
    monkeypatch.setattr(client_module, "RECONNECT_MIN_S", 0.05)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    engine = create_db_engine(live_settings.database_url)
    factory = make_session_factory(engine)
    server = _ServerOnPort(create_app(live_settings, task_queue=task_queue), port)
    token = issue_token(server.app.state.session_factory)
    client = SegtrackClient(url, token=token, timeout=10)
    received: queue.Queue[dict[str, Any]] = queue.Queue()
    try:
        run = client.create_external_run("across-restarts")
        run.close_timeout = 0.5

        def listen() -> None:
            # Ends when the test closes the client (RuntimeError: closed while reconnecting).
            with contextlib.suppress(httpx.HTTPError, SegtrackError, RuntimeError):
                # From the start: step 1 arrives however late the stream subscribes.
                for event in client.stream_events(run.id, after_id=0, kinds=["metrics"]):
                    received.put(event)

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        client.log_metrics(run.id, [{"key": "loss", "step": 1, "value": 1.0}])
        assert received.get(timeout=10)["points"][0]["step"] == 1

        server.stop()
        with session_scope(factory) as session:  # a worker writes while the server is down
            record_event(session, "metrics", run.id, {"points": [{"step": 2}]})
        server = _ServerOnPort(create_app(live_settings, task_queue=task_queue), port)
        assert received.get(timeout=20)["points"][0]["step"] == 2
        client.log_metrics(run.id, [{"key": "loss", "step": 3, "value": 1.0}])
        assert received.get(timeout=10)["points"][0]["step"] == 3
        assert received.empty(), "nothing came twice"
    finally:
        client.close()
        server.stop()
        engine.dispose()
