"""Response bodies of the previews, checkpoints and logs endpoints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field

PreviewReasonOut = Literal["fixed", "pinned", "worst"]
PREVIEW_REASONS: tuple[PreviewReasonOut, ...] = ("fixed", "pinned", "worst")


def known_reasons(stored: Sequence[str]) -> list[PreviewReasonOut]:
    """The reasons of a stored preview, in PREVIEW_REASONS order (unknown text left out)."""
    return [reason for reason in PREVIEW_REASONS if reason in stored]


class PreviewSampleOut(BaseModel):
    sample_index: int = Field(description="The image's position in the run's validation set")
    name: str
    reasons: list[PreviewReasonOut] = Field(
        description="Why it is previewed at this epoch: one of the set fixed at the start, "
        "pinned by a user, among the epoch's worst by the monitored score (all that apply)"
    )
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
