"""Calls to the API of the app under test, shared by every browser test."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

from playwright.sync_api import BrowserContext

TINY: dict[str, Any] = {
    "dataset": "demo",
    "base_channels": 8,
    "depth": 2,
    "epochs": 3,
    "batch_size": 8,
    "num_workers": 0,
    "augment": "none",
}
"""Trains in a few seconds on the CPU (the demo dataset: 48 images of 64x64, 4 classes)."""

WAIT_S = 180.0
"""Runs wait for the one shared worker, which may be training other tests' runs first."""

_FINAL = frozenset({"succeeded", "failed", "cancelled", "pruned"})
"""Statuses a run leaves only when a user resumes it."""


def unique(prefix: str) -> str:
    """`prefix` plus a random suffix: tests sharing one app never see each other's runs."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


_TOKENS: dict[str, str] = {}
"""The token of each app under test (`segtrack up` writes it to its data folder)."""


def authorize(app_url: str, token: str) -> None:
    """Let `api` and signed-in browser contexts call `app_url` with `token`."""
    _TOKENS[app_url] = token


def auth_headers(app_url: str) -> dict[str, str]:
    token = _TOKENS.get(app_url)
    return {"Authorization": f"Bearer {token}"} if token else {}


def _session_cookie(app_url: str) -> tuple[str, str]:
    """Open the app's `?token=` link as a browser would; the session cookie it sets."""
    parts = urllib.parse.urlsplit(app_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        connection.request("GET", f"/?token={_TOKENS[app_url]}")
        response = connection.getresponse()
        response.read()
        cookie = response.getheader("set-cookie") or ""
    finally:
        connection.close()
    name, _, rest = cookie.partition("=")
    assert response.status == 303 and rest, f"the token link did not sign in: {response.status}"
    return name, rest.split(";", 1)[0]


def sign_in(context: BrowserContext) -> BrowserContext:
    """Sign the browser context in to every app under test (a session cookie each)."""
    for app_url in _TOKENS:
        name, value = _session_cookie(app_url)
        context.add_cookies([{"name": name, "value": value, "url": app_url}])
    return context


def api(app_url: str, method: str, path: str, body: object = None) -> Any:
    """Call the API; the parsed JSON (None for an empty body); raises on an error status."""
    data = json.dumps(body).encode() if body is not None else None
    headers = auth_headers(app_url)
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(f"{app_url}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read()
    except urllib.error.HTTPError as error:
        error.add_note(f"{method} {path}: {error.read().decode(errors='replace')}")
        raise
    return json.loads(text) if text else None


def wait_for_status(app_url: str, run_id: int, *statuses: str) -> dict[str, Any]:
    """Poll the API until the run has one of `statuses` (fails after WAIT_S)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        run: dict[str, Any] = api(app_url, "GET", f"/api/v1/runs/{run_id}")
        if run["status"] in statuses:
            return run
        if run["status"] in _FINAL or time.monotonic() > deadline:
            raise AssertionError(
                f"run {run_id} is {run['status']} ({run.get('failure_reason')}), "
                f"not one of {statuses}"
            )
        time.sleep(0.3)
