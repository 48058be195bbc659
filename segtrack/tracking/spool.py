"""A tracked run's spool: everything it logged, on local disk, until the server has it.

One folder per run, `<root>/<client_key>/`:

- `run.json`: what creating the run on the server needs (name, tags, config, environment, ...),
  the server's URL, and the server's run id once known. Rewritten atomically.
- `records.jsonl`: append-only, one JSON object per line with a strictly increasing `seq` and a
  `type` (info, metrics (points in columns: key, step, value, epoch), previews, validation
  (an epoch's confusion matrix and per-image counts, in a blob), file, logs, finish). A torn
  last line (the process died while
  writing it) is ignored on read.
- `sent.json`: the highest `seq` the server acknowledged and the byte offset just past it in
  `records.jsonl`, written atomically (temporary file, fsync, rename).
- `blobs/`: preview PNGs, validation details (`.npz`) and hard links (or copies) of logged
  files that records refer to.
- `lock`: held (flock) by the process that sends the run, so `segtrack sync` leaves it alone.

Records are encoded with orjson: a spool thread that holds the GIL for a long encode would
stall the training loop's next `log()`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

FORMAT_VERSION = 1
RUN_FILE = "run.json"
RECORDS_FILE = "records.jsonl"
SENT_FILE = "sent.json"
BLOBS_DIR = "blobs"
LOCK_FILE = "lock"
CLIENT_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class SpoolError(Exception):
    """A folder that is not a readable spool; the message says which file and why."""


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` so a reader sees the old or the new content, never a mix,
    also after a power cut (the data and the rename are synced)."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
    descriptor = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass
class RunMeta:
    """What the server needs to create the run, and what it answered."""

    client_key: str
    server: str | None
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    """ISO 8601 UTC: the run's start, kept when it is synced later."""
    heartbeat_timeout_s: int | None = None
    resumed_from: int | None = None
    run_id: int | None = None
    """The server's id of the run, once it was created there."""

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT_VERSION, **asdict(self)}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: Path) -> RunMeta:
        try:
            data = json.loads(text)
            if data.pop("format", None) != FORMAT_VERSION:
                raise SpoolError(f"{source}: not a spool of format {FORMAT_VERSION}")
            return cls(**data)
        except (ValueError, TypeError, AttributeError) as error:
            raise SpoolError(f"{source}: unreadable ({error})") from error


@dataclass(frozen=True)
class SentMark:
    """How far the server has the records: `seq` acknowledged, `offset` just past it."""

    seq: int = 0
    offset: int = 0


@dataclass(frozen=True)
class Spooled:
    """One record read back: its `seq`, its body, and the file offset just past its line."""

    seq: int
    body: dict[str, Any]
    end: int

    @property
    def type(self) -> str:
        kind: str = self.body["type"]
        return kind


class Spool:
    """The folder of one tracked run."""

    def __init__(self, folder: Path, meta: RunMeta) -> None:
        self.folder = folder
        self.meta = meta
        self._lock: IO[bytes] | None = None

    @classmethod
    def create(cls, root: Path, meta: RunMeta) -> Spool:
        """A new spool for `meta` under `root` (created as needed)."""
        if not CLIENT_KEY_PATTERN.fullmatch(meta.client_key):
            raise SpoolError(f"client key {meta.client_key!r} is not 8-64 of A-Z a-z 0-9 _ -")
        folder = root / meta.client_key
        (folder / BLOBS_DIR).mkdir(parents=True, exist_ok=True)
        spool = cls(folder, meta)
        spool.save_meta()
        (folder / RECORDS_FILE).touch()
        return spool

    @classmethod
    def open(cls, folder: Path) -> Spool:
        """The spool in `folder`; SpoolError when it is not one."""
        path = folder / RUN_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise SpoolError(f"{path}: {error.strerror or error}") from error
        return cls(folder, RunMeta.from_json(text, path))

    @property
    def records_path(self) -> Path:
        return self.folder / RECORDS_FILE

    @property
    def blobs(self) -> Path:
        return self.folder / BLOBS_DIR

    def save_meta(self) -> None:
        write_atomic(self.folder / RUN_FILE, self.meta.to_json())

    def read_sent(self) -> SentMark:
        try:
            data = json.loads((self.folder / SENT_FILE).read_text(encoding="utf-8"))
            return SentMark(seq=int(data["seq"]), offset=int(data["offset"]))
        except FileNotFoundError:
            return SentMark()
        except (OSError, ValueError, KeyError, TypeError):
            # A mark that cannot be read means resending from the start: every record is
            # idempotent on the server, so that costs time, never data.
            return SentMark()

    def save_sent(self, mark: SentMark) -> None:
        write_atomic(
            self.folder / SENT_FILE, json.dumps({"seq": mark.seq, "offset": mark.offset}) + "\n"
        )

    def try_lock(self) -> bool:
        """Take the spool's lock for this process; False when another process holds it."""
        if self._lock is not None:
            return True
        handle = (self.folder / LOCK_FILE).open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock = handle
        return True

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the descriptor releases the flock
            self._lock = None

    def unsent(self) -> int:
        """How many records the server does not have yet."""
        mark = self.read_sent()
        count = 0
        with RecordReader(self.records_path, mark) as reader:
            while batch := reader.read(1000):
                count += len(batch)
        return count


class RecordWriter:
    """Appends records to a spool's `records.jsonl`, numbering them."""

    def __init__(self, path: Path, next_seq: int = 1) -> None:
        self._handle = path.open("ab")
        self.next_seq = next_seq

    def append(self, bodies: Sequence[dict[str, Any]]) -> None:
        """Write `bodies` (each gets the next `seq`) and hand them to the operating system, so
        they survive the death of this process (not a power cut: see `sync`)."""
        if not bodies:
            return
        lines = []
        for body in bodies:
            lines.append(orjson.dumps({"seq": self.next_seq, **body}))
            self.next_seq += 1
        self._handle.write(b"\n".join(lines) + b"\n")
        self._handle.flush()

    def sync(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        if not self._handle.closed:
            self.sync()
            self._handle.close()


class RecordReader:
    """Reads a spool's records after a mark, a complete line at a time."""

    def __init__(self, path: Path, mark: SentMark) -> None:
        self._handle = path.open("rb")
        self._offset = mark.offset
        self._after = mark.seq
        self._handle.seek(self._offset)

    def read(self, limit: int) -> list[Spooled]:
        """Up to `limit` records after the previous ones; an unfinished last line (being
        written, or torn by a crash) is left for later."""
        records: list[Spooled] = []
        while len(records) < limit:
            line = self._handle.readline()
            if not line.endswith(b"\n"):
                self._handle.seek(self._offset)
                break
            self._offset += len(line)
            body = _parse(line)
            if body is None:
                continue
            seq = body.pop("seq")
            if seq <= self._after:
                continue
            self._after = seq
            records.append(Spooled(seq, body, self._offset))
        return records

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> RecordReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse(line: bytes) -> dict[str, Any] | None:
    """The record on `line`, or None for a line that holds none (a torn write followed by a
    later append never happens: only one process appends, and it starts a new spool)."""
    with contextlib.suppress(orjson.JSONDecodeError):
        body = orjson.loads(line)
        if isinstance(body, dict) and isinstance(body.get("seq"), int) and "type" in body:
            return body
    return None


def spool_folders(root: Path) -> Iterator[Path]:
    """The run folders directly under `root` (those with a run.json), by name."""
    if not root.is_dir():
        return iter(())
    return iter(sorted(child for child in root.iterdir() if (child / RUN_FILE).is_file()))


def latest_run_id(root: Path, server: str) -> int | None:
    """The server's id of the newest run spooled under `root` that reached `server` (e.g. the
    run a `segtrack train --resume` of that folder's checkpoint continues)."""
    newest: tuple[str, int] | None = None
    for folder in spool_folders(root):
        try:
            meta = Spool.open(folder).meta
        except SpoolError:
            continue
        if meta.run_id is None or meta.server != server.rstrip("/"):
            continue
        if newest is None or meta.created_at > newest[0]:
            newest = (meta.created_at, meta.run_id)
    return None if newest is None else newest[1]
