"""Bodies of the validation-detail endpoints: an epoch's confusion matrix and per-image counts
in, and the matrix, the images sorted by score and one image's trend out."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from server.bounds import NoNul

MAX_CLASSES = 1000
MAX_IMAGES = 200_000
MAX_IMAGE_NAME = 500
ClassName = Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul]
ImageName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_IMAGE_NAME), NoNul]
Matrix = list[list[int]]

SortKey = Literal["iou", "dice", "pixels_wrong", "name"]
SORT_KEYS: tuple[str, ...] = ("iou", "dice", "pixels_wrong", "name")
Order = Literal["asc", "desc"]


class ImagesIn(BaseModel):
    """Every validation image's pixel counts per class, rows in `names` order (N x K each)."""

    model_config = ConfigDict(extra="forbid")

    names: list[ImageName] = Field(max_length=MAX_IMAGES, description="Unique image names")
    true_positive: Matrix = Field(description="N x K: truth c and prediction c")
    false_positive: Matrix = Field(description="N x K: prediction c, truth another class")
    false_negative: Matrix = Field(description="N x K: truth c, prediction another class")


class ValidationIn(BaseModel):
    """One epoch's validation: the set's confusion matrix and every image's counts."""

    model_config = ConfigDict(extra="forbid")

    class_names: list[ClassName] = Field(
        min_length=1, max_length=MAX_CLASSES, description="The run's class names, in index order"
    )
    confusion: Matrix = Field(description="K x K pixels, rows truth, columns prediction")
    images: ImagesIn


class ValidationWriteOut(BaseModel):
    epoch: int
    images: int
    classes: int
    replaced: bool = Field(description="True when the epoch was stored before (a replay)")


class ValidationEpochsOut(BaseModel):
    epochs: list[int] = Field(description="Epochs with stored validation detail (empty: none yet)")
    images: int = Field(description="Images in the run's validation set (0 before the first)")


class ConfusionOut(BaseModel):
    epoch: int
    epochs: list[int] = Field(description="Every epoch with a stored confusion matrix")
    class_names: list[str]
    matrix: Matrix = Field(description="Pixels by truth (row) and prediction (column)")


class ClassScoreOut(BaseModel):
    iou: float
    dice: float


class ThenOut(BaseModel):
    """The image's scores at the `worse_than` epoch."""

    epoch: int
    iou: float
    dice: float


class ImageOut(BaseModel):
    index: int = Field(description="The image's position in the validation set")
    name: str
    iou: float = Field(description="Mean IoU over its present foreground classes (1.0: none)")
    dice: float
    pixels_wrong: int
    pixels: int = Field(description="Labelled (not ignored) pixels")
    classes_present: list[str] = Field(description="Classes in the image's truth")
    per_class: dict[str, ClassScoreOut] = Field(
        description="IoU and Dice of each class in the image's truth or prediction"
    )
    then: ThenOut | None = Field(description="Scores at the `worse_than` epoch (null without)")
    predicted_epochs: list[int] = Field(
        default_factory=list,
        description="Epochs of the checkpoints a succeeded predict_image job predicted the image "
        "from (its result is there to show without asking a worker again)",
    )


class ImagesOut(BaseModel):
    epoch: int
    epochs: list[int]
    class_names: list[str]
    total: int = Field(description="Images that pass the filters")
    items: list[ImageOut]


class TrendPointOut(BaseModel):
    epoch: int
    iou: float
    dice: float
    pixels_wrong: int


class TrendOut(BaseModel):
    index: int
    name: str
    points: list[TrendPointOut]
