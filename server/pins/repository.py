"""SQL for the images pinned on a run. Never commits."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from server.models import PinnedImage


def pinned(session: Session, run_id: int) -> list[PinnedImage]:
    """The run's pins, oldest first."""
    return list(
        session.scalars(
            select(PinnedImage)
            .where(PinnedImage.run_id == run_id)
            .order_by(PinnedImage.pinned_at, PinnedImage.image_index)
        )
    )


def pinned_indices(session: Session, run_id: int) -> list[int]:
    """The positions of the run's pinned images, oldest pin first (what its trainer reads)."""
    return list(
        session.scalars(
            select(PinnedImage.image_index)
            .where(PinnedImage.run_id == run_id)
            .order_by(PinnedImage.pinned_at, PinnedImage.image_index)
        )
    )


def count(session: Session, run_id: int) -> int:
    return session.scalar(select(func.count()).where(PinnedImage.run_id == run_id)) or 0


def get(session: Session, run_id: int, index: int) -> PinnedImage | None:
    return session.get(PinnedImage, (run_id, index))


def add(session: Session, run_id: int, index: int, name: str, pinned_by: str | None) -> None:
    session.add(PinnedImage(run_id=run_id, image_index=index, name=name, pinned_by=pinned_by))
    session.flush()


def remove(session: Session, run_id: int, index: int) -> None:
    session.execute(
        delete(PinnedImage).where(PinnedImage.run_id == run_id, PinnedImage.image_index == index)
    )
