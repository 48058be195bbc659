"""SQL for uploads and run files. Never commits.

An upload has a target: the run's checkpoint of its kind (`best`, `last`), or, for any other
kind, the run file of its name. A newer upload of a target supersedes the older ones, so a run
keeps at most one unfinished and one finished upload per target.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Table, and_, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.models import RunFile, Upload, utcnow
from server.upload.schemas import CHECKPOINT_KINDS


def _insert(session: Session, table: Table) -> postgresql.Insert | sqlite.Insert:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def same_target(run_id: int, kind: str, name: str) -> ColumnElement[bool]:
    """Uploads of `run_id` that land where an upload of `kind` and `name` lands."""
    if kind in CHECKPOINT_KINDS:
        return and_(Upload.run_id == run_id, Upload.kind == kind)
    return and_(Upload.run_id == run_id, Upload.name == name, Upload.kind.not_in(CHECKPOINT_KINDS))


def get_upload(session: Session, run_id: int, upload_id: str) -> Upload | None:
    return session.scalars(
        select(Upload).where(Upload.id == upload_id, Upload.run_id == run_id)
    ).one_or_none()


def matching_upload(
    session: Session, run_id: int, *, kind: str, name: str, size_bytes: int, sha256: str
) -> Upload | None:
    """The unfinished upload of exactly this file (to resume), else the finished upload of the
    same target and content (nothing left to send)."""
    unfinished = session.scalars(
        select(Upload).where(
            Upload.run_id == run_id,
            Upload.kind == kind,
            Upload.name == name,
            Upload.size_bytes == size_bytes,
            Upload.sha256 == sha256,
            Upload.completed_at.is_(None),
        )
    ).first()
    if unfinished is not None:
        return unfinished
    return session.scalars(
        select(Upload).where(
            same_target(run_id, kind, name),
            Upload.size_bytes == size_bytes,
            Upload.sha256 == sha256,
            Upload.completed_at.is_not(None),
        )
    ).first()


def unfinished_of_target(session: Session, run_id: int, kind: str, name: str) -> list[str]:
    """Ids of the target's unfinished uploads."""
    return list(
        session.scalars(
            select(Upload.id).where(same_target(run_id, kind, name), Upload.completed_at.is_(None))
        )
    )


def delete_uploads(session: Session, upload_ids: Sequence[str]) -> None:
    if upload_ids:
        session.execute(delete(Upload).where(Upload.id.in_(upload_ids)))


def delete_finished_of_target(
    session: Session, run_id: int, kind: str, name: str, *, keep: str
) -> None:
    """Forget the target's earlier finished uploads: their file was just replaced."""
    session.execute(
        delete(Upload).where(
            same_target(run_id, kind, name), Upload.completed_at.is_not(None), Upload.id != keep
        )
    )


def advance_offset(session: Session, upload_id: str, *, expected: int, offset: int) -> bool:
    """Move an unfinished upload from `expected` to `offset` bytes; False when it is not at
    `expected` any more (or is gone): another request moved it first."""
    result = session.execute(
        update(Upload)
        .where(
            Upload.id == upload_id,
            Upload.received_bytes == expected,
            Upload.completed_at.is_(None),
        )
        .values(received_bytes=offset, updated_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_complete(session: Session, upload_id: str) -> None:
    now = utcnow()
    session.execute(
        update(Upload)
        .where(Upload.id == upload_id, Upload.completed_at.is_(None))
        .values(received_bytes=Upload.size_bytes, completed_at=now, updated_at=now)
    )


def upsert_run_file(
    session: Session, *, run_id: int, name: str, kind: str, path: str, size_bytes: int, sha256: str
) -> None:
    """Store the run's file `name` (replacing the row of an earlier file of that name)."""
    values = {
        "kind": kind,
        "path": path,
        "size_bytes": size_bytes,
        "sha256": sha256,
        "created_at": utcnow(),
    }
    statement = _insert(session, RunFile.__table__).values(  # type: ignore[arg-type]
        run_id=run_id, name=name, **values
    )
    session.execute(statement.on_conflict_do_update(index_elements=["run_id", "name"], set_=values))


def list_files(session: Session, run_id: int) -> list[RunFile]:
    return list(
        session.scalars(select(RunFile).where(RunFile.run_id == run_id).order_by(RunFile.name))
    )


def get_file(session: Session, run_id: int, file_id: int) -> RunFile | None:
    return session.scalars(
        select(RunFile).where(RunFile.id == file_id, RunFile.run_id == run_id)
    ).one_or_none()
