"""Calls to the API of the app under test, shared by every browser test."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

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


def unique(prefix: str) -> str:
    """`prefix` plus a random suffix: tests sharing one app never see each other's runs."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def api(app_url: str, method: str, path: str, body: object = None) -> Any:
    """Call the API; the parsed JSON (None for an empty body); raises on an error status."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{app_url}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"} if data is not None else {},
    )
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
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} is {run['status']}, not one of {statuses}")
        time.sleep(0.3)
