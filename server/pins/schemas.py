"""Bodies of the pinned-images endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from trainer.config import MAX_PINNED_IMAGES


class PinnedImageOut(BaseModel):
    index: int = Field(description="The image's position in the run's validation set")
    name: str
    pinned_by: str | None
    pinned_at: datetime


class PinnedImagesOut(BaseModel):
    images: list[PinnedImageOut] = Field(description="In the order they were pinned")
    max_pinned: int = Field(MAX_PINNED_IMAGES, description="How many a run may have")
