"""/api/v1/datasets: register server-side dataset folders (under the dataset roots) by name."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import Response
from pydantic import AfterValidator

from server.bounds import INT32_MAX, NUL_MESSAGE, Count32, ascii_id
from server.dataset import repository, samples, service
from server.dataset.schemas import (
    DatasetCreate,
    DatasetList,
    DatasetOut,
    DatasetPatch,
    DatasetSampleOut,
    DatasetSamplesOut,
    DatasetSummaryOut,
)
from server.deps import SessionDep, SettingsDep
from server.http_errors import error_responses
from server.unit_of_work import UnitOfWorkRoute

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/datasets", tags=["datasets"])

MAX_SAMPLES = 48
SideParam = Annotated[int, Query(ge=16, le=1024, description="Largest side in pixels")]
_PNG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}},
    **error_responses(404),
}


def _dataset_ref(value: str) -> str:
    """A name, or an id the database can hold: `isdigit()` is also true for '²', which the
    lookup by id would then fail to read."""
    if "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    if value.isdigit() and ascii_id(value) is None:
        raise ValueError(f"dataset ids are whole numbers 1 to {INT32_MAX} in ASCII digits")
    return value


DatasetRef = Annotated[
    str, Path(description="The dataset's id or name"), AfterValidator(_dataset_ref)
]
IndexParam = Annotated[Count32, Path(description="The pair's index, in name order")]


@router.get("")
def list_datasets(session: SessionDep) -> DatasetList:
    return DatasetList(
        items=[
            DatasetSummaryOut.model_validate(dataset)
            for dataset in repository.list_datasets(session)
        ]
    )


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(403, 409))
def register_dataset(body: DatasetCreate, session: SessionDep, settings: SettingsDep) -> DatasetOut:
    """Inspect the folder and register it; 422 with the report when inspection finds errors."""
    return DatasetOut.model_validate(service.register_dataset(session, settings, body))


@router.get("/{id_or_name}", responses=error_responses(404))
def get_dataset(id_or_name: DatasetRef, session: SessionDep) -> DatasetOut:
    """A dataset by id or name, with its inspection report."""
    return DatasetOut.model_validate(repository.get_dataset(session, id_or_name))


@router.patch("/{id_or_name}", responses=error_responses(404))
def patch_dataset(id_or_name: DatasetRef, body: DatasetPatch, session: SessionDep) -> DatasetOut:
    """Change the class colours the dashboard paints masks with."""
    return DatasetOut.model_validate(service.update_dataset(session, id_or_name, body))


@router.get("/{id_or_name}/samples", responses=error_responses(404))
def list_samples(
    id_or_name: DatasetRef,
    session: SessionDep,
    settings: SettingsDep,
    offset: Annotated[Count32, Query()] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_SAMPLES)] = 6,
) -> DatasetSamplesOut:
    """Image/mask pairs in name order, with the URLs of their PNGs."""
    dataset = repository.get_dataset(session, id_or_name)
    pairs = samples.list_samples(dataset, roots=settings.dataset_roots)
    base = f"/api/v1/datasets/{dataset.id}/samples"
    return DatasetSamplesOut(
        total=len(pairs),
        offset=offset,
        items=[
            DatasetSampleOut(
                index=index,
                name=pairs[index].name,
                image_url=f"{base}/{index}/image.png",
                mask_url=f"{base}/{index}/mask.png",
            )
            for index in range(offset, min(offset + limit, len(pairs)))
        ],
    )


@router.get("/{id_or_name}/samples/{index}/image.png", response_class=Response, responses=_PNG)
def sample_image(
    id_or_name: DatasetRef,
    index: IndexParam,
    session: SessionDep,
    settings: SettingsDep,
    size: SideParam = 256,
) -> Response:
    """The sample's image as an 8-bit PNG (16-bit and float images stretched to their range)."""
    dataset = repository.get_dataset(session, id_or_name)
    png = samples.image_png(dataset, index, size, roots=settings.dataset_roots)
    return Response(png, media_type="image/png")


@router.get("/{id_or_name}/samples/{index}/mask.png", response_class=Response, responses=_PNG)
def sample_mask(
    id_or_name: DatasetRef,
    index: IndexParam,
    session: SessionDep,
    settings: SettingsDep,
    size: SideParam = 256,
) -> Response:
    """The sample's mask decoded with the dataset's encoding: a grey PNG of uint8 class indices
    (255 = ignored), to be coloured with the dataset's `class_colors`."""
    dataset = repository.get_dataset(session, id_or_name)
    png = samples.mask_png(dataset, index, size, roots=settings.dataset_roots)
    return Response(png, media_type="image/png")
