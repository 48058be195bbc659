"""The server endpoints a tracked run talks to, with failures sorted into the two kinds the
sender treats differently: `Unreachable` (try again later) and `SegtrackError` (the server
refused this request; trying again would get the same answer)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx
import orjson

from segtrack.client import SegtrackError, default_token, raise_for_error, retry_after_s

TIMEOUT = httpx.Timeout(30.0, connect=5.0)
PIECE_TIMEOUT = httpx.Timeout(30.0, connect=5.0, read=900.0)
"""The piece that completes an upload waits while the server checks the whole file's SHA-256
(minutes for tens of GiB)."""


class Unreachable(Exception):  # noqa: N818 (reads as what the server is)
    """No answer worth keeping: no connection, a timeout, or 408/429/5xx. Worth retrying,
    after `retry_after` seconds when the server said so."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def is_fatal(error: SegtrackError) -> bool:
    """Whether a refusal stops all sending rather than one record: the token is not accepted
    (401/403) or the run is gone (404). Skipping would throw every later record away."""
    return error.status_code in (401, 403, 404)


class TrackingApi:
    """One server's tracking endpoints; every method raises Unreachable or SegtrackError."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Args:
        base_url: The server, e.g. `http://gpu-box:8000`.
        token: An API token; None: $SEGTRACK_TOKEN, else the token `segtrack up` on this
            machine remembered for `base_url`.
        transport: An httpx transport (tests).
        """
        self.base_url = base_url.rstrip("/")
        token = default_token(self.base_url) if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.base_url, timeout=TIMEOUT, headers=headers, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def run_url(self, run_id: int) -> str:
        """The run's page."""
        return f"{self.base_url}/runs/{run_id}"

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise Unreachable(f"{type(error).__name__}: {error}") from error
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise Unreachable(
                f"{response.status_code} {response.text[:200]}", retry_after_s(response)
            )
        raise_for_error(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = self._send(method, path, **kwargs).json()
        return body

    def _with_body(self, method: str, path: str, body: object) -> httpx.Response:
        """A JSON request, encoded with orjson (10,000 points in a few ms, not tens)."""
        return self._send(
            method, path, content=orjson.dumps(body), headers={"Content-Type": "application/json"}
        )

    def create_run(self, body: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """The run with `body["client_key"]`, created now (True) or found (False)."""
        response = self._with_body("POST", "/api/v1/runs", dict(body))
        run: dict[str, Any] = response.json()
        return run, response.status_code == 201

    def put_info(self, run_id: int, body: Mapping[str, Any]) -> None:
        self._with_body("PUT", f"/api/v1/runs/{run_id}/info", dict(body))

    def heartbeat(self, run_id: int) -> dict[str, Any]:
        """`{"status", "stop_requested"}`."""
        body: dict[str, Any] = self._with_body(
            "POST", f"/api/v1/runs/{run_id}/heartbeat", {}
        ).json()
        return body

    def post_metrics(self, run_id: int, points: Sequence[Mapping[str, Any]]) -> None:
        self._with_body("POST", f"/api/v1/runs/{run_id}/metrics", {"points": list(points)})

    def post_preview(
        self,
        run_id: int,
        epoch: int,
        index: int,
        name: str,
        pngs: Mapping[str, bytes],
        *,
        reasons: str = "fixed",
    ) -> None:
        """One sample's `image`, `truth` and `prediction` PNGs; `reasons` comma-separated."""
        files = {part: (f"{part}.png", data, "image/png") for part, data in pngs.items()}
        fields = {"epoch": str(epoch), "sample_index": str(index), "name": name, "reasons": reasons}
        self._send("POST", f"/api/v1/runs/{run_id}/previews", data=fields, files=files)

    def put_validation(self, run_id: int, epoch: int, body: Mapping[str, Any]) -> None:
        """An epoch's confusion matrix and per-image counts; numpy arrays are encoded as they
        are (orjson writes 150,000 counts in a few ms)."""
        self._send(
            "PUT",
            f"/api/v1/runs/{run_id}/validation/{epoch}",
            content=orjson.dumps(dict(body), option=orjson.OPT_SERIALIZE_NUMPY),
            headers={"Content-Type": "application/json"},
        )

    def post_logs(self, run_id: int, first_line: int, lines: Sequence[str]) -> int:
        """The run's log line count after these lines."""
        body = {"first_line": first_line, "lines": list(lines)}
        answer = self._with_body("POST", f"/api/v1/runs/{run_id}/logs", body).json()
        return int(answer["log_lines"])

    def finish(self, run_id: int, status: str, reason: str | None) -> None:
        body: dict[str, Any] = {"status": status}
        if reason is not None:
            body["failure_reason"] = reason
        self._with_body("PATCH", f"/api/v1/runs/{run_id}", body)

    def create_upload(self, run_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        """UploadOut: a new upload, or the matching one with its offset (or complete)."""
        upload: dict[str, Any] = self._with_body(
            "POST", f"/api/v1/runs/{run_id}/uploads", dict(body)
        ).json()
        return upload

    def get_upload(self, run_id: int, upload_id: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/runs/{run_id}/uploads/{upload_id}")

    def send_piece(
        self, run_id: int, upload_id: str, offset: int, length: int, content: Iterator[bytes]
    ) -> dict[str, Any]:
        """Stream `length` bytes (from `content`) to the upload at `offset`: `{"offset",
        "complete"}`."""
        headers = {
            "Upload-Offset": str(offset),
            "Content-Length": str(length),
            "Content-Type": "application/offset+octet-stream",
        }
        return self._json(
            "PATCH",
            f"/api/v1/runs/{run_id}/uploads/{upload_id}",
            content=content,
            headers=headers,
            timeout=PIECE_TIMEOUT,
        )
