"""SQL for registered datasets. Never commits."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import NotFound
from server.models import Dataset


def by_name(session: Session, name: str) -> Dataset | None:
    return session.scalars(select(Dataset).where(Dataset.name == name)).one_or_none()


def by_path(session: Session, path: str) -> Dataset | None:
    return session.scalars(select(Dataset).where(Dataset.path == path).limit(1)).one_or_none()


def get_dataset(session: Session, id_or_name: str | int) -> Dataset:
    """A dataset by id (digits) or name, or NotFound listing the registered names."""
    dataset = (
        session.get(Dataset, int(id_or_name))
        if isinstance(id_or_name, int) or id_or_name.isdigit()
        else by_name(session, id_or_name)
    )
    if dataset is None:
        known = ", ".join(all_names(session)) or "none yet"
        raise NotFound(f"dataset {id_or_name!r} does not exist; registered datasets: {known}")
    return dataset


def all_names(session: Session) -> list[str]:
    return list(session.scalars(select(Dataset.name).order_by(Dataset.name)))


def list_datasets(session: Session) -> list[Dataset]:
    return list(session.scalars(select(Dataset).order_by(Dataset.name)))


def add_dataset(session: Session, dataset: Dataset) -> Dataset:
    session.add(dataset)
    session.flush()
    return dataset
