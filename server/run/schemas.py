"""Request and response bodies of the runs endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from server.bounds import Count64, NoNul
from server.models import Run

Tag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^,\s]"),
    NoNul,
]
QueueName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
RunName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul
]
Notes = Annotated[str, StringConstraints(max_length=100_000), NoNul]
FinalStatus = Literal["succeeded", "failed", "cancelled"]
ClientKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
ShortText = Annotated[str, StringConstraints(max_length=200), NoNul]
LongText = Annotated[str, StringConstraints(max_length=4000), NoNul]


class EnvironmentOut(BaseModel):
    """Where and with what a run trained; every field is optional."""

    model_config = ConfigDict(extra="forbid")

    origin: Literal["worker", "cli", "script"] | None = Field(
        None, description="A segtrack worker, `segtrack train --server`, or a script"
    )
    host: ShortText | None = None
    user: ShortText | None = None
    pid: int | None = Field(None, ge=0, le=2**31 - 1)
    command: LongText | None = Field(None, description="The command line")
    cwd: LongText | None = Field(None, description="The working folder")
    python: ShortText | None = None
    platform: ShortText | None = None
    segtrack: ShortText | None = None
    torch: ShortText | None = None
    cuda: ShortText | None = None
    cudnn: ShortText | None = None
    gpus: list[ShortText] | None = Field(None, max_length=64, description="GPU names")
    git_commit: Annotated[str, StringConstraints(max_length=64), NoNul] | None = None
    git_dirty: bool | None = Field(None, description="Uncommitted changes in the working tree")


class RunCreate(BaseModel):
    """A training run (`config`) to queue, or an `external` run a script logs into."""

    model_config = ConfigDict(extra="forbid")

    name: RunName | None = None
    config: dict[str, Any] | None = Field(
        None,
        description="TrainConfig keys (see `segtrack config-schema`); `dataset` may be a "
        "registered dataset's name",
    )
    external: bool = Field(False, description="A run trained elsewhere that logs metrics here")
    params: dict[str, Any] | None = Field(None, description="Free-form parameters (external runs)")
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    notes: Notes = ""
    priority: int = Field(0, ge=0, le=9, description="0-9; higher runs first")
    queue: QueueName | None = Field(
        None, description="Worker queue; default SEGTRACK_DEFAULT_QUEUE"
    )
    max_retries: int = Field(
        0, ge=0, le=10, description="Times a run whose worker died is requeued to resume"
    )
    client_key: ClientKey | None = Field(
        None,
        description="External runs: a key the client chose (offline too); creating a run with "
        "a key that exists answers 200 with that run instead of making another",
    )
    environment: EnvironmentOut | None = Field(None, description="External runs: where it ran")
    heartbeat_timeout_s: int | None = Field(
        None,
        ge=10,
        le=86_400,
        description="External runs whose tracker sends heartbeats: silence after which the run "
        "fails as lost",
    )
    resumed_from: int | None = Field(
        None, ge=1, le=2**31 - 1, description="External runs: the run whose checkpoint it resumed"
    )
    started_at: datetime | None = Field(
        None, description="External runs: when training began (a run synced later keeps it)"
    )

    @model_validator(mode="after")
    def _config_or_external(self) -> RunCreate:
        if not self.external and self.config is None:
            raise ValueError("give a `config` to train, or `external: true` to log from a script")
        if not self.external and any(
            value is not None
            for value in (
                self.client_key,
                self.environment,
                self.heartbeat_timeout_s,
                self.resumed_from,
                self.started_at,
            )
        ):
            raise ValueError(
                "client_key, environment, heartbeat_timeout_s, resumed_from and started_at are "
                "for external runs (`external: true`)"
            )
        return self


class RunPatch(BaseModel):
    """Editable fields; `status` only for external runs (to finish them); `priority` and `queue`
    only while the run is queued."""

    model_config = ConfigDict(extra="forbid")

    name: RunName | None = None
    tags: list[Tag] | None = Field(None, max_length=50)
    notes: Notes | None = None
    status: FinalStatus | None = None
    failure_reason: Annotated[str, StringConstraints(max_length=1000), NoNul] | None = None
    priority: int | None = Field(
        None, ge=0, le=9, description="0-9; higher runs first (queued runs only)"
    )
    queue: QueueName | None = Field(
        None, description="Move the run to this worker queue (queued runs only)"
    )


class ResumeRequest(BaseModel):
    """Optionally train on past the planned epochs."""

    model_config = ConfigDict(extra="forbid")

    epochs: int | None = Field(
        None, ge=1, le=100_000, description="Train to this epoch (more than planned extends it)"
    )


class CloneRequest(BaseModel):
    """Config keys to change in the copy, e.g. `{"learning_rate": 0.01}`."""

    model_config = ConfigDict(extra="forbid")

    overrides: dict[str, Any] = Field(default_factory=dict)
    name: RunName | None = None
    tags: list[Tag] | None = Field(None, max_length=50)
    priority: int | None = Field(None, ge=0, le=9)


class MetricSummaryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    last_step: int
    last_value: float
    min_value: float
    max_value: float
    count: int


class RunSummaryOut(BaseModel):
    """A run in lists: everything but the config and the traceback."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    status: str
    external: bool
    tags: list[str]
    priority: int
    queue: str
    gpus: int = Field(description="GPUs (slots of a worker) the run trains on")
    submitted_by: str | None = Field(None, description="Who submitted the run")
    origin: str | None = Field(
        None, description="Where it trained: worker, cli (segtrack train --server) or script"
    )
    host: str | None = Field(None, description="The machine it trained on, when reported")
    dataset_id: int | None
    dataset_name: str | None
    model: str | None
    worker: str | None
    device: str | None
    attempt: int
    max_retries: int
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    duration_s: float | None = Field(description="Seconds from start to finish (or to now)")
    failure_reason: str | None
    epochs_done: int
    epochs_planned: int | None
    best_val_iou: float | None
    best_epoch: int | None
    last_val_iou: float | None
    monitor: str | None
    best_metric: float | None
    sweep_id: int | None = Field(None, description="The sweep that made this run, if one did")
    trial_number: int | None = Field(None, description="Its trial number in that sweep (from 0)")


RawMaskValue = int | list[int]
"""A grey or palette-index value, or an [r, g, b] colour."""


class MaskEncodingOut(BaseModel):
    """How the raw values in the dataset's masks map to classes: `values[i]` is class i."""

    mode: str = Field(description="grey, index (palette PNG), rgb or class-folders")
    values: list[RawMaskValue] = Field(description="The raw mask value of each class, in order")
    ignore_values: list[RawMaskValue] = Field(
        default_factory=list, description="Raw values counted in no loss or metric"
    )


Milliseconds = Annotated[float, Field(ge=0.0, le=1e9, allow_inf_nan=False)]


class ModelCardOut(BaseModel):
    """What the model costs, measured by the trainer on its device right before epoch 1."""

    parameters: Count64 = Field(description="Model parameters")
    trainable_parameters: Count64 = Field(description="Parameters the optimizer updates")
    flops: Count64 | None = Field(
        description="FLOPs of one forward pass of one image at image_size (torch's flop "
        "counter; a multiply-add counts as 2); null when they could not be counted"
    )
    image_size: tuple[
        Annotated[int, Field(ge=1, le=2**20)], Annotated[int, Field(ge=1, le=2**20)]
    ] = Field(description="[height, width] of the measured input")
    in_channels: int = Field(ge=1, le=2**16, description="Channels of the measured input")
    batch_size: int = Field(ge=1, le=2**20, description="The batch of `latency_ms_batch`")
    latency_ms_batch_1: Milliseconds | None = Field(
        description="Milliseconds per forward pass of one image (eval mode, no grad, the "
        "training precision, median after warm-up)"
    )
    latency_ms_batch: Milliseconds | None = Field(
        description="Milliseconds per forward pass of batch_size images"
    )
    images_per_s: float | None = Field(
        ge=0.0, le=1e12, allow_inf_nan=False, description="batch_size / latency_ms_batch"
    )
    device: ShortText = Field(description="Where it was measured, e.g. cuda:0 (NVIDIA H200)")
    precision: ShortText = Field(description="float32, bf16 or fp16")


class RunInfoOut(BaseModel):
    """What the trainer resolved about the data and the model before epoch 1."""

    num_train: int = Field(description="Training images")
    num_val: int = Field(description="Validation images")
    in_channels: int = Field(description="Input channels the model reads")
    start_epoch: int = Field(description="First epoch trained (above 1 when resumed)")
    steps_per_epoch: int = Field(description="Optimizer steps per epoch")
    parameters: int = Field(description="Model parameters")
    mask_encoding: MaskEncodingOut | None = None
    warnings: list[str] = Field(default_factory=list, description="What to check in the data")
    # Left out of the answer while unknown (runs reported before they were kept).
    world_size: int | None = Field(
        None,
        description="Processes training together",
        exclude_if=lambda value: value is None,
    )
    effective_batch_size: int | None = Field(
        None,
        description="Images per optimizer step: batch_size x processes x grad_accum_steps",
        exclude_if=lambda value: value is None,
    )
    model_card: ModelCardOut | None = Field(
        None,
        description="Parameters, FLOPs, latency and images/s on the training device; the "
        "peak training memory is the metric train/peak_memory_mib",
        exclude_if=lambda value: value is None,
    )


class RunRef(BaseModel):
    id: int
    name: str
    status: str


class ChildRef(RunRef):
    relation: Literal["clone", "fine_tune", "resume"]


class LineageOut(BaseModel):
    """The runs this one came from, and the runs made from it."""

    cloned_from: RunRef | None = None
    fine_tuned_from: RunRef | None = None
    resumed_from: RunRef | None = None
    children: list[ChildRef] = Field(default_factory=list)


class RunOut(RunSummaryOut):
    """One run in full, with the last value and range of each of its metric keys."""

    environment: EnvironmentOut | None = None
    heartbeat_timeout_s: int | None = Field(
        None, description="External runs with a heartbeat: seconds of silence before it is lost"
    )
    lineage: LineageOut = Field(default_factory=LineageOut)

    config: dict[str, Any] | None
    params: dict[str, Any] | None
    notes: str
    dataset_path: str | None
    class_names: list[str] | None
    run_info: RunInfoOut | None = Field(
        description="Reported by the trainer when the run starts; null until then"
    )
    resume_requested: bool
    sweep_params: dict[str, Any] | None = Field(
        None, description="The values its sweep chose for the swept keys"
    )
    prune_requested_at: datetime | None = Field(
        None, description="When its sweep asked it to stop at the end of its epoch (pruned)"
    )
    trial_status: str | None = Field(
        None,
        description="Resumed outside its sweep: the status its trial keeps there (e.g. pruned)",
    )
    failure_traceback: str | None
    metrics: dict[str, MetricSummaryOut]
    placement_note: str | None = Field(
        None,
        description="Why a queued run cannot start, e.g. it needs more GPUs than any online "
        "worker of its queue owns; null otherwise",
    )


class RunRowOut(RunSummaryOut):
    """A run in the runs table: its summary and the values of the chosen columns."""

    columns: dict[str, Any] = Field(
        default_factory=dict,
        description="The value of each chosen column (and of `group_by`), keyed by the "
        "column's name as in `RunPage.columns`; null where the run has none",
    )


class GroupOut(BaseModel):
    """One value of `group_by` among the matching runs."""

    value: Any = Field(description="The group's value (null: runs without one)")
    count: int = Field(description="Matching runs with this value")


class RunPage(BaseModel):
    items: list[RunRowOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end"
    )
    columns: list[str] = Field(
        default_factory=list,
        description="The chosen columns (then `group_by`, unless chosen) as the rows' "
        "`columns` name them: the canonical spelling, e.g. `metrics.val/iou` is "
        "`metrics.val/iou.last`",
    )
    group_by: str | None = Field(None, description="The grouping column, when grouped")
    groups: list[GroupOut] | None = Field(
        None,
        description="With `group_by`, on the first page (no cursor): the groups in row order "
        "with their counts (at most 200); null otherwise",
    )


class RunKeysOut(BaseModel):
    """The keys there are, as the runs table's columns and the filter language name them."""

    config: list[str] = Field(description="Config keys: TrainConfig's and the newest runs'")
    params: list[str] = Field(description="Parameters of the newest external runs")
    metrics: list[str] = Field(description="Metric keys any run logged")
    tags: list[str] = Field(description="Keys of key:value tags (`lr` of `lr=1e-3`)")


def duration_s(run: Run, now: datetime) -> float | None:
    """Seconds the run has trained: start to finish, or start to `now` while it runs."""
    if run.started_at is None:
        return None
    end = run.finished_at or now
    return max((end - run.started_at).total_seconds(), 0.0)
