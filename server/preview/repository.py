"""SQL for preview samples and checkpoints. Never commits. Paths are relative to the artifacts
root (`server.artifacts.relative_path`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.models import Checkpoint, Preview, utcnow


def _insert(session: Session, table: Table) -> postgresql.Insert | sqlite.Insert:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def add_preview(
    session: Session,
    *,
    run_id: int,
    epoch: int,
    sample_index: int,
    name: str,
    image_path: str,
    truth_path: str,
    prediction_path: str,
    reasons: Sequence[str] = ("fixed",),
) -> None:
    """Store (or replace, when an epoch is redone after a resume) one preview sample;
    `reasons` say why it is previewed ("fixed", "pinned", "worst")."""
    values = {
        "name": name,
        "image_path": image_path,
        "truth_path": truth_path,
        "prediction_path": prediction_path,
        "reasons": list(reasons),
        "created_at": utcnow(),
    }
    statement = _insert(session, Preview.__table__).values(  # type: ignore[arg-type]
        run_id=run_id, epoch=epoch, sample_index=sample_index, **values
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["run_id", "epoch", "sample_index"], set_=values
        )
    )


def upsert_checkpoint(
    session: Session,
    *,
    run_id: int,
    kind: str,
    epoch: int,
    metric: float | None,
    path: str,
    size_bytes: int,
    updated_at: datetime | None = None,
) -> None:
    """Store the run's `best` or `last` checkpoint (replacing the previous one of that kind)."""
    values = {
        "epoch": epoch,
        "metric": metric,
        "path": path,
        "size_bytes": size_bytes,
        "updated_at": updated_at or utcnow(),
    }
    statement = _insert(session, Checkpoint.__table__).values(  # type: ignore[arg-type]
        run_id=run_id, kind=kind, **values
    )
    session.execute(statement.on_conflict_do_update(index_elements=["run_id", "kind"], set_=values))


def get_checkpoint(session: Session, run_id: int, kind: str) -> Checkpoint | None:
    return session.scalars(
        select(Checkpoint).where(Checkpoint.run_id == run_id, Checkpoint.kind == kind)
    ).one_or_none()


def list_checkpoints(session: Session, run_id: int) -> list[Checkpoint]:
    return list(
        session.scalars(
            select(Checkpoint).where(Checkpoint.run_id == run_id).order_by(Checkpoint.kind)
        )
    )


def preview_epochs(session: Session, run_id: int) -> list[int]:
    """Epochs with previews, ascending."""
    return list(
        session.scalars(
            select(Preview.epoch).where(Preview.run_id == run_id).distinct().order_by(Preview.epoch)
        )
    )


def previews_at(session: Session, run_id: int, epoch: int) -> list[Preview]:
    return list(
        session.scalars(
            select(Preview)
            .where(Preview.run_id == run_id, Preview.epoch == epoch)
            .order_by(Preview.sample_index)
        )
    )


def get_preview(session: Session, run_id: int, epoch: int, sample_index: int) -> Preview | None:
    return session.scalars(
        select(Preview).where(
            Preview.run_id == run_id, Preview.epoch == epoch, Preview.sample_index == sample_index
        )
    ).one_or_none()
