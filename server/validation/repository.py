"""Reading and writing validation detail rows. Never commits.

Writes upsert on their primary key (the run; the run and epoch), so a replayed epoch replaces
its row. Reads select only the blobs they need: the list of epochs reads none, one image's
trend slices its 24-byte score record out of every epoch in the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.models import ValidationEpoch, ValidationSet, utcnow
from server.validation.packing import SCORE_RECORD


@dataclass(frozen=True)
class StoredSet:
    class_names: list[str]
    image_count: int
    image_names: bytes
    names_digest: str


@dataclass(frozen=True)
class StoredEpoch:
    epoch: int
    count_bytes: int
    confusion: bytes
    counts: bytes
    scores: bytes


def _upsert(session: Session, model: type[Any], values: Mapping[str, Any], keys: list[str]) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE of every other column, on either database."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(model).values(**values)
    changed = {name: statement.excluded[name] for name in values if name not in keys}
    session.execute(statement.on_conflict_do_update(index_elements=keys, set_=changed))


def get_set(session: Session, run_id: int) -> StoredSet | None:
    row = session.execute(
        select(
            ValidationSet.class_names,
            ValidationSet.image_count,
            ValidationSet.image_names,
            ValidationSet.names_digest,
        ).where(ValidationSet.run_id == run_id)
    ).one_or_none()
    return None if row is None else StoredSet(*row)


def put_set(
    session: Session,
    run_id: int,
    *,
    class_names: list[str],
    image_count: int,
    image_names: bytes,
    names_digest: str,
) -> None:
    _upsert(
        session,
        ValidationSet,
        {
            "run_id": run_id,
            "class_names": class_names,
            "image_count": image_count,
            "image_names": image_names,
            "names_digest": names_digest,
            "updated_at": utcnow(),
        },
        ["run_id"],
    )


def put_epoch(session: Session, run_id: int, stored: StoredEpoch) -> None:
    _upsert(
        session,
        ValidationEpoch,
        {
            "run_id": run_id,
            "epoch": stored.epoch,
            "count_bytes": stored.count_bytes,
            "confusion": stored.confusion,
            "counts": stored.counts,
            "scores": stored.scores,
            "created_at": utcnow(),
        },
        ["run_id", "epoch"],
    )


def epochs(session: Session, run_id: int) -> list[int]:
    """The run's stored epochs, in order (read from the primary key's index only)."""
    return list(
        session.scalars(
            select(ValidationEpoch.epoch)
            .where(ValidationEpoch.run_id == run_id)
            .order_by(ValidationEpoch.epoch)
        )
    )


def confusion_at(session: Session, run_id: int, epoch: int) -> bytes | None:
    blob: bytes | None = session.scalar(
        select(ValidationEpoch.confusion).where(
            ValidationEpoch.run_id == run_id, ValidationEpoch.epoch == epoch
        )
    )
    return blob


def epoch_at(session: Session, run_id: int, epoch: int) -> StoredEpoch | None:
    row = session.execute(
        select(
            ValidationEpoch.epoch,
            ValidationEpoch.count_bytes,
            ValidationEpoch.confusion,
            ValidationEpoch.counts,
            ValidationEpoch.scores,
        ).where(ValidationEpoch.run_id == run_id, ValidationEpoch.epoch == epoch)
    ).one_or_none()
    return None if row is None else StoredEpoch(*row)


def scores_at(session: Session, run_id: int, epoch: int) -> bytes | None:
    blob: bytes | None = session.scalar(
        select(ValidationEpoch.scores).where(
            ValidationEpoch.run_id == run_id, ValidationEpoch.epoch == epoch
        )
    )
    return blob


def image_records(session: Session, run_id: int, index: int) -> list[tuple[int, bytes]]:
    """(epoch, the image's score record) of every stored epoch, in order."""
    size = SCORE_RECORD.itemsize
    record = func.substr(ValidationEpoch.scores, index * size + 1, size)
    rows = session.execute(
        select(ValidationEpoch.epoch, record)
        .where(ValidationEpoch.run_id == run_id)
        .order_by(ValidationEpoch.epoch)
    )
    return [(int(epoch), bytes(data)) for epoch, data in rows]
