"""TrainConfig: the training contract shared by the CLI, the API, the worker and the browser form.

Torch-free on purpose: the server validates configs with it and renders its JSON schema as a form.
Every field carries a `group` (data, model, optimisation, augmentation, advanced) for that form.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

ModelName = Literal[
    "unet", "unet++", "vgg16-unet", "resnet18-unet", "resnet34-unet", "resnet50-unet"
]
MODEL_NAMES: tuple[str, ...] = get_args(ModelName)
ENCODER_MODELS: tuple[str, ...] = ("vgg16-unet", "resnet18-unet", "resnet34-unet", "resnet50-unet")
"""Models with a classification-network encoder: they take `encoder_weights`, can freeze it
(`freeze_encoder_epochs`) and train it at its own rate (`encoder_lr_multiplier`)."""
LossName = Literal["ce", "bce", "dice", "ce+dice", "bce+dice", "focal", "lovasz"]
LOSS_NAMES: tuple[str, ...] = ("ce", "bce", "dice", "ce+dice", "bce+dice", "focal", "lovasz")
OptimizerName = Literal["adam", "adamw", "sgd", "rmsprop"]
SchedulerName = Literal["constant", "step", "multistep", "cosine", "poly", "plateau"]
AugmentPreset = Literal["none", "light", "medium", "strong"]
AmpMode = Literal["off", "bf16", "fp16"]
LayoutName = Literal["auto", "images-masks", "voc", "class-folders"]
Normalization = Literal["unit", "imagenet"]
Upsampling = Literal["bilinear", "transpose"]
LrScaling = Literal["none", "linear", "sqrt"]

MAX_CLASSES = 254
"""Class indices travel as uint8 with 255 reserved for 'ignore'."""

IGNORE_INDEX = 255
"""Class index of pixels that count neither in the loss nor in the metrics."""

MAX_EPOCHS = 100_000
"""Also the bound of every count of epochs (warm-up, patience, milestones)."""
MAX_SEED = 2**32 - 1
"""numpy's legacy seeding takes 32 bits; torch's generators are seeded from a multiple."""
MAX_GPUS = 64
"""Processes (GPUs) one run may train on."""
MAX_PREVIEW_WORST = 16
"""Worst validation images previewed each epoch, at most (`preview_worst`)."""
MAX_PINNED_IMAGES = 16
"""Validation images a user may pin on one run (each previewed every epoch)."""
MAX_PATH = 4096
MAX_NAME = 200
"""Class names and metric keys (`monitor`), as long as the server stores them."""
MAX_ERROR_ITEMS = 50
"""Problems `describe_validation_error` lists before counting the rest."""


def _group(name: str) -> dict[str, Any]:
    return {"group": name}


class AugmentStep(BaseModel):
    """One albumentations transform by class name, e.g. `{"name": "HorizontalFlip", "p": 0.5}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[
        str,
        Field(pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=100, description="Transform class name"),
    ]
    p: Annotated[float, Field(ge=0.0, le=1.0, description="Probability of applying it")] = 0.5
    params: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments of the transform"
    )


class TrainConfig(BaseModel):
    """Everything a training run needs; defaults train something sensible."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        # NaN or infinity would pass every bound (NaN compares false) and cannot be stored as JSON.
        allow_inf_nan=False,
        title="TrainConfig",
        json_schema_extra={"groups": ["data", "model", "optimisation", "augmentation", "advanced"]},
    )

    # --- data -------------------------------------------------------------------------------
    dataset: str = Field(
        description="Dataset folder; its layout (images/masks, Pascal VOC or one mask folder per "
        "class) is detected",
        min_length=1,
        max_length=MAX_PATH,
        json_schema_extra=_group("data"),
    )
    layout: LayoutName = Field(
        "auto", description="Dataset layout; 'auto' detects it", json_schema_extra=_group("data")
    )
    mask_suffix: str | None = Field(
        None,
        max_length=100,
        description="Suffix of mask file stems, e.g. '_mask' (Carvana); detected when omitted",
        json_schema_extra=_group("data"),
    )
    num_classes: int | None = Field(
        None,
        ge=2,
        le=MAX_CLASSES,
        description="Number of classes including background; inferred from the masks when omitted",
        json_schema_extra=_group("data"),
    )
    class_names: list[Annotated[str, Field(max_length=MAX_NAME)]] | None = Field(
        None,
        max_length=MAX_CLASSES,
        description="Class names in index order; read from the dataset's classes file when omitted",
        json_schema_extra=_group("data"),
    )
    in_channels: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Image channels; inferred from the images when omitted",
        json_schema_extra=_group("data"),
    )
    image_size: tuple[int, int] | None = Field(
        None,
        description="Resize every image to [height, width] (one number for a square); "
        "omit to keep the native size times `scale`",
        json_schema_extra=_group("data"),
    )
    scale: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="Downscaling factor used when image_size is omitted (Pytorch-UNet's --scale)",
        json_schema_extra=_group("data"),
    )
    mask_ignore_value: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Raw mask value that marks pixels to ignore (Pascal VOC uses 255 by default)",
        json_schema_extra=_group("data"),
    )
    val_fraction: float = Field(
        0.2,
        gt=0.0,
        lt=1.0,
        description="Share of samples held out for validation when the dataset defines no split",
        json_schema_extra=_group("data"),
    )
    normalization: Normalization = Field(
        "unit",
        description="'unit' scales pixels to [0, 1]; 'imagenet' also applies ImageNet mean/std",
        json_schema_extra=_group("data"),
    )

    # --- model ------------------------------------------------------------------------------
    model: ModelName = Field("unet", description="Architecture", json_schema_extra=_group("model"))
    base_channels: int = Field(
        32,
        ge=4,
        le=256,
        description="Width of the first encoder stage; doubles at every level (64 = original UNet)",
        json_schema_extra=_group("model"),
    )
    depth: int = Field(
        4,
        ge=1,
        le=6,
        description="Number of down-sampling steps (unet, unet++); the encoder models' depth "
        "is their encoder's (vgg16-unet 4, resnet*-unet 5)",
        json_schema_extra=_group("model"),
    )
    upsampling: Upsampling = Field(
        "bilinear",
        description="Decoder up-sampling: bilinear interpolation or transposed convolution",
        json_schema_extra=_group("model"),
    )
    deep_supervision: bool = Field(
        False,
        description="unet++ only: average the loss over every nested output head",
        json_schema_extra=_group("model"),
    )
    encoder_weights: str | None = Field(
        None,
        max_length=MAX_PATH,
        description="vgg16-unet and resnet*-unet: local file with the encoder's ImageNet weights "
        "(never downloaded): torchvision's vgg16_bn or resnet18/34/50 file, or timm's "
        "resnet18/34/50; its classifier is ignored and the first convolution adapted to "
        "in_channels",
        json_schema_extra=_group("model"),
    )
    init_from: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_PATH,
        description="Fine-tune: start from the weights of a local checkpoint (best.pt, last.pt) or "
        "state-dict file, tensor by tensor where names and shapes match (a head for another "
        "number of classes starts fresh); ignored when resuming",
        json_schema_extra=_group("model"),
    )

    # --- optimisation -----------------------------------------------------------------------
    epochs: int = Field(
        20, ge=1, le=MAX_EPOCHS, description="Epochs", json_schema_extra=_group("optimisation")
    )
    batch_size: int = Field(
        8,
        ge=1,
        le=4096,
        description="Images per batch, per process",
        json_schema_extra=_group("optimisation"),
    )
    learning_rate: float = Field(
        1e-3,
        gt=0.0,
        le=10.0,
        description="Peak learning rate",
        json_schema_extra=_group("optimisation"),
    )
    lr_scaling: LrScaling = Field(
        "none",
        description="Scale the whole learning-rate curve (learning_rate and min_lr) with the "
        "effective batch: by factor = processes x grad_accum_steps (linear) or by its square "
        "root (sqrt); none keeps the rates as given",
        json_schema_extra=_group("optimisation"),
    )
    optimizer: OptimizerName = Field(
        "adamw", description="Optimizer", json_schema_extra=_group("optimisation")
    )
    weight_decay: float = Field(
        1e-4, ge=0.0, le=1.0, description="Weight decay", json_schema_extra=_group("optimisation")
    )
    momentum: float = Field(
        0.9,
        ge=0.0,
        lt=1.0,
        description="Momentum (sgd, rmsprop)",
        json_schema_extra=_group("optimisation"),
    )
    nesterov: bool = Field(
        False, description="Nesterov momentum (sgd)", json_schema_extra=_group("optimisation")
    )
    scheduler: SchedulerName = Field(
        "cosine",
        description="Learning-rate schedule, stepped once per epoch",
        json_schema_extra=_group("optimisation"),
    )
    freeze_encoder_epochs: int = Field(
        0,
        ge=0,
        le=MAX_EPOCHS,
        description="vgg16-unet and resnet*-unet: train only the decoder for the first N epochs "
        "(the encoder's weights and BatchNorm statistics stay as loaded), then everything; "
        "refused for models without an encoder and for runs on more than one GPU",
        json_schema_extra=_group("optimisation"),
    )
    encoder_lr_multiplier: float = Field(
        1.0,
        gt=0.0,
        le=100.0,
        description="vgg16-unet and resnet*-unet: the encoder trains at learning_rate times "
        "this (e.g. 0.1 for a pretrained encoder), through warm-up and schedule; refused for "
        "models without an encoder",
        json_schema_extra=_group("optimisation"),
    )
    warmup_epochs: int = Field(
        0,
        ge=0,
        le=MAX_EPOCHS,
        description="Epochs of linear warm-up before the schedule",
        json_schema_extra=_group("optimisation"),
    )
    min_lr: float = Field(
        1e-6,
        ge=0.0,
        description="Lowest rate the decaying schedules reach",
        json_schema_extra=_group("optimisation"),
    )
    step_size: int = Field(
        10,
        ge=1,
        le=MAX_EPOCHS,
        description="step: epochs between decays",
        json_schema_extra=_group("optimisation"),
    )
    milestones: list[Annotated[int, Field(le=MAX_EPOCHS)]] = Field(
        default_factory=lambda: [30, 60],
        max_length=1000,
        description="multistep: epochs at which the rate decays",
        json_schema_extra=_group("optimisation"),
    )
    gamma: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        description="step, multistep and plateau: decay factor",
        json_schema_extra=_group("optimisation"),
    )
    poly_power: float = Field(
        0.9, gt=0.0, description="poly: exponent", json_schema_extra=_group("optimisation")
    )
    plateau_patience: int = Field(
        5,
        ge=0,
        le=MAX_EPOCHS,
        description="plateau: epochs without improvement of `monitor` before decaying",
        json_schema_extra=_group("optimisation"),
    )
    loss: LossName = Field(
        "ce+dice",
        description="Loss; 'bce' variants use one sigmoid output and need exactly 2 classes",
        json_schema_extra=_group("optimisation"),
    )
    dice_weight: float = Field(
        1.0,
        ge=0.0,
        description="Weight of the Dice term in ce+dice and bce+dice",
        json_schema_extra=_group("optimisation"),
    )
    class_weights: list[float] | None = Field(
        None,
        max_length=MAX_CLASSES,
        description="Per-class weights of the cross-entropy terms, one per class",
        json_schema_extra=_group("optimisation"),
    )
    focal_gamma: float = Field(
        2.0,
        ge=0.0,
        description="focal: focusing exponent",
        json_schema_extra=_group("optimisation"),
    )
    grad_clip: float | None = Field(
        1.0,
        gt=0.0,
        description="Clip the gradient norm to this value; omit to disable",
        json_schema_extra=_group("optimisation"),
    )
    grad_accum_steps: int = Field(
        1,
        ge=1,
        le=1024,
        description="Batches whose gradients are accumulated per optimizer step",
        json_schema_extra=_group("optimisation"),
    )
    monitor: str = Field(
        "val/iou",
        max_length=MAX_NAME,
        pattern=r"^(val/[a-z_]+(/.+)?|train/loss)$",
        description="Metric that picks the best checkpoint, drives plateau and early stopping",
        json_schema_extra=_group("optimisation"),
    )
    early_stopping_patience: int | None = Field(
        None,
        ge=1,
        le=MAX_EPOCHS,
        description="Stop after this many epochs without improvement of `monitor`",
        json_schema_extra=_group("optimisation"),
    )
    early_stopping_min_delta: float = Field(
        0.0,
        ge=0.0,
        description="Smallest change of `monitor` that resets the early-stopping patience",
        json_schema_extra=_group("optimisation"),
    )

    # --- augmentation -----------------------------------------------------------------------
    augment: AugmentPreset | Annotated[list[AugmentStep], Field(max_length=100)] = Field(
        "light",
        description="Preset (none; light: flips, rot90; medium: + affine, brightness/contrast, "
        "HSV; strong: + elastic, noise, blur) or an explicit list of albumentations transforms",
        json_schema_extra=_group("augmentation"),
    )

    # --- advanced ---------------------------------------------------------------------------
    seed: int = Field(
        0,
        ge=0,
        le=MAX_SEED,
        description="Seed of the split, the weights and the batches",
        json_schema_extra=_group("advanced"),
    )
    deterministic: bool = Field(
        False,
        description="Use deterministic kernels (slower) for bit-identical reruns",
        json_schema_extra=_group("advanced"),
    )
    amp: AmpMode = Field(
        "off",
        description="Mixed precision: bf16, or fp16 with a gradient scaler (CUDA only)",
        json_schema_extra=_group("advanced"),
    )
    channels_last: bool = Field(
        False,
        description=(
            "Channels-last memory format: can speed up CUDA training with amp; on CPUs "
            "(AVX2, torch 2.13) it trained unet, unet++ and vgg16-unet 0.65-0.75x as fast"
        ),
        json_schema_extra=_group("advanced"),
    )
    compile: bool = Field(
        False,
        description="Compile the model with torch.compile",
        json_schema_extra=_group("advanced"),
    )
    tta: bool = Field(
        False,
        description="Flip test-time augmentation during validation",
        json_schema_extra=_group("advanced"),
    )
    num_workers: int = Field(
        2,
        ge=0,
        le=64,
        description="Data-loading worker processes",
        json_schema_extra=_group("advanced"),
    )
    device: str = Field(
        "auto",
        pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$",
        description="auto, cpu, cuda, cuda:N or mps",
        json_schema_extra=_group("advanced"),
    )
    gpus: int = Field(
        1,
        ge=1,
        le=MAX_GPUS,
        description="Processes the run trains on, one GPU each (CPU processes on a machine "
        "without CUDA); batch_size is per process",
        json_schema_extra=_group("advanced"),
    )
    sync_batchnorm: bool | None = Field(
        None,
        description="Normalise with batch statistics of every process (SyncBatchNorm, CUDA "
        "only); omit to turn it on whenever the run has more than one process on CUDA",
        json_schema_extra=_group("advanced"),
    )
    preview_count: int = Field(
        4,
        ge=0,
        le=32,
        description="Validation images whose predictions are kept every epoch",
        json_schema_extra=_group("advanced"),
    )
    preview_worst: int = Field(
        2,
        ge=0,
        le=MAX_PREVIEW_WORST,
        description="Also keep the predictions of this epoch's N worst validation images by "
        "the monitored score (0: off); images a user pins on the run page are kept too",
        json_schema_extra=_group("advanced"),
    )
    log_every_steps: int = Field(
        0,
        ge=0,
        le=2**31 - 1,
        description="Also report train/loss_step every N optimizer steps (0: off)",
        json_schema_extra=_group("advanced"),
    )

    @field_validator("image_size", mode="before")
    @classmethod
    def _square_size(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            return (value, value)
        return value

    @field_validator("image_size")
    @classmethod
    def _positive_size(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and (min(value) < 8 or max(value) > 16384):
            raise ValueError("each side must be between 8 and 16384 pixels")
        return value

    @field_validator("milestones")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if any(b <= a for a, b in itertools.pairwise(value)) or any(m < 1 for m in value):
            raise ValueError("milestones must be positive epochs in increasing order")
        return value

    @field_validator("class_names")
    @classmethod
    def _unique_names(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if len(set(value)) != len(value) or any(not name.strip() for name in value):
                raise ValueError("class names must be unique and non-empty")
            if len(value) > MAX_CLASSES:
                raise ValueError(f"at most {MAX_CLASSES} classes")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.num_classes is not None:
            for field, values in (
                ("class_names", self.class_names),
                ("class_weights", self.class_weights),
            ):
                if values is not None and len(values) != self.num_classes:
                    raise ValueError(
                        f"{field} has {len(values)} entries but num_classes is {self.num_classes}"
                    )
        if self.loss in ("bce", "bce+dice") and self.num_classes not in (None, 2):
            raise ValueError(
                f"loss '{self.loss}' is binary (one sigmoid output) and needs num_classes 2; "
                "use 'ce', 'ce+dice', 'dice', 'focal' or 'lovasz' for more classes"
            )
        if self.deep_supervision and self.model != "unet++":
            raise ValueError("deep_supervision is only available with model 'unet++'")
        self._check_encoder_options()
        return self

    def _check_encoder_options(self) -> None:
        if self.model not in ENCODER_MODELS:
            used = [
                name
                for name, value in (
                    ("encoder_weights", self.encoder_weights is not None),
                    ("freeze_encoder_epochs", self.freeze_encoder_epochs != 0),
                    ("encoder_lr_multiplier", self.encoder_lr_multiplier != 1.0),
                )
                if value
            ]
            if used:
                verb = "applies" if len(used) == 1 else "apply"
                raise ValueError(
                    f"{', '.join(used)} only {verb} to models with an encoder "
                    f"({', '.join(ENCODER_MODELS)}); model '{self.model}' has none"
                )

    @property
    def monitor_mode(self) -> Literal["min", "max"]:
        """Whether a lower (losses) or higher (scores) value of `monitor` is better."""
        return "min" if self.monitor.endswith("loss") else "max"


class ConfigError(ValueError):
    """A config that cannot be loaded; the message names the key and what is allowed."""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_validation_error(
    error: ValidationError, limit: int = MAX_ERROR_ITEMS
) -> list[dict[str, str]]:
    """Turn pydantic's errors into `{field, message}` items that name the allowed values.

    At most `limit` items, then one that counts the rest, with field names and quoted values
    cut short: a config with 100,000 unknown keys is described in a few kilobytes.
    """
    details = error.errors(include_url=False)
    items: list[dict[str, str]] = []
    for detail in details[:limit]:
        field = _cut(".".join(str(part) for part in detail["loc"]) or "config", MAX_NAME)
        message = detail["msg"]
        if detail["type"] == "extra_forbidden":
            message = (
                f"unknown key; allowed keys are: {', '.join(sorted(TrainConfig.model_fields))}"
            )
        elif detail["type"] == "literal_error":
            expected = detail.get("ctx", {}).get("expected", "")
            message = f"got {_cut(repr(detail.get('input')), 80)}; allowed values are {expected}"
        elif detail["type"] == "missing":
            message = "this key is required"
        elif detail["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        items.append({"field": field, "message": message})
    if len(details) > limit:
        items.append(
            {"field": "config", "message": f"and {len(details) - limit} more problems not listed"}
        )
    return items


def validate_config(data: Mapping[str, Any]) -> TrainConfig:
    """Build a TrainConfig, raising ConfigError with one line per invalid key."""
    try:
        return TrainConfig.model_validate(dict(data))
    except ValidationError as error:
        lines = [f"{item['field']}: {item['message']}" for item in describe_validation_error(error)]
        raise ConfigError("invalid training config:\n  " + "\n  ".join(lines)) from error


def parse_override(assignment: str) -> tuple[str, Any]:
    """Split `key=value`, reading the value as YAML so numbers, lists and nulls keep their type."""
    key, sep, raw = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {assignment!r} must look like key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        raise ConfigError(f"override {assignment!r}: cannot read value: {error}") from error
    return key, value


def apply_overrides(data: Mapping[str, Any], assignments: Iterable[str]) -> dict[str, Any]:
    """Return a copy of `data` with each `key=value` applied on top."""
    merged = dict(data)
    for assignment in assignments:
        key, value = parse_override(assignment)
        merged[key] = value
    return merged


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML or JSON mapping from `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from error
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ConfigError(
            f"config file {path} is not valid {path.suffix[1:] or 'YAML'}: {error}"
        ) from error
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return data


def load_config(path: Path | None, overrides: Iterable[str] = ()) -> TrainConfig:
    """Load a config file (YAML or JSON), apply `key=value` overrides and validate."""
    data = read_config_file(path) if path is not None else {}
    return validate_config(apply_overrides(data, overrides))


def config_json_schema() -> dict[str, Any]:
    """The JSON schema of TrainConfig; the browser form is generated from it."""
    return TrainConfig.model_json_schema()
