"""The part file of an upload: the bytes that arrived so far, locked by the one request adding
to it, synced before its offset is committed, hashed and moved into place once whole.

The lock is a BSD `flock` on the part file itself, taken without waiting: it belongs to the open
file, so two requests of one server process exclude each other as well as those of two
processes. (The offset update in the database is guarded too, for file systems whose locks do
not reach every host.)
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

READ_BLOCK = 1024 * 1024


class PartFileBusyError(Exception):
    """Another request holds the part file's lock."""


class PartFile:
    """An upload's part file, open and locked (exclusively) until `close`."""

    def __init__(self, path: Path) -> None:
        """Open (creating it and its folder when missing) and lock `path`.

        Raises:
            PartFileBusyError: another request is writing this upload now.
        """
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            self.close()
            raise PartFileBusyError(str(path)) from error
        except BaseException:
            self.close()
            raise
        self._hash: hashlib._Hash | None = None

    @property
    def fd(self) -> int:
        if self._fd is None:
            raise ValueError(f"the part file {self.path} is closed")
        return self._fd

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def start_at(self, offset: int) -> None:
        """Drop whatever lies past `offset` (bytes of a request that died before its offset was
        committed) and write from there on. From offset 0 the file is hashed as it arrives."""
        os.ftruncate(self.fd, offset)
        os.lseek(self.fd, offset, os.SEEK_SET)
        self._hash = hashlib.sha256() if offset == 0 else None

    def write(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        if self._hash is not None:
            self._hash.update(data)

    def sync(self) -> None:
        os.fsync(self.fd)

    def sha256(self) -> str:
        """The SHA-256 of the whole file: from the bytes written since offset 0, or, for an
        upload resumed in another request, read back from the disk (a resumed upload costs
        one more pass over its file)."""
        if self._hash is not None:
            return self._hash.hexdigest()
        digest = hashlib.sha256()
        position = 0
        while block := os.pread(self.fd, READ_BLOCK, position):
            digest.update(block)
            position += len(block)
        return digest.hexdigest()

    def publish(self, destination: Path) -> None:
        """Move the synced file to `destination` atomically (replacing a file there); the lock
        stays with the open file until `close`."""
        self.sync()
        destination.parent.mkdir(parents=True, exist_ok=True)
        self.path.replace(destination)
        _sync_folder(destination.parent)

    def discard(self) -> None:
        """Remove the part file (the lock goes with `close`)."""
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        """Close the file, which releases the lock; closing twice does nothing."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def _sync_folder(folder: Path) -> None:
    # The rename itself is durable only once the folder's entry is on disk.
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
