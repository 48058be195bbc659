"""Uploads from tracking clients: opening one, adding its pieces, checking and placing the whole
file; and the run files they leave.

A piece (one PATCH) never holds a database transaction while bytes arrive: a short read finds
the upload, its part file is locked (`PartFile`), the bytes are written and synced, and one short
transaction moves the offset, guarded by the offset the piece started from. The piece that
brings the last byte checks the SHA-256, moves the file into place (checkpoint `best`/`last` or
`files/<name>`) and records it in one more short transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.artifacts import (
    ArtifactPathError,
    absolute_path,
    checkpoint_path,
    delete_run_files,
    relative_path,
    run_file_path,
    upload_part_path,
)
from server.byte_size import byte_size
from server.db import after_commit, session_scope
from server.errors import (
    ChecksumMismatch,
    Conflict,
    InsufficientStorage,
    NotFound,
    PayloadTooLarge,
    UploadBusy,
    UploadOffsetMismatch,
)
from server.events import record_event
from server.models import Run, RunFile, Upload
from server.preview.service import CheckpointKind, record_checkpoint
from server.run.repository import get_run
from server.settings import Settings
from server.upload import repository
from server.upload.part_file import PartFile, PartFileBusyError
from server.upload.schemas import CHECKPOINT_KINDS, PieceOut, UploadCreate


@dataclass(frozen=True)
class Piece:
    """A PATCH under way: the upload as it stood once its part file was locked."""

    upload_id: str
    run_id: int
    kind: str
    name: str
    size_bytes: int
    sha256: str
    epoch: int | None
    metric: float | None
    offset: int
    part: PartFile

    @property
    def room(self) -> int:
        """Bytes this piece may still bring."""
        return self.size_bytes - self.offset


def _tracked_run(session: Session, run_id: int) -> Run:
    run = get_run(session, run_id)
    if not run.external:
        raise Conflict(
            f"run {run_id} is trained by a worker, which stores its own checkpoints; only runs "
            "trained elsewhere (external runs) take uploads"
        )
    return run


def _missing_upload(run_id: int, upload_id: str) -> NotFound:
    return NotFound(
        f"run {run_id} has no upload {upload_id}: it never existed, its checksum did not match, "
        "or a newer upload of the same file replaced it; create the upload again"
    )


def _offset_mismatch(upload_id: str, stored: int, sent: int) -> UploadOffsetMismatch:
    return UploadOffsetMismatch(
        f"upload {upload_id} stands at offset {stored}, not {sent}: send its bytes from offset "
        f"{stored} on (Upload-Offset: {stored})",
        {"offset": stored},
    )


def create_upload(
    session: Session, settings: Settings, run_id: int, body: UploadCreate
) -> tuple[Upload, bool]:
    """The upload of `body`'s file, and whether it is new.

    An unfinished upload of the very same file is returned to resume, a finished one of the same
    content as it is; otherwise a new upload supersedes the unfinished ones of its target.
    """
    limit = settings.max_upload_bytes
    if body.size_bytes > limit:
        raise PayloadTooLarge(
            f"{body.name} is {byte_size(body.size_bytes)}, over the upload limit of "
            f"{byte_size(limit)} (SEGTRACK_MAX_UPLOAD_BYTES)",
            {"max_upload_bytes": limit},
        )
    _tracked_run(session, run_id)
    existing = repository.matching_upload(
        session,
        run_id,
        kind=body.kind,
        name=body.name,
        size_bytes=body.size_bytes,
        sha256=body.sha256,
    )
    if existing is not None:
        return existing, False
    superseded = repository.unfinished_of_target(session, run_id, body.kind, body.name)
    repository.delete_uploads(session, superseded)
    artifacts = settings.artifacts_dir
    after_commit(session, lambda: _remove_parts(artifacts, run_id, superseded))
    upload = Upload(
        id=uuid.uuid4().hex,
        run_id=run_id,
        kind=body.kind,
        name=body.name,
        size_bytes=body.size_bytes,
        sha256=body.sha256,
        received_bytes=0,
        epoch=body.epoch,
        metric=body.metric,
    )
    session.add(upload)
    session.flush()
    return upload, True


def _remove_parts(artifacts_dir: Path, run_id: int, upload_ids: Sequence[str]) -> None:
    for upload_id in upload_ids:
        upload_part_path(artifacts_dir, run_id, upload_id).unlink(missing_ok=True)


def get_upload(session: Session, run_id: int, upload_id: str) -> Upload:
    get_run(session, run_id)
    upload = repository.get_upload(session, run_id, upload_id)
    if upload is None:
        raise _missing_upload(run_id, upload_id)
    return upload


def _finished(upload: Upload, offset: int, declared: int | None) -> PieceOut:
    """The answer to a piece of an upload that is complete already (a replayed last piece)."""
    if offset != upload.size_bytes:
        raise _offset_mismatch(upload.id, upload.size_bytes, offset)
    if declared:
        raise _beyond_size(upload.id, upload.size_bytes, upload.size_bytes)
    return PieceOut(offset=upload.size_bytes, complete=True)


def _beyond_size(upload_id: str, size_bytes: int, offset: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"upload {upload_id} is {size_bytes} bytes and stands at offset {offset}: a piece may "
        f"bring at most the {size_bytes - offset} bytes left; nothing of this one was kept",
        {"offset": offset, "size_bytes": size_bytes},
    )


def open_piece(
    factory: sessionmaker[Session],
    artifacts_dir: Path,
    run_id: int,
    upload_id: str,
    *,
    offset: int,
    declared: int | None,
) -> Piece | PieceOut:
    """Lock the upload's part file for a piece starting at `offset` of `declared` bytes (None:
    unknown), or the answer when the upload is complete already.

    Raises:
        NotFound, Conflict: no such run or upload; a worker's run.
        UploadOffsetMismatch: `offset` is not where the upload stands.
        UploadBusy: another request is sending this upload now.
        PayloadTooLarge: `declared` is more than the bytes left.
    """
    with session_scope(factory, write=False) as session:
        _tracked_run(session, run_id)
        upload = repository.get_upload(session, run_id, upload_id)
    if upload is None:
        raise _missing_upload(run_id, upload_id)
    if upload.completed_at is not None:
        return _finished(upload, offset, declared)
    if offset != upload.received_bytes:
        raise _offset_mismatch(upload_id, upload.received_bytes, offset)
    try:
        part = PartFile(upload_part_path(artifacts_dir, run_id, upload_id))
    except PartFileBusyError as error:
        raise UploadBusy(
            f"another request is sending upload {upload_id} now; once it ends, GET the upload "
            "for its offset and continue from there",
            {"offset": upload.received_bytes},
        ) from error
    try:
        return _locked_piece(factory, part, run_id, upload_id, offset=offset, declared=declared)
    except BaseException:
        part.close()
        raise


def _locked_piece(
    factory: sessionmaker[Session],
    part: PartFile,
    run_id: int,
    upload_id: str,
    *,
    offset: int,
    declared: int | None,
) -> Piece | PieceOut:
    # Read again under the lock: a piece that held it may have moved the offset meanwhile.
    with session_scope(factory, write=False) as session:
        upload = repository.get_upload(session, run_id, upload_id)
    if upload is None or upload.completed_at is not None:
        # The upload's own part file was moved or removed: only this request's new one is left.
        part.discard()
        part.close()
        if upload is None:
            raise _missing_upload(run_id, upload_id)
        return _finished(upload, offset, declared)
    stored = upload.received_bytes
    on_disk = part.size()
    if on_disk < stored:
        # Committed bytes that are not on the disk (the part file was lost): resume from what is.
        with session_scope(factory) as session:
            repository.advance_offset(session, upload_id, expected=stored, offset=on_disk)
        stored = on_disk
    if offset != stored:
        raise _offset_mismatch(upload_id, stored, offset)
    if declared is not None and declared > upload.size_bytes - stored:
        raise _beyond_size(upload_id, upload.size_bytes, stored)
    part.start_at(stored)
    return Piece(
        upload_id=upload_id,
        run_id=run_id,
        kind=upload.kind,
        name=upload.name,
        size_bytes=upload.size_bytes,
        sha256=upload.sha256,
        epoch=upload.epoch,
        metric=upload.metric,
        offset=stored,
        part=part,
    )


def drop_piece(piece: Piece, free_bytes: int) -> InsufficientStorage:
    """Give the disk back what a piece wrote before the disk filled up (its bytes were not
    committed), and the error that says so."""
    piece.part.start_at(piece.offset)
    return InsufficientStorage(
        f"the server's disk is full ({free_bytes} bytes free for its artifacts), so nothing of "
        f"this piece of {piece.name} (upload {piece.upload_id}) was kept; the upload stands at "
        f"offset {piece.offset}: free space on the server and send again from there",
        {"offset": piece.offset, "free_bytes": free_bytes},
    )


def finish_piece(
    factory: sessionmaker[Session],
    artifacts_dir: Path,
    piece: Piece,
    *,
    received: int,
    overflowed: bool,
) -> PieceOut:
    """Commit the `received` bytes a piece wrote (synced first), and complete the upload when
    they were its last. The caller closes the part file afterwards.

    Raises:
        PayloadTooLarge: the piece brought more than the bytes left (`overflowed`); nothing of
            it is kept.
        ChecksumMismatch: the whole file's SHA-256 is not the announced one; the upload is
            discarded.
    """
    if overflowed:
        piece.part.start_at(piece.offset)
        raise _beyond_size(piece.upload_id, piece.size_bytes, piece.offset)
    offset = piece.offset + received
    if received:
        piece.part.sync()
        with session_scope(factory) as session:
            moved = repository.advance_offset(
                session, piece.upload_id, expected=piece.offset, offset=offset
            )
        if not moved:
            with session_scope(factory, write=False) as session:
                upload = repository.get_upload(session, piece.run_id, piece.upload_id)
            if upload is None:
                raise _missing_upload(piece.run_id, piece.upload_id)
            raise _offset_mismatch(piece.upload_id, upload.received_bytes, piece.offset)
    if offset < piece.size_bytes:
        return PieceOut(offset=offset, complete=False)
    return _complete(factory, artifacts_dir, piece)


def _complete(factory: sessionmaker[Session], artifacts_dir: Path, piece: Piece) -> PieceOut:
    received = piece.part.sha256()
    if received != piece.sha256:
        piece.part.discard()
        with session_scope(factory) as session:
            repository.delete_uploads(session, [piece.upload_id])
        raise ChecksumMismatch(
            f"{piece.name} (upload {piece.upload_id}): expected SHA-256 {piece.sha256}, received "
            f"{received}; the upload was discarded, create it again",
            {"expected": piece.sha256, "received": received},
        )
    destination = (
        checkpoint_path(artifacts_dir, piece.run_id, piece.kind)
        if piece.kind in CHECKPOINT_KINDS
        else run_file_path(artifacts_dir, piece.run_id, piece.name)
    )
    piece.part.publish(destination)
    with session_scope(factory) as session:
        # FOR SHARE: the run cannot be deleted between this check and the rows below.
        run = session.scalars(
            select(Run).where(Run.id == piece.run_id).with_for_update(read=True)
        ).one_or_none()
        if run is not None:
            _record_complete(session, artifacts_dir, piece, run, destination)
    if run is None:
        # Deleted while the file was moved in: its folder may have been made again.
        delete_run_files(artifacts_dir, piece.run_id)
        raise NotFound(f"run {piece.run_id} was deleted while its upload completed")
    return PieceOut(offset=piece.size_bytes, complete=True)


def _record_complete(
    session: Session, artifacts_dir: Path, piece: Piece, run: Run, destination: Path
) -> None:
    # The row may be gone (superseded meanwhile); the file is whole and checked, so it counts.
    repository.mark_complete(session, piece.upload_id)
    repository.delete_finished_of_target(
        session, piece.run_id, piece.kind, piece.name, keep=piece.upload_id
    )
    if piece.kind in CHECKPOINT_KINDS:
        record_checkpoint(
            session,
            artifacts_dir,
            piece.run_id,
            cast(CheckpointKind, piece.kind),
            destination,
            epoch=run.epochs_done if piece.epoch is None else piece.epoch,
            metric=piece.metric,
        )
    else:
        repository.upsert_run_file(
            session,
            run_id=piece.run_id,
            name=piece.name,
            kind=piece.kind,
            path=relative_path(artifacts_dir, destination),
            size_bytes=piece.size_bytes,
            sha256=piece.sha256,
        )
        record_event(
            session,
            "file",
            piece.run_id,
            {"name": piece.name, "kind": piece.kind, "size_bytes": piece.size_bytes},
        )


def list_files(session: Session, run_id: int) -> list[RunFile]:
    get_run(session, run_id)
    return repository.list_files(session, run_id)


def run_file(
    session: Session, artifacts_dir: Path, run_id: int, file_id: int
) -> tuple[RunFile, Path]:
    """The run's file `file_id` and where it lies, or NotFound."""
    get_run(session, run_id)
    found = repository.get_file(session, run_id, file_id)
    if found is None:
        raise NotFound(f"run {run_id} has no file {file_id}; GET /api/v1/runs/{run_id}/files")
    try:
        path = absolute_path(artifacts_dir, found.path)
    except ArtifactPathError as error:
        raise NotFound(f"file {found.name} is not available: {error}") from error
    if not path.is_file():
        raise NotFound(f"file {found.name} is recorded but missing from the artifacts")
    return found, path
