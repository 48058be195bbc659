"""Sending a spool to the server, record by record in `seq` order.

The run is created on first contact (POST /runs with its client key, so a second attempt, a
restarted sync or a second machine finds the same run). Consecutive metric records go in one
request (at most 10,000 points), consecutive log records too; previews go as multipart,
validation details as one PUT per epoch, files through the resumable uploads. A connection
error, 408, 429 or 5xx is retried with jittered exponential back-off (MIN_BACKOFF_S doubling
to MAX_BACKOFF_S, or the server's Retry-After),
so nothing is skipped while the server is away. Another 4xx refuses one record: it is logged
and skipped, and the rest goes on; 401/403/404 stop the sending (the token is not accepted or
the run is gone), leaving the records in the spool for `segtrack sync`.

Every record is idempotent on the server (metrics upsert, previews and validation details
overwrite, logs are
numbered, uploads resume or answer complete, info and the final status replay), so resending
after a crash costs time, never correctness: `sent.json` is saved about once a second.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from segtrack.client import SegtrackError
from segtrack.tracking.api import TrackingApi, Unreachable, is_fatal
from segtrack.tracking.spool import RecordReader, SentMark, Spool, Spooled
from segtrack.tracking.spooler import MAX_LOG_LINES, MAX_POINTS
from segtrack.tracking.upload import PIECE_BYTES, BlobChangedError, FileToSend, Uploader
from segtrack.tracking.validation import read_body

logger = logging.getLogger(__name__)

T = TypeVar("T")

MIN_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
WINDOW = 256
"""Records read ahead of the one being sent: enough to merge seconds of metrics into one
request and to see that a checkpoint upload is superseded by a newer one of the same kind."""
MARK_EVERY_S = 1.0
SUPERSEDABLE = ("best", "last")


class Aborted(Exception):  # noqa: N818 (a signal, not an error)
    """The sender was told to stop (the run's finish timed out); what is left stays spooled."""


class Halted(Exception):  # noqa: N818 (reads as what happened)
    """The server refused in a way that stops all sending; the message says why."""


class GaveUp(Exception):  # noqa: N818 (reads as what happened)
    """The server stayed unreachable for as many attempts as the sender may make."""


def backoff(failures: int) -> float:
    """Seconds before the next attempt after `failures` failed ones in a row; jittered so many
    clients of a restarted server do not come back at once."""
    delay = min(MIN_BACKOFF_S * 2.0 ** max(failures - 1, 0), MAX_BACKOFF_S)
    return delay * random.uniform(0.5, 1.0)


def _started_at(created_at: str) -> str | None:
    try:
        return datetime.fromisoformat(created_at).astimezone(UTC).isoformat()
    except ValueError:
        return None


class Sender:
    """Sends one spool's records; used by a live run's sender thread and by `segtrack sync`."""

    def __init__(
        self,
        spool: Spool,
        api: TrackingApi,
        *,
        abort: threading.Event | None = None,
        attempts: int | None = None,
        piece_bytes: int = PIECE_BYTES,
        on_run: Callable[[int], None] = lambda run_id: None,
    ) -> None:
        """Args:
        abort: Set to stop at the next wait or piece (raises Aborted inside).
        attempts: Failed attempts in a row after which an unreachable server ends the
            sending (GaveUp); None: try for ever.
        on_run: Called with the server's run id once it is known.
        """
        self.spool = spool
        self.api = api
        self.abort = abort or threading.Event()
        self.attempts = attempts
        self.piece_bytes = piece_bytes
        self.on_run = on_run
        self.mark = spool.read_sent()
        self.sent = 0
        """Records the server acknowledged in this sender's lifetime."""
        self.acked = threading.Condition()
        self._reader = RecordReader(spool.records_path, self.mark)
        self._window: deque[Spooled] = deque()
        self._failures = 0
        self._mark_saved = (self.mark, time.monotonic())
        self._log_shift = 0
        """How many lines lower the server numbers this run's log lines than the spool does
        (after a refused log record left a gap)."""

    @property
    def key(self) -> str:
        return self.spool.meta.client_key

    def close(self) -> None:
        self.save_mark(force=True)
        self._reader.close()

    # --- retries ----------------------------------------------------------------------------

    def _check_abort(self) -> None:
        if self.abort.is_set():
            raise Aborted()

    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        """`call()`, again after each Unreachable, with back-off."""
        while True:
            self._check_abort()
            try:
                result = call()
            except Unreachable as error:
                self._failures += 1
                if self._failures == 1 or self._failures % 10 == 0:
                    logger.warning(
                        "run %s: cannot %s at %s (%s); keeps trying, the records stay spooled",
                        self.key,
                        what,
                        self.api.base_url,
                        error,
                    )
                if self.attempts is not None and self._failures >= self.attempts:
                    raise GaveUp(f"cannot reach {self.api.base_url}: {error}") from error
                delay = backoff(self._failures) if error.retry_after is None else error.retry_after
                if self.abort.wait(min(delay, MAX_BACKOFF_S)):
                    raise Aborted() from error
                continue
            if self._failures:
                logger.info("run %s: %s answers again", self.key, self.api.base_url)
                self._failures = 0
            return result

    # --- the run ----------------------------------------------------------------------------

    def _create_body(self) -> dict[str, Any]:
        meta = self.spool.meta
        body: dict[str, Any] = {
            "name": meta.name,
            "external": True,
            "tags": meta.tags,
            "client_key": meta.client_key,
            "environment": meta.environment or None,
            "heartbeat_timeout_s": meta.heartbeat_timeout_s,
        }
        optional = {
            "config": meta.config,
            "params": meta.params,
            "resumed_from": meta.resumed_from,
            "started_at": _started_at(meta.created_at),
        }
        body.update({name: value for name, value in optional.items() if value is not None})
        return body

    def ensure_run(self) -> int:
        """The server's id of the run, creating the run there on first contact."""
        meta = self.spool.meta
        if meta.run_id is not None:
            return meta.run_id
        body = self._create_body()
        try:
            run, _ = self._retrying("create the run", lambda: self.api.create_run(body))
        except SegtrackError as error:
            if error.status_code != 422 or meta.config is None:
                raise Halted(f"the server refused to create the run: {error.message}") from error
            # A config the server does not take as a TrainConfig is still worth keeping.
            logger.warning(
                "run %s: the server refused its config as a TrainConfig (%s); sending it as "
                "params instead",
                self.key,
                error.message,
            )
            meta.params = {**meta.config, **(meta.params or {})}
            meta.config = None
            body = self._create_body()
            try:
                run, _ = self._retrying("create the run", lambda: self.api.create_run(body))
            except SegtrackError as second:
                raise Halted(f"the server refused to create the run: {second.message}") from second
        meta.run_id = int(run["id"])
        self.spool.save_meta()
        logger.info("run %s -> %s", self.key, self.api.run_url(meta.run_id))
        self.on_run(meta.run_id)
        return meta.run_id

    # --- records ----------------------------------------------------------------------------

    def save_mark(self, *, force: bool = False) -> None:
        saved, at = self._mark_saved
        if self.mark == saved or not (force or time.monotonic() - at >= MARK_EVERY_S):
            return
        self.spool.save_sent(self.mark)
        self._mark_saved = (self.mark, time.monotonic())

    def _ack(self, records: Sequence[Spooled]) -> None:
        with self.acked:
            self.mark = SentMark(records[-1].seq, records[-1].end)
            self.sent += len(records)
            self.acked.notify_all()
        self.save_mark()

    def _group(self) -> list[Spooled]:
        """The next records to send in one request."""
        first = self._window.popleft()
        group = [first]
        if first.type == "metrics":
            points = len(first.body["step"])
            while self._window and self._window[0].type == "metrics":
                more = len(self._window[0].body["step"])
                if points + more > MAX_POINTS:
                    break
                points += more
                group.append(self._window.popleft())
        elif first.type == "logs":
            lines = len(first.body["lines"])
            while self._window and self._window[0].type == "logs":
                following = self._window[0].body
                last = group[-1].body
                contiguous = following["first_line"] == last["first_line"] + len(last["lines"])
                if not contiguous or lines + len(following["lines"]) > MAX_LOG_LINES:
                    break
                lines += len(following["lines"])
                group.append(self._window.popleft())
        return group

    def send_next(self) -> bool:
        """Send the next record (or merged records); False when none is spooled yet."""
        if len(self._window) < WINDOW:
            self._window.extend(self._reader.read(WINDOW - len(self._window)))
        if not self._window:
            return False
        run_id = self.ensure_run()
        group = self._group()
        try:
            self._send(run_id, group)
        except SegtrackError as error:
            if is_fatal(error):
                raise Halted(f"{error.status_code} {error.message}") from error
            if len(group) == 1:
                self._refused(group[0], error)
            else:
                # One bad record must not take the others of its request with it.
                for record in group:
                    try:
                        self._send(run_id, [record])
                    except SegtrackError as single:
                        if is_fatal(single):
                            raise Halted(f"{single.status_code} {single.message}") from single
                        self._refused(record, single)
        self._ack(group)
        return True

    def _refused(self, record: Spooled, error: SegtrackError) -> None:
        logger.warning(
            "run %s: the server refused record %d (%s), skipped: %s %s",
            self.key,
            record.seq,
            record.type,
            error.status_code,
            error.message,
        )

    def _send(self, run_id: int, group: Sequence[Spooled]) -> None:
        kind = group[0].type
        body = group[0].body
        if kind == "metrics":
            points = [
                {"key": key, "step": step, "value": value, "epoch": epoch}
                for record in group
                for key, step, value, epoch in zip(
                    record.body["key"],
                    record.body["step"],
                    record.body["value"],
                    record.body["epoch"],
                    strict=True,
                )
            ]
            self._retrying("send metrics", lambda: self.api.post_metrics(run_id, points))
        elif kind == "logs":
            lines = [line for record in group for line in record.body["lines"]]
            self._send_logs(run_id, int(body["first_line"]), lines)
        elif kind == "previews":
            self._send_previews(run_id, body)
        elif kind == "validation":
            self._send_validation(run_id, group[0])
        elif kind == "file":
            self._send_file(run_id, group[0])
        elif kind == "info":
            info = {name: value for name, value in body.items() if name != "type"}
            self._retrying("send the run's info", lambda: self.api.put_info(run_id, info))
        elif kind == "finish":
            self._send_finish(run_id, body)
        else:
            logger.warning(
                "run %s: record %d of unknown type %r skipped", self.key, group[0].seq, kind
            )

    def _send_logs(self, run_id: int, first_line: int, lines: list[str]) -> None:
        try:
            self._retrying(
                "send log lines",
                lambda: self.api.post_logs(run_id, first_line - self._log_shift, lines),
            )
        except SegtrackError as error:
            details = error.details if isinstance(error.details, dict) else {}
            if error.status_code != 409 or not isinstance(details.get("log_lines"), int):
                raise
            # An earlier record was refused: number on from where the server's log ends.
            self._log_shift = first_line - int(details["log_lines"])
            self._retrying(
                "send log lines",
                lambda: self.api.post_logs(run_id, first_line - self._log_shift, lines),
            )

    def _send_previews(self, run_id: int, body: dict[str, Any]) -> None:
        for sample in body["samples"]:
            try:
                pngs = {
                    part: (self.spool.folder / sample[part]).read_bytes()
                    for part in ("image", "truth", "prediction")
                }
            except OSError as error:
                logger.warning("run %s: preview %s skipped: %s", self.key, sample["name"], error)
                continue
            epoch, index, name = int(body["epoch"]), int(sample["index"]), str(sample["name"])
            # Spools written before previews had reasons hold the fixed set only.
            reasons = ",".join(sample.get("reasons", ["fixed"]))
            send = functools.partial(
                self.api.post_preview, run_id, epoch, index, name, pngs, reasons=reasons
            )
            self._retrying("send previews", send)

    def _send_validation(self, run_id: int, record: Spooled) -> None:
        blob = self.spool.folder / record.body["blob"]
        epoch = int(record.body["epoch"])
        try:
            body = read_body(blob)
        except (OSError, ValueError, KeyError) as error:
            logger.warning(
                "run %s: validation detail of epoch %d skipped: %s", self.key, epoch, error
            )
            return
        try:
            self._retrying(
                "send a validation detail", lambda: self.api.put_validation(run_id, epoch, body)
            )
        except SegtrackError as error:
            if is_fatal(error):
                raise
            self._done_with(record, blob)  # refused: it would be refused again
            raise
        self._done_with(record, blob)

    def _done_with(self, record: Spooled, blob: Path) -> None:
        """The server has the record's blob (or will never take it): it can go, once the mark
        says so, or a resend after a crash would miss it."""
        self.mark = SentMark(record.seq, record.end)
        self.spool.save_sent(self.mark)
        self._mark_saved = (self.mark, time.monotonic())
        _remove(blob)

    def _superseded(self, record: Spooled) -> bool:
        """Whether a later spooled file replaces this checkpoint (only the newest counts)."""
        kind = record.body["kind"]
        if kind not in SUPERSEDABLE:
            return False
        if len(self._window) < WINDOW:
            self._window.extend(self._reader.read(WINDOW - len(self._window)))
        return any(later.type == "file" and later.body["kind"] == kind for later in self._window)

    def _send_file(self, run_id: int, record: Spooled) -> None:
        body = record.body
        blob = self.spool.folder / body["blob"]
        if not self._superseded(record):
            file = FileToSend(
                path=blob,
                kind=str(body["kind"]),
                name=str(body["name"]),
                size=int(body["size"]),
                sha256=str(body["sha256"]),
                epoch=body.get("epoch"),
                metric=body.get("metric"),
            )
            uploader = Uploader(
                self.api,
                run_id,
                file,
                piece_bytes=self.piece_bytes,
                between_pieces=self._check_abort,
            )
            try:
                self._retrying(f"upload {file.name}", uploader.send)
            except (BlobChangedError, FileNotFoundError) as error:
                logger.warning("run %s: %s not uploaded: %s", self.key, file.name, error)
        self._done_with(record, blob)

    def _send_finish(self, run_id: int, body: dict[str, Any]) -> None:
        status, reason = str(body["status"]), body.get("reason")
        try:
            self._retrying("finish the run", lambda: self.api.finish(run_id, status, reason))
        except SegtrackError as error:
            if error.status_code != 409:
                raise
            logger.warning("run %s: not marked %s: %s", self.key, status, error.message)

    # --- loops ------------------------------------------------------------------------------

    def drain(
        self, closed: Callable[[], bool], wait: Callable[[float], None] = lambda seconds: None
    ) -> None:
        """Send records until the spool is `closed()` and all sent; between records that are
        not there yet, `wait(seconds)` (returns early when some arrive).

        Raises:
            Aborted, Halted, GaveUp: as their docs say; what is left stays spooled.
        """
        while True:
            if self.send_next():
                continue
            self.save_mark(force=True)
            if closed():
                # Records may have landed between the last read and the close.
                if not self.send_next():
                    return
                continue
            wait(1.0)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
