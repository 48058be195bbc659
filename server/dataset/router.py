"""/api/v1/datasets: register server-side dataset folders (under the dataset roots) by name."""

from __future__ import annotations

from fastapi import APIRouter, status

from server.dataset import repository, service
from server.dataset.schemas import (
    DatasetCreate,
    DatasetList,
    DatasetOut,
    DatasetPatch,
    DatasetSummaryOut,
)
from server.deps import SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])


@router.get("")
def list_datasets(session: SessionDep) -> DatasetList:
    return DatasetList(
        items=[
            DatasetSummaryOut.model_validate(dataset)
            for dataset in repository.list_datasets(session)
        ]
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def register_dataset(body: DatasetCreate, session: SessionDep, settings: SettingsDep) -> DatasetOut:
    """Inspect the folder and register it; 422 with the report when inspection finds errors."""
    return DatasetOut.model_validate(service.register_dataset(session, settings, body))


@router.get("/{id_or_name}")
def get_dataset(id_or_name: str, session: SessionDep) -> DatasetOut:
    """A dataset by id or name, with its inspection report."""
    return DatasetOut.model_validate(repository.get_dataset(session, id_or_name))


@router.patch("/{id_or_name}")
def patch_dataset(id_or_name: str, body: DatasetPatch, session: SessionDep) -> DatasetOut:
    """Change the class colours the dashboard paints masks with."""
    return DatasetOut.model_validate(service.update_dataset(session, id_or_name, body))
