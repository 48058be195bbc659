"""Sending one file through the server's resumable uploads: announce it (size, SHA-256), then
stream pieces read from disk a block at a time (never the whole file in memory). After a cut,
the upload is asked where it stands and the next piece starts there."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from segtrack.client import SegtrackError
from segtrack.tracking.api import TrackingApi, Unreachable

PIECE_BYTES = 64 * 1024 * 1024
"""Bytes per PATCH: each piece is synced to disk on the server before it answers, so fewer,
larger pieces upload faster; a cut costs at most the piece in flight."""
BLOCK_BYTES = 1024 * 1024
"""Bytes read from disk and handed to the connection at a time."""


class BlobChangedError(OSError):
    """The spooled copy of a file no longer has the size it was logged with."""


def file_digest(path: Path) -> tuple[int, str]:
    """The size and SHA-256 (hex) of a file, read a block at a time."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(BLOCK_BYTES):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


@dataclass(frozen=True)
class FileToSend:
    """A logged file as its record describes it."""

    path: Path
    kind: str
    name: str
    size: int
    sha256: str
    epoch: int | None
    metric: float | None


def _blocks(path: Path, offset: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(offset)
        left = length
        while left:
            block = handle.read(min(BLOCK_BYTES, left))
            if not block:
                raise BlobChangedError(f"{path} is shorter than the {offset + length} bytes logged")
            left -= len(block)
            yield block


class Uploader:
    """Sends one file; `send` may be called again after it raised Unreachable and goes on
    from where the server's copy ends."""

    def __init__(
        self,
        api: TrackingApi,
        run_id: int,
        file: FileToSend,
        *,
        piece_bytes: int = PIECE_BYTES,
        between_pieces: Callable[[], None] = lambda: None,
    ) -> None:
        """Args:
        between_pieces: Called before each piece; raises to stop the upload (the sender's
            abort), which a later `send` resumes.
        """
        self._api = api
        self._run_id = run_id
        self._file = file
        self._piece_bytes = piece_bytes
        self._between_pieces = between_pieces
        self._upload_id: str | None = None

    def _state(self) -> dict[str, object]:
        """The upload as the server has it, created when it does not exist yet."""
        if self._upload_id is not None:
            try:
                return self._api.get_upload(self._run_id, self._upload_id)
            except SegtrackError as error:
                if error.status_code != 404:
                    raise
        file = self._file
        state = self._api.create_upload(
            self._run_id,
            {
                "kind": file.kind,
                "name": file.name,
                "size_bytes": file.size,
                "sha256": file.sha256,
                "epoch": file.epoch,
                "metric": file.metric,
            },
        )
        self._upload_id = str(state["id"])
        return state

    def send(self) -> None:
        """Upload the rest of the file; returns once the server has it whole and checked.

        Raises:
            Unreachable: the connection failed; call again to resume.
            SegtrackError: refused, e.g. `checksum_mismatch` (the server discarded its copy).
            BlobChangedError: the spooled file lost bytes since it was logged.
        """
        file = self._file
        if file.path.stat().st_size != file.size:
            raise BlobChangedError(f"{file.path} is no longer the {file.size} bytes logged")
        state = self._state()
        offset, complete = int(str(state["offset"])), bool(state["complete"])
        while not complete:
            self._between_pieces()
            assert self._upload_id is not None
            length = min(self._piece_bytes, file.size - offset)
            try:
                answer = self._api.send_piece(
                    self._run_id,
                    self._upload_id,
                    offset,
                    length,
                    _blocks(file.path, offset, length),
                )
            except SegtrackError as error:
                if error.code == "upload_offset_mismatch" and isinstance(error.details, dict):
                    offset = int(error.details["offset"])
                    continue
                if error.code == "upload_busy":
                    # The request a cut left behind still holds it: ask again after a pause.
                    raise Unreachable(error.message) from error
                if error.code == "checksum_mismatch":
                    self._upload_id = None
                raise
            offset, complete = int(answer["offset"]), bool(answer["complete"])
