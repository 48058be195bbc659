"""Bodies of the endpoints a tracking client reports through."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from server.bounds import INT32_MAX, NoNul
from server.run.schemas import EnvironmentOut, RunInfoOut

ClassName = Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul]
LogLine = Annotated[str, StringConstraints(max_length=4000), NoNul]
MAX_LOG_LINES_PER_CALL = 1000
MAX_PREVIEW_FILE_BYTES = 16 * 1024 * 1024
MAX_PREVIEW_SIDE = 4096
MAX_SAMPLE_INDEX = INT32_MAX
"""A sample's index is its position in the validation set (the worst or a pinned image may be
any of them)."""
PREVIEW_REASONS_PATTERN = r"^(fixed|pinned|worst)(,(fixed|pinned|worst)){0,2}$"


class TrackedInfo(BaseModel):
    """What the trainer resolved before epoch 1, as a worker reports it."""

    model_config = ConfigDict(extra="forbid")

    class_names: list[ClassName] | None = Field(None, max_length=1000)
    epochs_planned: int | None = Field(None, ge=1, le=100_000)
    device: Annotated[str, StringConstraints(max_length=64), NoNul] | None = None
    run_info: RunInfoOut | None = None
    environment: EnvironmentOut | None = None


class HeartbeatOut(BaseModel):
    status: str
    stop_requested: bool = Field(
        description="True once the run is being cancelled or has ended: the tracker stops"
    )
    pinned_images: list[int] = Field(
        default_factory=list,
        description="Validation images (positions in the set) users pinned on the run: the "
        "tracker previews them from its next epoch on",
    )


class LogsIn(BaseModel):
    """Lines numbered `first_line`, `first_line + 1`, ... of the tracker's log."""

    model_config = ConfigDict(extra="forbid")

    first_line: int = Field(ge=0, le=INT32_MAX)
    lines: list[LogLine] = Field(max_length=MAX_LOG_LINES_PER_CALL)


class LogsOut(BaseModel):
    log_lines: int = Field(description="Lines the server holds; send the next from here")


class PreviewOut(BaseModel):
    epoch: int
    sample_index: int
