"""Job request and response bodies: evaluate, predict and export, told apart by `kind`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from server.bounds import Id32, ServerPath, Text

Checkpoint = Literal["best", "last"]
InputsId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
DatasetName = Annotated[Text, StringConstraints(min_length=1, max_length=100)]
FolderPath = Annotated[str, StringConstraints(min_length=1, max_length=4096), ServerPath]


class EvaluateJobCreate(BaseModel):
    """Score a checkpoint on a split of the run's dataset, or of another registered dataset
    with the same classes."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["evaluate"]
    checkpoint: Checkpoint = "best"
    dataset: Id32 | DatasetName | None = Field(
        None, description="A registered dataset's id or name; the run's own dataset when absent"
    )
    split: Literal["test", "val"] = Field(
        "test", description="`test`: the dataset's test split; `val`: the part training used"
    )


class ExportJobCreate(BaseModel):
    """Export a checkpoint's model, checked against PyTorch on two input sizes."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["export"]
    checkpoint: Checkpoint = "best"
    format: Literal["onnx", "torchscript"] = "onnx"


class PredictJobCreate(BaseModel):
    """Predict masks for uploaded images (`upload`) or a folder inside the dataset roots."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["predict"]
    checkpoint: Checkpoint = "best"
    tta: bool = Field(False, description="Average over horizontal and vertical flips")
    upload: InputsId | None = Field(
        None, description="The `id` of a `POST /api/v1/runs/{run_id}/predict-inputs`"
    )
    folder: FolderPath | None = Field(None, description="A folder inside the dataset roots")

    @model_validator(mode="after")
    def _one_source(self) -> PredictJobCreate:
        if (self.upload is None) == (self.folder is None):
            raise ValueError("give the images as either `upload` or `folder` (exactly one)")
        return self


JobCreate = Annotated[
    EvaluateJobCreate | ExportJobCreate | PredictJobCreate, Field(discriminator="kind")
]


class JobFileOut(BaseModel):
    """One output file of a job and where to download it."""

    name: str
    size_bytes: int
    url: str


class JobOut(BaseModel):
    """A job, its parameters as accepted, and once it ended its result and files.

    `result` of an evaluation: `epoch`, `split`, `dataset`, `num_images`, `metrics` (keys
    `test/...` or `val/...`), `per_class` rows and `confusion_matrix`; of an export: `format`,
    `size_bytes` and `max_abs_diff` per checked input size; of a prediction: `count`,
    `class_counts` and `images` (name, mask and overlay file names).
    """

    id: int
    run_id: int
    kind: Literal["evaluate", "predict", "export"]
    status: Literal["queued", "running", "succeeded", "failed"]
    parameters: dict[str, Any]
    result: dict[str, Any] | None
    files: list[JobFileOut]
    reason: str | None
    details: str | None
    worker: str | None
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobList(BaseModel):
    items: list[JobOut]


class PredictInputsOut(BaseModel):
    """Images stored to predict on: pass `id` as a predict job's `upload`."""

    id: str
    files: list[str]
    size_bytes: int
