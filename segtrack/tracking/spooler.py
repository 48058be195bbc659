"""The spool thread of a tracked run: every FLUSH_S it takes what the training loop queued in
memory, turns it into records (checked points, preview PNGs, file digests, numbered log lines)
and appends them to the spool, where the sender finds them.

The training loop only appends tuples to a deque (`Entry`); everything slower happens here.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from segtrack.tracking.previews import Sample, preview_record
from segtrack.tracking.spool import RecordWriter, Spool
from segtrack.tracking.upload import file_digest
from segtrack.tracking.validation import Detail, validation_record

logger = logging.getLogger(__name__)

FLUSH_S = 0.2
"""How often queued entries reach the spool file: what a killed process can lose at most."""
MAX_POINTS = 10_000
"""Points per metrics record (and per request: the server's limit)."""
MAX_LOG_LINES = 1000
MAX_LOG_LINE_CHARS = 4000
MAX_KEY_LENGTH = 200
MAX_STEP = 2**62
MAX_EPOCH = 2**31 - 1


class Metrics(NamedTuple):
    """One `log()` call: a tuple of atomic values, which the garbage collector stops tracking
    after one look, so calls waiting for the spool thread add little to its passes."""

    step: int
    epoch: int | None
    values: dict[str, float]


@dataclass
class Previews:
    epoch: int
    samples: Sequence[Sample]


@dataclass
class Validation:
    """An epoch's checked validation detail; its blob is written on the spool thread."""

    detail: Detail


@dataclass
class File:
    """A logged file, already linked or copied to `blob` (inside the spool)."""

    blob: Path
    kind: str
    name: str
    epoch: int | None
    metric: float | None


@dataclass
class Lines:
    lines: list[str]


@dataclass
class Info:
    body: dict[str, Any]


@dataclass
class Finish:
    status: str
    reason: str | None


@dataclass
class Marker:
    """A point in the queue: `seq` is the last record written before it, set with `reached`."""

    seq: int = 0
    reached: threading.Event = field(default_factory=threading.Event)


Entry = Metrics | Previews | Validation | File | Lines | Info | Finish | Marker
Point = tuple[str, int, float, int | None]


def key_problem(key: object) -> str | None:
    """Why the server would refuse `key` as a metric key, or None."""
    if not isinstance(key, str) or not key:
        return "keys are non-empty strings"
    if len(key) > MAX_KEY_LENGTH:
        return f"keys are at most {MAX_KEY_LENGTH} characters"
    if "\x00" in key:
        return "keys must not contain NUL"
    if key != key.strip():
        return "keys must not start or end with whitespace"
    return None


class SpoolWriter:
    """Drains a run's entry queue into its spool on a daemon thread."""

    def __init__(self, spool: Spool, entries: deque[Entry], on_records: Callable[[], None]) -> None:
        """Args:
        on_records: Called after records were appended (wakes the sender).
        """
        self._spool = spool
        self._entries = entries
        self._on_records = on_records
        self._records = RecordWriter(spool.records_path)
        self._wake = threading.Event()
        self._closing = False
        self._warned: set[str] = set()
        self._next_line = 0
        self._thread = threading.Thread(
            target=self._loop, name=f"segtrack-spool-{spool.meta.client_key}", daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def close(self) -> None:
        """Write everything queued, sync the file to disk and stop."""
        self._closing = True
        self._wake.set()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            self._wake.wait(FLUSH_S)
            self._wake.clear()
            closing = self._closing
            try:
                self._write_queued()
            except Exception:
                logger.exception(
                    "run %s: could not write to its spool", self._spool.meta.client_key
                )
            if closing:
                self._records.close()
                self._on_records()
                return

    def _warn_once(self, topic: str, message: str, *args: object) -> None:
        if topic not in self._warned:
            self._warned.add(topic)
            logger.warning(message, *args)

    def _write_queued(self) -> None:
        bodies: list[dict[str, Any]] = []
        points: list[Point] = []
        lines: list[str] = []
        wrote = False
        while self._entries:
            entry = self._entries.popleft()
            if not isinstance(entry, Metrics) and points:
                bodies += self._metric_records(points)
                points = []
            if not isinstance(entry, Lines) and lines:
                bodies += self._log_records(lines)
                lines = []
            if isinstance(entry, Metrics):
                points += self._points(entry)
            elif isinstance(entry, Lines):
                lines += entry.lines
            elif isinstance(entry, Marker):
                self._records.append(bodies)
                wrote = wrote or bool(bodies)
                bodies = []
                entry.seq = self._records.next_seq - 1
                entry.reached.set()
            elif (body := self._record(entry)) is not None:
                bodies.append(body)
        bodies += self._metric_records(points) + self._log_records(lines)
        self._records.append(bodies)
        if wrote or bodies:
            self._on_records()

    def _points(self, entry: Metrics) -> list[Point]:
        """The entry's points the server would accept; the others are logged once per key."""
        key_id = self._spool.meta.client_key
        if not 0 <= entry.step <= MAX_STEP:
            self._warn_once("step", "run %s: step %d is not 0-2^62; not logged", key_id, entry.step)
            return []
        epoch = entry.epoch
        if epoch is not None and not 0 <= epoch <= MAX_EPOCH:
            self._warn_once("epoch", "run %s: epoch %d is out of range; dropped", key_id, epoch)
            epoch = None
        kept = []
        for key, value in entry.values.items():
            problem = key_problem(key)
            if problem is not None:
                self._warn_once(f"key:{key}", "run %s: %r not logged: %s", key_id, key, problem)
            elif not math.isfinite(value):
                self._warn_once(
                    f"value:{key}",
                    "run %s: %s is %s at step %d; non-finite values are not logged",
                    key_id,
                    key,
                    value,
                    entry.step,
                )
            else:
                kept.append((key, entry.step, value, epoch))
        return kept

    @staticmethod
    def _metric_records(points: list[Point]) -> list[dict[str, Any]]:
        """Records of at most MAX_POINTS points each, in columns: four lists per record rather
        than a list per point keep the garbage collector's work (and its pauses) small."""
        records = []
        for start in range(0, len(points), MAX_POINTS):
            keys, steps, values, epochs = zip(*points[start : start + MAX_POINTS], strict=True)
            records.append(
                {"type": "metrics", "key": keys, "step": steps, "value": values, "epoch": epochs}
            )
        return records

    def _log_records(self, lines: list[str]) -> list[dict[str, Any]]:
        records = []
        for start in range(0, len(lines), MAX_LOG_LINES):
            chunk = [
                line.replace("\x00", "")[:MAX_LOG_LINE_CHARS]
                for line in lines[start : start + MAX_LOG_LINES]
            ]
            records.append({"type": "logs", "first_line": self._next_line, "lines": chunk})
            self._next_line += len(chunk)
        return records

    def _record(self, entry: Previews | Validation | File | Info | Finish) -> dict[str, Any] | None:
        if isinstance(entry, Previews | Validation):
            return self._blob_record(entry)
        if isinstance(entry, File):
            try:
                size, sha256 = file_digest(entry.blob)
            except OSError as error:
                logger.warning(
                    "run %s: %s not kept: %s", self._spool.meta.client_key, entry.name, error
                )
                return None
            return {
                "type": "file",
                "kind": entry.kind,
                "name": entry.name,
                "blob": entry.blob.relative_to(self._spool.folder).as_posix(),
                "size": size,
                "sha256": sha256,
                "epoch": entry.epoch,
                "metric": entry.metric,
            }
        if isinstance(entry, Info):
            return {"type": "info", **entry.body}
        return {"type": "finish", "status": entry.status, "reason": entry.reason}

    def _blob_record(self, entry: Previews | Validation) -> dict[str, Any] | None:
        """The record of an entry whose data goes into blobs (PNGs, an .npz)."""
        try:
            if isinstance(entry, Previews):
                return preview_record(self._spool.blobs, entry.epoch, entry.samples)
            return validation_record(self._spool.blobs, entry.detail)
        except (OSError, ValueError) as error:
            what = "previews" if isinstance(entry, Previews) else "validation detail"
            epoch = entry.epoch if isinstance(entry, Previews) else entry.detail.epoch
            logger.warning(
                "run %s: %s of epoch %d not kept: %s",
                self._spool.meta.client_key,
                what,
                epoch,
                error,
            )
            return None
