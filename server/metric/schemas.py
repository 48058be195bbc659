"""Request and response bodies of the metrics endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from server.bounds import INT32_MAX, NoNul

MAX_KEY_LENGTH = 200
MAX_STEP = 2**62


class PointIn(BaseModel):
    """One metric value; `epoch` is optional (per-step metrics)."""

    model_config = ConfigDict(extra="forbid")

    key: Annotated[str, Field(min_length=1, max_length=MAX_KEY_LENGTH), NoNul]
    step: Annotated[int, Field(ge=0, le=MAX_STEP)]
    value: Annotated[float, Field(allow_inf_nan=False)]
    epoch: Annotated[int | None, Field(ge=0, le=INT32_MAX)] = None

    @field_validator("key")
    @classmethod
    def _no_outer_space(cls, key: str) -> str:
        if key != key.strip():
            raise ValueError("keys must not start or end with whitespace")
        return key


class PointsIn(BaseModel):
    """A batch of points for one run (at most `MAX_POINTS_PER_CALL`, see the service)."""

    model_config = ConfigDict(extra="forbid")

    points: list[PointIn]


class IngestOut(BaseModel):
    """What an ingest call stored."""

    written: int = Field(description="Points stored after merging duplicates in the batch")
    new: int = Field(description="Points that did not exist before (the rest were replays)")
    keys: list[str]


class LastPoint(BaseModel):
    step: int
    value: float


class SeriesOut(BaseModel):
    """One key: parallel step/value lists (maybe downsampled), and the full series' min/max/last."""

    step: list[int]
    value: list[float]
    min: float
    max: float
    last: LastPoint
    count: int = Field(description="Points in the series before downsampling")
    downsampled: bool


class MetricsOut(BaseModel):
    series: dict[str, SeriesOut]


class RunSeriesOut(BaseModel):
    run_id: int
    series: dict[str, SeriesOut]


class RunsSeriesOut(BaseModel):
    """Several runs' series, in the order the run ids were given."""

    items: list[RunSeriesOut]


class RunValuesOut(BaseModel):
    run_id: int
    epoch: int | None = Field(description="The epoch read (null: the run has no such epoch)")
    values: dict[str, float] = Field(description="Each key's value at the end of that epoch")


class ValuesAtOut(BaseModel):
    """Several runs' values at one epoch, in the order the run ids were given."""

    items: list[RunValuesOut]
