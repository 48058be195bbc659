"""Reading back over REST what a tracked run sent, and small arrays to send."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import numpy as np

T = TypeVar("T")


def rest(url: str, token: str | None, path: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{url}{path}", headers=headers, timeout=10)
    assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
    return response.json() if "json" in response.headers.get("content-type", "") else response


def series(url: str, token: str | None, run_id: int) -> dict[str, dict[str, Any]]:
    body = rest(url, token, f"/api/v1/runs/{run_id}/metrics?max_points=100000")
    found: dict[str, dict[str, Any]] = body["series"]
    return found


def wait_for(condition: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def sample(index: int, epoch: int, size: int = 16) -> dict[str, Any]:
    """A preview sample whose prediction depends on the epoch."""
    image = np.full((size, size, 3), 40 * index, dtype=np.uint8)
    truth = np.zeros((size, size), dtype=np.uint8)
    truth[: size // 2] = 1
    prediction = np.full((size, size), epoch % 2, dtype=np.uint8)
    return {
        "index": index,
        "name": f"img{index}.png",
        "image": image,
        "truth": truth,
        "prediction": prediction,
    }
