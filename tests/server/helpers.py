"""Helpers of the server tests: an in-process API client, a recording task queue, tiny datasets."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from server.auth.repository import user_by_name
from server.auth.service import create_token, create_user
from server.db import session_scope


@dataclass
class SentTask:
    run_id: int
    queue: str
    priority: int
    task_id: str


@dataclass
class RecordingTaskQueue:
    """Stands in for Celery: remembers what would have been sent or revoked."""

    sent: list[SentTask] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    jobs: list[tuple[int, str, str]] = field(default_factory=list)
    """(job id, queue, task id) of every job sent."""

    def send_run(self, run_id: int, *, queue: str, priority: int, task_id: str) -> None:
        self.sent.append(SentTask(run_id, queue, priority, task_id))

    def send_job(self, job_id: int, *, queue: str, task_id: str) -> None:
        self.jobs.append((job_id, queue, task_id))

    def revoke(self, task_id: str) -> None:
        self.revoked.append(task_id)


def write_dataset(root: Path, *, count: int = 4, size: int = 32, classes: int = 2) -> Path:
    """images/ + masks/ of `count` RGB PNGs and index masks where every class appears."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        mask = np.zeros((size, size), dtype=np.uint8)
        band = size // classes
        for value in range(1, classes):
            mask[value * band : (value + 1) * band, : size // 2 + index] = value
        Image.fromarray(image).save(root / "images" / f"sample_{index}.png")
        Image.fromarray(mask).save(root / "masks" / f"sample_{index}.png")
    return root


class ApiClient:
    """A synchronous client driving the app in-process: httpx's ASGI transport run on an anyio
    portal, with the app's lifespan entered. (starlette's TestClient warns about httpx, and
    warnings fail the tests.) Errors inside the app propagate to the test."""

    def __init__(self, app: FastAPI, token: str | None = None) -> None:
        self.app = app
        self.token = token
        self._stack = ExitStack()
        self._portal: BlockingPortal | None = None
        self._client: httpx.AsyncClient | None = None

    def __enter__(self) -> ApiClient:
        try:
            self._portal = self._stack.enter_context(start_blocking_portal())
            self._stack.enter_context(
                self._portal.wrap_async_context_manager(self.app.router.lifespan_context(self.app))
            )
        except BaseException:
            self._stack.close()
            raise
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://testserver",
            headers=bearer(self.token),
        )
        self._stack.callback(self._portal.call, self._client.aclose)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        assert self._portal is not None and self._client is not None, "use it as a context"
        return self._portal.call(partial(self._client.request, method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


def bearer(token: str | None) -> dict[str, str]:
    """The Authorization header of `token` (none for None)."""
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def issue_token(
    factory: sessionmaker[Session], name: str = "admin", role: str = "admin", scope: str = "write"
) -> str:
    """A token of the user `name` (created with `role` when missing), committed by `factory`."""
    with session_scope(factory) as session:
        user = user_by_name(session, name) or create_user(session, name, role, None)
        return create_token(session, user.id, f"{name} test token", scope).token


def valid_config(dataset: str = "shapes", **overrides: object) -> dict[str, object]:
    """A small config that passes validation."""
    return {"dataset": dataset, "epochs": 2, "batch_size": 2, "base_channels": 8, **overrides}


def create_external(client: ApiClient, name: str = "script", **extra: object) -> dict[str, Any]:
    response = client.post("/api/v1/runs", json={"name": name, "external": True, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


class LiveServer:
    """The app served by uvicorn on a free local port, in a background thread; `token` (when
    given) is an admin's, sent by `http()`."""

    def __init__(self, app: FastAPI, token: str | None = None) -> None:
        self.app = app
        self.token = token
        self.headers = bearer(token)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        host, port = self._socket.getsockname()
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            time.sleep(0.01)
        return self

    def http(self, **kwargs: Any) -> httpx.Client:
        """A client of this server that sends the admin's token."""
        kwargs.setdefault("timeout", 10)
        return httpx.Client(base_url=self.url, headers=self.headers, **kwargs)

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()


def sse_messages(response: httpx.Response) -> Iterator[dict[str, object]]:
    """Parsed SSE messages of a streamed response; the first yielded item is {"ready": True}
    once the stream's `retry:` line arrived."""
    data: list[str] = []
    for line in response.iter_lines():
        if line.startswith("retry:"):
            yield {"ready": True}
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            yield json.loads("\n".join(data))
            data = []
