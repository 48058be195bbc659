"""Job request and response bodies: evaluate, predict, export and predict_image, told apart by
`kind`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from server.bounds import INT32_MAX, Count32, Id32, ServerPath, Text, text_problem

Checkpoint = Literal["best", "last"]
InputsId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
MAX_DATASET_NAME = 100
DatasetName = Annotated[Text, StringConstraints(min_length=1, max_length=MAX_DATASET_NAME)]
DATASET_REFERENCE = (
    f"give a registered dataset's id (1 to {INT32_MAX}) or its name (1 to {MAX_DATASET_NAME} "
    "characters)"
)


def _dataset_reference(value: object) -> object:
    """Refuse a `dataset` that is neither an id nor a name with one message, instead of one
    message for each member of the union (naming pydantic's internal validators)."""
    if value is None:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= INT32_MAX:
        return value
    if isinstance(value, str) and 1 <= len(value) <= MAX_DATASET_NAME:
        problem = text_problem(value)
        if problem is None:
            return value
        raise ValueError(problem)
    raise ValueError(f"{DATASET_REFERENCE}, not {str(value)[:40]!r}")


FolderPath = Annotated[str, StringConstraints(min_length=1, max_length=4096), ServerPath]


class EvaluateJobCreate(BaseModel):
    """Score a checkpoint on a split of the run's dataset, or of another registered dataset
    with the same classes."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["evaluate"]
    checkpoint: Checkpoint = "best"
    dataset: Annotated[Id32 | DatasetName | None, BeforeValidator(_dataset_reference)] = Field(
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
    folder: FolderPath | None = Field(
        None,
        description="A folder inside the dataset roots. A dataset's folder gives its image "
        "folder (`images/`, VOC's `JPEGImages/`), never its masks; the job's parameters name "
        "it as `images_folder`",
    )

    @model_validator(mode="after")
    def _one_source(self) -> PredictJobCreate:
        if (self.upload is None) == (self.folder is None):
            raise ValueError("give the images as either `upload` or `folder` (exactly one)")
        return self


class PredictImageJobCreate(BaseModel):
    """Predict one validation image of the run (its index in the run's Images view) from the
    checkpoint nearest `epoch`, for a run page that saved no preview of it there."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["predict_image"]
    image: Count32 = Field(description="The validation image's index (`GET .../images`)")
    epoch: Count32 | None = Field(
        None,
        description="The epoch wanted; the run's checkpoint (best or last) nearest it is used "
        "(default: the newest checkpoint)",
    )


JobCreate = Annotated[
    EvaluateJobCreate | ExportJobCreate | PredictJobCreate | PredictImageJobCreate,
    Field(discriminator="kind"),
]
JobKind = Literal["evaluate", "predict", "export", "predict_image"]
JobStatus = Literal["queued", "running", "cancelling", "succeeded", "failed", "cancelled"]
PENDING_STATUSES: tuple[str, ...] = ("queued", "running", "cancelling")
"""A job in one of these has not ended yet."""


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
    `class_counts` and `images` (name, mask and overlay file names); of a predict_image:
    `epoch` (the epoch of the checkpoint's weights really used), `checkpoint`, `image`,
    `name`, `width`, `height`, `classes_present` and the `image_url`, `truth_url` and
    `prediction_url` of its PNGs (the previews' format: the image, and truth and prediction as
    class-index masks).

    `status`: `queued`, `running`, `cancelling` (its worker is stopping it), then
    `succeeded`, `failed` or `cancelled`.
    """

    id: int
    run_id: int
    kind: JobKind
    status: JobStatus
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
    reused: bool = Field(
        False,
        description="A predict_image answered by an earlier job of the same image and "
        "checkpoint (queued, running or succeeded) instead of a new one",
    )


class JobList(BaseModel):
    items: list[JobOut]


class PredictInputsOut(BaseModel):
    """Images stored to predict on: pass `id` as a predict job's `upload`."""

    id: str
    files: list[str]
    size_bytes: int
