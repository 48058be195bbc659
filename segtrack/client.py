"""A small Python client for the segtrack API.

    from segtrack.client import SegtrackClient

    client = SegtrackClient("http://127.0.0.1:8000")  # token: SEGTRACK_TOKEN, or token=...
    run = client.submit({"dataset": "demo", "epochs": 20}, tags=["baseline"])
    final = client.wait(run["id"])
    client.download_checkpoint(run["id"], "best", "checkpoints/")

    # A script that trains elsewhere logs into an external run; `log` never blocks on the network.
    with client.create_external_run("my-script", params={"lr": 0.01}) as tracked:
        for epoch in range(1, 11):
            tracked.log("val/iou", score, step=epoch, epoch=epoch)

    # Events as they happen; a dropped stream reconnects and resumes where it stopped.
    for event in client.stream_events(run["id"]):
        print(event["kind"], event)

Only httpx is needed; no torch, no server code.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from segtrack import local_tokens

logger = logging.getLogger(__name__)

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "pruned"})
MAX_POINTS_PER_CALL = 10_000
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 30.0
STREAM_SILENCE_S = 60.0
"""An event stream without a byte for this long is taken for dead (keep-alives come every 15 s)."""
TOKEN_ENV = "SEGTRACK_TOKEN"


def default_token(base_url: str) -> str | None:
    """The API token used when the client is given none: $SEGTRACK_TOKEN, else the token of a
    server that `segtrack up` started on this machine (None when neither exists)."""
    return os.environ.get(TOKEN_ENV) or local_tokens.find(base_url)


class SegtrackError(Exception):
    """The API answered with an error; `message` is the server's explanation."""

    def __init__(self, status_code: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details


def raise_for_error(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        error = response.json()["error"]
        raise SegtrackError(
            response.status_code, error["code"], error["message"], error.get("details")
        )
    except (ValueError, KeyError, TypeError):
        raise SegtrackError(
            response.status_code, "http_error", response.text[:500] or response.reason_phrase
        ) from None


def parse_sse(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """Server-Sent Events from text lines: dicts of `id`, `event` and `data` (comments dropped)."""
    return (message for message in _sse_messages(lines) if "data" in message)


def _sse_messages(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """Every SSE message, also those without data (a position: `id` alone, or `retry`)."""
    message: dict[str, str] = {}
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                message["data"] = "\n".join(data)
            if message:
                yield message
            message, data = {}, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name in ("id", "event", "retry"):
            message[name] = value


def retry_after_s(response: httpx.Response) -> float | None:
    """Retry-After in seconds, when the server sent it as a number."""
    value = response.headers.get("retry-after", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _backoff(failures: int) -> float:
    """Seconds before reconnecting after `failures` failed attempts in a row: doubling up to
    RECONNECT_MAX_S, with jitter so many clients of a restarted server do not come back at once."""
    delay = min(RECONNECT_MIN_S * 2.0 ** max(failures - 1, 0), RECONNECT_MAX_S)
    return delay * random.uniform(0.5, 1.0)


@dataclass
class _StreamState:
    """Where a reconnecting event stream stands: the last event id it received (or the
    position the server gave it), when it last heard anything, failed attempts in a row."""

    position: int | None
    heard_at: float
    failures: int = 0


class _Reconnect(Exception):  # noqa: N818 (not an error: a signal inside stream_events)
    """The stream answered 429 or 5xx: reconnect after `delay` (None: back off)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.status_code}: {response.text[:200]}")
        self.response = response
        self.delay = retry_after_s(response)


class SegtrackClient:
    """Talks to one segtrack server. Methods raise SegtrackError with the server's message."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Args:
        base_url: The server, e.g. `http://127.0.0.1:8000`.
        token: An API token, sent as `Authorization: Bearer` on every request; None reads
            $SEGTRACK_TOKEN, then the token `segtrack up` on this machine remembered for
            `base_url`; "" sends none.
        timeout: Seconds a request may take (event streams: to connect).
        transport: An httpx transport (tests).
        """
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        token = default_token(self.base_url) if token is None else token
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._transport = transport
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=transport, headers=self._headers
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SegtrackClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        raise_for_error(response)
        return response.json() if response.content else None

    # --- runs -------------------------------------------------------------------------------------

    def submit(
        self,
        config: Mapping[str, Any],
        name: str | None = None,
        tags: Sequence[str] = (),
        priority: int = 0,
        queue: str | None = None,
        *,
        max_retries: int = 0,
    ) -> dict[str, Any]:
        """Queue a training run; returns the run (`id`, `status: "queued"`, ...)."""
        body = {
            "config": dict(config),
            "name": name,
            "tags": list(tags),
            "priority": priority,
            "queue": queue,
            "max_retries": max_retries,
        }
        run: dict[str, Any] = self._call("POST", "/api/v1/runs", json=body)
        return run

    def get_run(self, run_id: int) -> dict[str, Any]:
        run: dict[str, Any] = self._call("GET", f"/api/v1/runs/{run_id}")
        return run

    def list_runs(self, **filters: Any) -> list[dict[str, Any]]:
        """Every run matching the list filters (status=..., tag=..., metric="val/iou>0.8", ...)."""
        runs: list[dict[str, Any]] = []
        params = {**filters, "limit": 500}
        while True:
            page = self._call("GET", "/api/v1/runs", params=params)
            runs += page["items"]
            if page["next_cursor"] is None:
                return runs
            params["cursor"] = page["next_cursor"]

    def cancel(self, run_id: int) -> dict[str, Any]:
        run: dict[str, Any] = self._call("POST", f"/api/v1/runs/{run_id}/cancel")
        return run

    def resume(self, run_id: int) -> dict[str, Any]:
        run: dict[str, Any] = self._call("POST", f"/api/v1/runs/{run_id}/resume")
        return run

    def clone(self, run_id: int, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        body = {"overrides": dict(overrides or {})}
        run: dict[str, Any] = self._call("POST", f"/api/v1/runs/{run_id}/clone", json=body)
        return run

    # --- sweeps -----------------------------------------------------------------------------------

    def create_sweep(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Start a sweep from a spec (W&B's sweep keys plus a base `config`); returns it."""
        sweep: dict[str, Any] = self._call("POST", "/api/v1/sweeps", json=dict(spec))
        return sweep

    def get_sweep(self, sweep_id: int) -> dict[str, Any]:
        sweep: dict[str, Any] = self._call("GET", f"/api/v1/sweeps/{sweep_id}")
        return sweep

    def sweep_action(self, sweep_id: int, action: str) -> dict[str, Any]:
        """`pause`, `resume` or `cancel` the sweep; returns it."""
        sweep: dict[str, Any] = self._call("POST", f"/api/v1/sweeps/{sweep_id}/{action}")
        return sweep

    def wait(self, run_id: int, timeout: float | None = None, poll: float = 5.0) -> dict[str, Any]:
        """Block until the run succeeds, fails or is cancelled; returns the final run.

        Listens to the run's event stream and re-reads the run at least every `poll` seconds, so
        a missed event only delays the answer. Raises TimeoutError after `timeout` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            run = self.get_run(run_id)
            if run["status"] in TERMINAL_STATUSES:
                return run
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"run {run_id} is still {run['status']} after {timeout} s")
            window = poll if remaining is None else min(poll, remaining)
            try:
                for event in self.stream_events(run_id, read_timeout=window):
                    if event.get("kind") == "status" and event.get("status") in TERMINAL_STATUSES:
                        break
                    if deadline is not None and time.monotonic() > deadline:
                        break
            except (httpx.TimeoutException, httpx.TransportError):
                pass  # quiet or dropped stream: read the run again

    def stream_events(
        self,
        run_id: int | None = None,
        after_id: int | None = None,
        *,
        kinds: Sequence[str] | None = None,
        read_timeout: float | None = None,
        reconnect: bool = True,
    ) -> Iterator[dict[str, Any]]:
        """Events as they happen: dicts with id, kind, run_id and the payload.

        Every event, or with `run_id` that run's events and those of no run (`dataset` colour
        changes); with `kinds` (e.g. `["dataset"]`), only those kinds. `after_id` replays
        everything after that event id first.

        A stream that drops (the server restarts, the network cuts, a 5xx, or 429 for too many
        streams) is opened again after a back-off (0.5 s doubling up to 30 s, or the server's
        Retry-After), resuming after the last event received (Last-Event-ID): nothing is missed
        and nothing comes twice. Other 4xx answers raise SegtrackError. With `read_timeout`, no
        event or keep-alive for that long, connected or not, raises httpx.ReadTimeout
        (keep-alives arrive every 15 s). `reconnect=False` raises at the first drop instead.
        """
        path = "/api/v1/events" if run_id is None else f"/api/v1/runs/{run_id}/events"
        state = _StreamState(position=after_id, heard_at=time.monotonic())
        silence = STREAM_SILENCE_S if read_timeout is None else read_timeout
        while not self._http.is_closed:  # closing the client ends its streams
            delay: float | None = None
            try:
                yield from self._stream_once(path, kinds, state, silence)
                reason = "the server closed the stream"
            except _Reconnect as answer:
                if not reconnect:
                    raise_for_error(answer.response)
                reason, delay = str(answer), answer.delay
            except httpx.ReadTimeout:
                if read_timeout is not None or not reconnect:
                    raise
                reason = f"no keep-alive for {silence:.0f} s"
            except httpx.TransportError as error:
                if not reconnect:
                    raise
                reason = f"{type(error).__name__}: {error}"
            if not reconnect:
                return
            state.failures += 1
            pause = _backoff(state.failures) if delay is None else delay
            if (
                read_timeout is not None
                and time.monotonic() - state.heard_at + pause > read_timeout
            ):
                raise httpx.ReadTimeout(f"no events for {read_timeout} s ({reason})")
            logger.info("event stream %s dropped (%s); reconnecting in %.1f s", path, reason, pause)
            time.sleep(pause)

    def _stream_once(
        self, path: str, kinds: Sequence[str] | None, state: _StreamState, silence: float
    ) -> Iterator[dict[str, Any]]:
        """One connection's events, from `state.position` on; keeps `state` up to date."""
        params: dict[str, Any] = {}
        headers: dict[str, str] = {}
        if state.position is not None:
            params["after_id"] = state.position
            headers["Last-Event-ID"] = str(state.position)
        if kinds:
            params["kind"] = list(kinds)
        timeout = httpx.Timeout(self.timeout, read=silence)
        with self._http.stream(
            "GET", path, params=params, headers=headers, timeout=timeout
        ) as response:
            if response.status_code == 429 or response.status_code >= 500:
                response.read()
                raise _Reconnect(response)
            if not response.is_success:
                response.read()
                raise_for_error(response)
            for message in _sse_messages(response.iter_lines()):
                state.heard_at = time.monotonic()
                state.failures = 0
                # The first message carries the stream's position even before any event.
                if (id_ := message.get("id", "")).isascii() and id_.isdigit():
                    state.position = int(id_)
                if "data" in message:
                    event: dict[str, Any] = json.loads(message["data"])
                    yield event

    # --- metrics and files ------------------------------------------------------------------------

    def metrics(
        self,
        run_id: int,
        keys: Sequence[str] | None = None,
        *,
        max_points: int | None = None,
        after_step: int | None = None,
    ) -> dict[str, dict[str, Any]]:
        """`{key: {"step": [...], "value": [...], "min", "max", "last", ...}}`."""
        params: dict[str, Any] = {}
        if keys:
            params["keys"] = ",".join(keys)
        if max_points is not None:
            params["max_points"] = max_points
        if after_step is not None:
            params["after_step"] = after_step
        body = self._call("GET", f"/api/v1/runs/{run_id}/metrics", params=params)
        series: dict[str, dict[str, Any]] = body["series"]
        return series

    def log_metrics(self, run_id: int, points: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Send points (`{key, step, value, epoch?}`) now, in calls of at most 10,000."""
        total: dict[str, Any] = {"written": 0, "new": 0}
        for start in range(0, len(points), MAX_POINTS_PER_CALL):
            chunk = [dict(point) for point in points[start : start + MAX_POINTS_PER_CALL]]
            body = self._call("POST", f"/api/v1/runs/{run_id}/metrics", json={"points": chunk})
            total["written"] += body["written"]
            total["new"] += body["new"]
        return total

    # --- validation detail ----------------------------------------------------------------------

    def confusion(self, run_id: int, epoch: int | None = None) -> dict[str, Any]:
        """`{"epoch", "epochs", "class_names", "matrix"}`: rows truth, columns prediction, at
        `epoch` (default: the latest stored)."""
        params = {} if epoch is None else {"epoch": epoch}
        body: dict[str, Any] = self._call("GET", f"/api/v1/runs/{run_id}/confusion", params=params)
        return body

    def confusion_csv(self, run_id: int, epoch: int | None = None) -> str:
        """The confusion matrix as CSV, headed by the class names."""
        params = {} if epoch is None else {"epoch": epoch}
        response = self._http.get(f"/api/v1/runs/{run_id}/confusion.csv", params=params)
        raise_for_error(response)
        return response.text

    def images(
        self,
        run_id: int,
        epoch: int | None = None,
        *,
        sort: str = "iou",
        order: str = "asc",
        class_name: str | None = None,
        worse_than: int | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> dict[str, Any]:
        """The validation images at `epoch` (default: the latest) sorted by `sort` (`iou`,
        `dice`, `pixels_wrong` or `name`; default worst IoU first), only those whose truth has
        `class_name`, or whose IoU is lower than at epoch `worse_than`: `{"epoch", "epochs",
        "class_names", "total", "items": [{"index", "name", "iou", "dice", ...}]}`."""
        params: dict[str, Any] = {"sort": sort, "order": order, "limit": limit, "offset": offset}
        optional = {"epoch": epoch, "class": class_name, "worse_than": worse_than}
        params.update({name: value for name, value in optional.items() if value is not None})
        body: dict[str, Any] = self._call("GET", f"/api/v1/runs/{run_id}/images", params=params)
        return body

    def image_trend(self, run_id: int, index: int) -> dict[str, Any]:
        """One validation image's scores at every stored epoch: `{"index", "name", "points":
        [{"epoch", "iou", "dice", "pixels_wrong"}]}`."""
        body: dict[str, Any] = self._call("GET", f"/api/v1/runs/{run_id}/images/{index}/trend")
        return body

    def put_validation(self, run_id: int, epoch: int, detail: Mapping[str, Any]) -> dict[str, Any]:
        """Store an epoch's `{"class_names", "confusion", "images": {"names", "true_positive",
        "false_positive", "false_negative"}}` (lists of lists); sent again it replaces."""
        body: dict[str, Any] = self._call(
            "PUT", f"/api/v1/runs/{run_id}/validation/{epoch}", json=dict(detail)
        )
        return body

    def download_checkpoint(self, run_id: int, kind: str = "best", dest: str | Path = ".") -> Path:
        """Save the run's `best` or `last` checkpoint; `dest` is a file or an existing folder."""
        target = Path(dest)
        if target.is_dir():
            target = target / f"run-{run_id}-{kind}.pt"
        partial = target.with_name(target.name + ".part")
        with self._http.stream("GET", f"/api/v1/runs/{run_id}/checkpoints/{kind}") as response:
            if not response.is_success:
                response.read()
                raise_for_error(response)
            with partial.open("wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
        partial.replace(target)
        return target

    # --- jobs: evaluate, predict, export on a worker ----------------------------------------------

    def create_job(self, run_id: int, request: Mapping[str, Any]) -> dict[str, Any]:
        """Queue a job (`{"kind": "evaluate" | "predict" | "export", ...}`) on the run."""
        job: dict[str, Any] = self._call("POST", f"/api/v1/runs/{run_id}/jobs", json=dict(request))
        return job

    def evaluate(
        self,
        run_id: int,
        *,
        checkpoint: str = "best",
        split: str = "test",
        dataset: str | int | None = None,
    ) -> dict[str, Any]:
        """Queue an evaluation of the run's checkpoint on a split of its dataset (or of another
        registered one with the same classes); a test evaluation adds `test/*` to the run."""
        request: dict[str, Any] = {"kind": "evaluate", "checkpoint": checkpoint, "split": split}
        if dataset is not None:
            request["dataset"] = dataset
        return self.create_job(run_id, request)

    def export_model(
        self, run_id: int, export_format: str = "onnx", *, checkpoint: str = "best"
    ) -> dict[str, Any]:
        """Queue an ONNX or TorchScript export of the run's checkpoint."""
        request = {"kind": "export", "checkpoint": checkpoint, "format": export_format}
        return self.create_job(run_id, request)

    def upload_predict_inputs(self, run_id: int, images: Sequence[str | Path]) -> dict[str, Any]:
        """Upload image files to predict on; the answer's `id` goes into a predict job."""
        files = [("files", (Path(image).name, Path(image).read_bytes())) for image in images]
        stored: dict[str, Any] = self._call(
            "POST", f"/api/v1/runs/{run_id}/predict-inputs", files=files
        )
        return stored

    def predict(
        self,
        run_id: int,
        images: Sequence[str | Path] | None = None,
        *,
        folder: str | None = None,
        checkpoint: str = "best",
        tta: bool = False,
    ) -> dict[str, Any]:
        """Queue a prediction of the run's checkpoint on `images` (uploaded first) or on a
        `folder` inside the server's dataset roots."""
        if (images is None) == (folder is None):
            raise ValueError("give images or folder (one of them)")
        request: dict[str, Any] = {"kind": "predict", "checkpoint": checkpoint, "tta": tta}
        if images is not None:
            request["upload"] = self.upload_predict_inputs(run_id, images)["id"]
        else:
            request["folder"] = folder
        return self.create_job(run_id, request)

    def predict_image(self, run_id: int, image: int, epoch: int | None = None) -> dict[str, Any]:
        """Queue a prediction of the run's validation image `image` (its index in the run's
        images) from the checkpoint nearest `epoch` (default: the newest). The same image and
        checkpoint asked again gives back the earlier job (`reused`); once it has succeeded its
        `result` has the epoch really used and the image, truth and prediction PNG URLs."""
        request: dict[str, Any] = {"kind": "predict_image", "image": image}
        if epoch is not None:
            request["epoch"] = epoch
        return self.create_job(run_id, request)

    def cancel_job(self, job_id: int) -> dict[str, Any]:
        """Cancel a queued job (it never starts) or a running one (`cancelling` until its
        worker has stopped it, then `cancelled`)."""
        job: dict[str, Any] = self._call("POST", f"/api/v1/jobs/{job_id}/cancel")
        return job

    def get_job(self, job_id: int) -> dict[str, Any]:
        job: dict[str, Any] = self._call("GET", f"/api/v1/jobs/{job_id}")
        return job

    def list_jobs(self, run_id: int) -> list[dict[str, Any]]:
        """The run's jobs, newest first."""
        jobs: list[dict[str, Any]] = self._call("GET", f"/api/v1/runs/{run_id}/jobs")["items"]
        return jobs

    def wait_job(
        self, job_id: int, timeout: float | None = None, poll: float = 2.0
    ) -> dict[str, Any]:
        """Poll until the job has succeeded, failed or been cancelled; TimeoutError after
        `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job['status']} after {timeout} s")
            time.sleep(poll)

    def download_job_file(self, job_id: int, name: str, dest: str | Path = ".") -> Path:
        """Save one of a job's files (an exported model, `masks.zip`, an overlay); `dest` is a
        file or an existing folder."""
        target = Path(dest)
        if target.is_dir():
            target = target / Path(name).name
        with self._http.stream("GET", f"/api/v1/jobs/{job_id}/files/{name}") as response:
            if not response.is_success:
                response.read()
                raise_for_error(response)
            with target.open("wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
        return target

    # --- external runs ----------------------------------------------------------------------------

    def create_external_run(
        self,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Sequence[str] = (),
        **options: Any,
    ) -> ExternalRun:
        """Open a run that this script trains and logs into (see ExternalRun)."""
        body = {"name": name, "external": True, "params": dict(params or {}), "tags": list(tags)}
        run = self._call("POST", "/api/v1/runs", json=body)
        return ExternalRun(self, run["id"], **options)

    def finish_external_run(
        self, run_id: int, status: str = "succeeded", failure_reason: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"status": status}
        if failure_reason is not None:
            body["failure_reason"] = failure_reason[:1000]
        run: dict[str, Any] = self._call("PATCH", f"/api/v1/runs/{run_id}", json=body)
        return run


class ExternalRun:
    """Buffered, non-blocking metric logging into an external run.

    `log` only appends to a buffer; a background thread sends it every `flush_interval` seconds
    or as soon as `flush_points` points wait. If the server is unreachable the points stay
    buffered (up to `max_buffered`, the oldest dropped beyond that) and sending is retried with
    back-off: the training script is never interrupted by the tracker. `close()` (or leaving the
    `with` block) sends what is left and sets the final status: succeeded, or failed when the
    block raised.
    """

    def __init__(
        self,
        client: SegtrackClient,
        run_id: int,
        *,
        flush_interval: float = 1.0,
        flush_points: int = 1000,
        max_buffered: int = 100_000,
        close_timeout: float = 10.0,
    ) -> None:
        self.client = client
        self.id = run_id
        self.flush_interval = flush_interval
        self.flush_points = flush_points
        self.max_buffered = max_buffered
        self.close_timeout = close_timeout
        self.dropped = 0
        self._points: deque[dict[str, Any]] = deque()
        self._in_flight = 0
        self._condition = threading.Condition()
        self._closing = False
        self._flush_wanted = False
        self._warned_keys: set[str] = set()
        self._http = httpx.Client(
            base_url=client.base_url,
            timeout=client.timeout,
            transport=client._transport,
            headers=client._headers,
        )
        self._thread = threading.Thread(
            target=self._send_loop, name=f"segtrack-run-{run_id}", daemon=True
        )
        self._thread.start()

    def log(self, key: str, value: float, step: int, epoch: int | None = None) -> None:
        """Queue one point; returns at once (no network I/O). Non-finite values are skipped."""
        value = float(value)
        if not math.isfinite(value):
            if key not in self._warned_keys:
                self._warned_keys.add(key)
                logger.warning("run %d: %s is %s at step %d; not logged", self.id, key, value, step)
            return
        point = {"key": key, "step": int(step), "value": value, "epoch": epoch}
        with self._condition:
            self._points.append(point)
            if len(self._points) > self.max_buffered:
                self._points.popleft()
                self.dropped += 1
                if self.dropped == 1:
                    logger.warning(
                        "run %d: the tracker is not keeping up; dropping the oldest points "
                        "beyond %d buffered", self.id, self.max_buffered,
                    )  # fmt: skip
            if len(self._points) >= self.flush_points:
                self._condition.notify_all()

    def log_dict(self, metrics: Mapping[str, float], step: int, epoch: int | None = None) -> None:
        """`log` every key of `metrics` at the same step."""
        for key, value in metrics.items():
            self.log(key, value, step, epoch)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything logged so far was sent; False if that took over `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            self._flush_wanted = True
            self._condition.notify_all()
            while self._points or self._in_flight:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._condition.wait(remaining if remaining is not None else 0.5)
        return True

    def close(self, status: str = "succeeded", failure_reason: str | None = None) -> None:
        """Send what is left (for up to `close_timeout` s), stop the thread, set the status."""
        sent = self.flush(self.close_timeout)
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        self._thread.join(self.close_timeout)
        self._http.close()
        if not sent:
            logger.warning("run %d: %d points could not be sent", self.id, len(self._points))
        try:
            self.client.finish_external_run(self.id, status, failure_reason)
        except (SegtrackError, httpx.HTTPError) as error:
            logger.warning("run %d: could not set its status to %s: %s", self.id, status, error)

    def __enter__(self) -> ExternalRun:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close("succeeded")
        else:
            self.close("failed", failure_reason=f"{type(exc).__name__}: {exc}")

    def _take(self) -> list[dict[str, Any]]:
        count = min(len(self._points), MAX_POINTS_PER_CALL)
        batch = [self._points.popleft() for _ in range(count)]
        self._in_flight = len(batch)
        return batch

    def _send(self, batch: list[dict[str, Any]]) -> bool:
        """True when the batch is done with (sent, or refused for good)."""
        try:
            response = self._http.post(f"/api/v1/runs/{self.id}/metrics", json={"points": batch})
        except httpx.HTTPError as error:
            logger.warning("run %d: cannot reach the tracker (%s); will retry", self.id, error)
            return False
        if response.is_success:
            return True
        if response.status_code in (408, 429) or response.status_code >= 500:
            logger.warning("run %d: tracker answered %d; will retry", self.id, response.status_code)
            return False
        logger.warning(
            "run %d: tracker refused %d points (%d): %s", self.id, len(batch),
            response.status_code, response.text[:300],
        )  # fmt: skip
        return True

    def _send_loop(self) -> None:
        pause = self.flush_interval
        while True:
            with self._condition:
                deadline = time.monotonic() + pause
                # After a failure wait out the back-off even with a full buffer.
                failing = pause > self.flush_interval
                while not (self._closing or self._flush_wanted) and (
                    failing or len(self._points) < self.flush_points
                ):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._condition.wait(remaining)
                self._flush_wanted = False
                if not self._points:
                    if self._closing:
                        return
                    continue
                batch = self._take()
            done = self._send(batch)
            with self._condition:
                if not done:
                    self._points.extendleft(reversed(batch))
                    while len(self._points) > self.max_buffered:
                        self._points.popleft()
                        self.dropped += 1
                self._in_flight = 0
                self._condition.notify_all()
                if self._closing and not done:
                    return
            # Back off while the tracker fails, up to 30 s between attempts.
            pause = self.flush_interval if done else min(pause * 2, 30.0)
