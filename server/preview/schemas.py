"""Response bodies of the previews, checkpoints and logs endpoints."""

from __future__ import annotations

from pydantic import BaseModel


class PreviewSampleOut(BaseModel):
    sample_index: int
    name: str
    image_url: str
    truth_url: str
    prediction_url: str


class PreviewsOut(BaseModel):
    epochs: list[int]
    epoch: int | None
    samples: list[PreviewSampleOut]


class CheckpointOut(BaseModel):
    kind: str
    epoch: int
    metric: float | None
    size_bytes: int
    url: str


class CheckpointsOut(BaseModel):
    checkpoints: list[CheckpointOut]


class LogOut(BaseModel):
    lines: list[str]
