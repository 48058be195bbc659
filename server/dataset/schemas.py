"""Request and response bodies of the datasets endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from server.bounds import NoNul, ServerPath

DatasetName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
HexColor = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")]
ClassName = Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul]
MAX_CLASSES = 254


class DatasetCreate(BaseModel):
    """Register a folder under one of the dataset roots; it is inspected first."""

    model_config = ConfigDict(extra="forbid")

    name: DatasetName = Field(description="Letters, digits, '.', '_' and '-'; runs refer to it")
    path: Annotated[str, NoNul, ServerPath] = Field(
        min_length=1,
        max_length=4096,
        description="Server-side folder: absolute, or relative to a dataset root",
    )
    layout: Literal["auto", "images-masks", "voc", "class-folders"] = "auto"
    mask_suffix: Annotated[str, NoNul] | None = Field(None, max_length=100)
    num_classes: int | None = Field(None, ge=2, le=MAX_CLASSES)
    class_names: list[ClassName] | None = Field(None, max_length=MAX_CLASSES)
    mask_ignore_value: int | None = Field(None, ge=0, le=65535)
    class_colors: list[HexColor] | None = Field(
        None, max_length=MAX_CLASSES, description="One '#rrggbb' per class; default a palette"
    )


class DatasetPatch(BaseModel):
    """Editable display settings."""

    model_config = ConfigDict(extra="forbid")

    class_colors: list[HexColor] | None = Field(None, max_length=MAX_CLASSES)


class DatasetSummaryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    path: str
    layout: str
    num_classes: int
    num_pairs: int
    class_names: list[str]
    class_colors: list[str]
    created_at: datetime
    updated_at: datetime


class DatasetOut(DatasetSummaryOut):
    report: dict[str, Any] = Field(description="The last inspection report")


class DatasetList(BaseModel):
    items: list[DatasetSummaryOut]


class DatasetSampleOut(BaseModel):
    """One image/mask pair; the mask PNG holds class indices (255 = ignored) to colour."""

    index: int
    name: str
    image_url: str
    mask_url: str


class DatasetSamplesOut(BaseModel):
    total: int = Field(description="Image/mask pairs in the dataset")
    offset: int
    items: list[DatasetSampleOut]
