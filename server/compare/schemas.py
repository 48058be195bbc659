"""Response bodies of the compare endpoints."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from server.preview.schemas import PreviewsOut
from server.run.schemas import MetricSummaryOut, RunSummaryOut


class CompareRunOut(RunSummaryOut):
    """A run as the compare page needs it: its summary (as in the runs list), what it was
    trained with, and the last value and range of each of its metric keys. The rest of a run
    (lineage, environment, traceback) is in `GET /api/v1/runs/{id}`."""

    config: dict[str, Any] | None
    params: dict[str, Any] | None
    dataset_path: str | None
    class_names: list[str] | None
    metrics: dict[str, MetricSummaryOut]


class RunPreviewsOut(PreviewsOut):
    """A run's epochs with previews and its samples at the epoch shown for the one asked for."""

    run_id: int


class ComparePreviewsOut(BaseModel):
    """The runs asked for, in the order given, and the ids that name no run."""

    items: list[RunPreviewsOut]
    missing: list[int] = Field(description="Ids asked for that name no run, in the order given")


class CompareRunsOut(BaseModel):
    """The runs asked for, in the order given, and the ids that name no run."""

    items: list[CompareRunOut]
    missing: list[int] = Field(description="Ids asked for that name no run, in the order given")
