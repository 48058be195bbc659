"""Database tables (SQLAlchemy 2 typed declarative). Imported by the worker: no web framework here.

Datetimes are timezone-aware UTC everywhere (`UTCDateTime` restores the zone SQLite drops).
File paths are stored relative to the artifacts root (see `server.artifacts`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

RUN_STATUSES: tuple[str, ...] = (
    "queued",
    "running",
    "cancelling",
    "succeeded",
    "failed",
    "cancelled",
    "pruned",
)
TERMINAL_STATUSES: tuple[str, ...] = ("succeeded", "failed", "cancelled", "pruned")
"""`pruned`: stopped at an epoch end by its sweep's early-termination rule."""
SWEEP_STATUSES: tuple[str, ...] = ("running", "paused", "finished", "cancelled")
SWEEP_METHODS: tuple[str, ...] = ("grid", "random", "bayes")
ROLES: tuple[str, ...] = ("admin", "member", "viewer")
TOKEN_SCOPES: tuple[str, ...] = ("read", "write")
JOB_KINDS: tuple[str, ...] = ("evaluate", "predict", "export", "predict_image")
JOB_STATUSES: tuple[str, ...] = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelling",
    "cancelled",
)

JsonType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias), not BIGINT.
BigIdType = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: segtrack stores timezone-aware UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads this class attribute)
        datetime: UTCDateTime(),
        dict[str, Any]: JsonType,
        list[str]: JsonType,
        float: Double(),
    }


def _in(column: str, values: tuple[str, ...]) -> str:
    return "{} IN ({})".format(column, ", ".join(f"'{value}'" for value in values))


class Dataset(Base):
    """A dataset folder registered by name, with its last inspection report."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    path: Mapped[str] = mapped_column(String(4096))
    layout: Mapped[str] = mapped_column(String(32))
    report: Mapped[dict[str, Any]]
    class_names: Mapped[list[str]]
    class_colors: Mapped[list[str]]
    num_classes: Mapped[int] = mapped_column(Integer)
    num_pairs: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(Base):
    """A training run (queued for a worker) or an external run a script logs into."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        CheckConstraint("priority BETWEEN 0 AND 9", name="priority"),
        Index("ix_runs_created_at_id", "created_at", "id"),
        Index("ix_runs_status_created_at", "status", "created_at"),
        Index("ix_runs_best_val_iou_id", "best_val_iou", "id"),
        Index("ix_runs_queue_order", "status", "priority", "queued_at"),
        # The runs table's filter language answers equality terms with `@>` containment.
        Index(
            "ix_runs_config",
            "config",
            postgresql_using="gin",
            postgresql_ops={"config": "jsonb_path_ops"},
        ),
        Index(
            "ix_runs_params",
            "params",
            postgresql_using="gin",
            postgresql_ops={"params": "jsonb_path_ops"},
        ),
        UniqueConstraint("sweep_id", "trial_number"),
        # Never reuse a deleted run's id on SQLite either: events and swept points refer to it.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    external: Mapped[bool] = mapped_column(Boolean, default=False)
    config: Mapped[dict[str, Any] | None]
    params: Mapped[dict[str, Any] | None]
    notes: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[int] = mapped_column(SmallInteger, default=0)
    queue: Mapped[str] = mapped_column(String(64))
    gpus: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    """Slots (GPUs, or CPU slots on a CPU worker) the run trains on; from its config's `gpus`."""
    dataset_id: Mapped[int | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="SET NULL"), index=True
    )
    dataset_name: Mapped[str | None] = mapped_column(String(200))
    dataset_path: Mapped[str | None] = mapped_column(String(4096))
    model: Mapped[str | None] = mapped_column(String(32), index=True)
    worker: Mapped[str | None] = mapped_column(String(200))
    device: Mapped[str | None] = mapped_column(String(64))
    task_id: Mapped[str | None] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_retries: Mapped[int] = mapped_column(Integer, default=0)
    resume_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    heartbeat_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    queued_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    """When the run's latest message went to the broker (queued runs only)."""
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    failure_reason: Mapped[str | None] = mapped_column(String(1000))
    failure_traceback: Mapped[str | None] = mapped_column(Text)
    epochs_done: Mapped[int] = mapped_column(Integer, default=0)
    epochs_planned: Mapped[int | None] = mapped_column(Integer)
    best_val_iou: Mapped[float | None]
    best_epoch: Mapped[int | None] = mapped_column(Integer)
    last_val_iou: Mapped[float | None]
    monitor: Mapped[str | None] = mapped_column(String(200))
    best_metric: Mapped[float | None]
    class_names: Mapped[list[str] | None]
    run_info: Mapped[dict[str, Any] | None]
    """What the trainer resolved before epoch 1 (`server.run.schemas.RunInfoOut`)."""
    submitted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    submitted_by: Mapped[str | None] = mapped_column(String(100))
    """The submitter's name when the run was created (kept if the account is deleted)."""
    client_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    """The key a tracking client chose when it created the run (possibly offline): creating a
    run with a key that exists returns that run, so a replayed or synced creation adds none."""
    environment: Mapped[dict[str, Any] | None]
    """Where and with what the run trained: host, user, command, Python, segtrack, torch,
    CUDA/cuDNN, GPU names, git commit and dirty flag (`server.run.schemas.EnvironmentOut`)."""
    heartbeat_timeout_s: Mapped[int | None] = mapped_column(Integer)
    """External runs whose tracker sends heartbeats: seconds of silence after which the run is
    failed as lost. None for runs without a heartbeat (workers' runs follow the worker's)."""
    log_lines: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Lines of log an external run's tracker has sent (a replayed batch appends nothing)."""
    cloned_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), index=True
    )
    fine_tuned_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), index=True
    )
    """The run whose checkpoint `init_from` named (`run:<id>`)."""
    resumed_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), index=True
    )
    """The run whose last checkpoint this run continued (a `segtrack train --resume` elsewhere)."""
    sweep_id: Mapped[int | None] = mapped_column(
        ForeignKey("sweeps.id", ondelete="SET NULL"), index=True
    )
    """The sweep that made this run (one of its trials)."""
    trial_number: Mapped[int | None] = mapped_column(Integer)
    """The run's trial number in its sweep, from 0 (Optuna's numbering)."""
    sweep_params: Mapped[dict[str, Any] | None]
    """The swept keys and the values the sweep's sampler chose for them (also in `config`)."""
    prune_requested_at: Mapped[datetime | None]
    """When the sweep's pruner asked the run to stop at the end of its current epoch."""
    trial_status: Mapped[str | None] = mapped_column(String(20))
    """The status the run's trial keeps in its sweep after the run was resumed outside it
    (`pruned`): the sweep counts it so, its sampler is told so, its pruner leaves it alone."""


class Sweep(Base):
    """A hyper-parameter search: a base config, a W&B-style spec (method, metric, parameters,
    early termination) and how many runs it makes, at most `parallel` of them in flight.

    Its runs are its trials (`Run.sweep_id`, `Run.trial_number`); the Optuna study is rebuilt
    from them, so the database is the only state (`server.sweep.controller`).
    """

    __tablename__ = "sweeps"
    __table_args__ = (
        CheckConstraint(_in("status", SWEEP_STATUSES), name="status"),
        CheckConstraint(_in("method", SWEEP_METHODS), name="method"),
        CheckConstraint("goal IN ('maximize', 'minimize')", name="goal"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))
    metric: Mapped[str] = mapped_column(String(200))
    goal: Mapped[str] = mapped_column(String(8))
    spec: Mapped[dict[str, Any]]
    """The spec as accepted: base config, parameters, early termination and the rest."""
    max_runs: Mapped[int] = mapped_column(Integer)
    parallel: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int | None] = mapped_column(BigInteger)
    submitted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    submitted_by: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(String(1000))
    """Why the sweep stopped making runs, when it is not plain (its grid ran out)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None]


class RunTag(Base):
    """One tag of a run; a table of its own so tag filters use an index."""

    __tablename__ = "run_tags"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class Metric(Base):
    """One value of one metric key at one step; (run_id, key, step) is unique so replays upsert.

    No foreign key on `run_id`, on purpose: its per-row check cost a third of the time of a
    10,000-point ingest. Deleting a run deletes its points explicitly, and the reaper sweeps
    points an ingest committed while the run was being deleted (`server.reaper`).
    """

    __tablename__ = "metrics"
    # Values at an epoch (compare) and a run's last epoch read points by epoch.
    __table_args__ = (Index("ix_metrics_run_id_epoch", "run_id", "epoch"),)

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    value: Mapped[float]
    epoch: Mapped[int | None] = mapped_column(Integer)


class MetricSummary(Base):
    """Per run and key: last, min, max and count, kept on ingest so lists never scan `metrics`."""

    __tablename__ = "metric_summaries"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)
    last_step: Mapped[int] = mapped_column(BigInteger)
    last_value: Mapped[float]
    min_value: Mapped[float]
    max_value: Mapped[float]
    count: Mapped[int] = mapped_column(BigInteger)


class MetricRollup(Base):
    """One bucket of a key's points (steps `bucket * width` to `(bucket + 1) * width - 1`) at
    one of a few widths: its first, lowest, highest and last points and how many there are, so
    charts of long series read a bucket instead of every point (`server.metric.rollup`; kept
    on ingest on PostgreSQL)."""

    __tablename__ = "metric_rollups"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    width: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    first_step: Mapped[int] = mapped_column(BigInteger)
    first_value: Mapped[float]
    min_step: Mapped[int] = mapped_column(BigInteger)
    min_value: Mapped[float]
    max_step: Mapped[int] = mapped_column(BigInteger)
    max_value: Mapped[float]
    last_step: Mapped[int] = mapped_column(BigInteger)
    last_value: Mapped[float]


class Preview(Base):
    """One validation sample at one epoch: image, truth and prediction PNG paths."""

    __tablename__ = "previews"
    __table_args__ = (UniqueConstraint("run_id", "epoch", "sample_index"),)

    id: Mapped[int] = mapped_column(BigIdType, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    epoch: Mapped[int] = mapped_column(Integer)
    sample_index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(500))
    image_path: Mapped[str] = mapped_column(String(1000))
    truth_path: Mapped[str] = mapped_column(String(1000))
    prediction_path: Mapped[str] = mapped_column(String(1000))
    reasons: Mapped[list[str]] = mapped_column(
        JsonType, default=lambda: ["fixed"], server_default='["fixed"]'
    )
    """Why the image is previewed at this epoch: "fixed", "pinned", "worst" (all that apply)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PinnedImage(Base):
    """A validation image a user pinned on a run: previewed every epoch from the next one on.

    `image_index` is its position in the run's validation set (as in `previews.sample_index`).
    """

    __tablename__ = "pinned_images"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    image_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    pinned_by: Mapped[str | None] = mapped_column(String(100))
    pinned_at: Mapped[datetime] = mapped_column(default=utcnow)


class ValidationSet(Base):
    """The validation images of a run, named once: every epoch's counts are in this order.

    `image_names` is the JSON list of names, zlib-compressed; `names_digest` its SHA-256, so a
    write compares its names without reading them back.
    """

    __tablename__ = "validation_sets"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    class_names: Mapped[list[str]]
    image_count: Mapped[int] = mapped_column(Integer)
    image_names: Mapped[bytes] = mapped_column(LargeBinary)
    names_digest: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ValidationEpoch(Base):
    """One epoch's validation of a run: the confusion matrix and every image's counts.

    `confusion`: zlib of int64 little-endian (K, K), rows truth, columns prediction. `counts`:
    zlib of (3, N, K) TP, FP, FN little-endian integers of `count_bytes` (4 or 8) each.
    `scores`: uncompressed, one 24-byte record per image (IoU and Dice as float64, pixels wrong
    as int64, little-endian), so one image's trend reads 24 bytes of each epoch (`substr`).
    """

    __tablename__ = "validation_epochs"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    count_bytes: Mapped[int] = mapped_column(SmallInteger)
    confusion: Mapped[bytes] = mapped_column(LargeBinary)
    counts: Mapped[bytes] = mapped_column(LargeBinary)
    scores: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Checkpoint(Base):
    """The best or last checkpoint file of a run."""

    __tablename__ = "checkpoints"
    __table_args__ = (
        CheckConstraint("kind IN ('best', 'last')", name="kind"),
        UniqueConstraint("run_id", "kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    epoch: Mapped[int] = mapped_column(Integer)
    metric: Mapped[float | None]
    path: Mapped[str] = mapped_column(String(1000))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Upload(Base):
    """A file a tracking client sends in pieces (resumable); it becomes a checkpoint (`best`,
    `last`) or a run file once all `size_bytes` arrived and their SHA-256 matched."""

    __tablename__ = "uploads"
    __table_args__ = (Index("ix_uploads_run_id_kind_name", "run_id", "kind", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    received_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    epoch: Mapped[int | None] = mapped_column(Integer)
    metric: Mapped[float | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]


class RunFile(Base):
    """A file a run logged besides its checkpoints (a config, a plot, an exported model)."""

    __tablename__ = "run_files"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(String(1000))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Event(Base):
    """Durable outbox of what changed: event streams resume from it (Last-Event-ID) or poll it.

    `run_id` has no foreign key on purpose: a deleted run's "deleted" event must outlive it.
    """

    __tablename__ = "events"
    # Ids only grow, on SQLite too: streams resume after the last id they saw.
    __table_args__ = (Index("ix_events_run_id_id", "run_id", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigIdType, primary_key=True, autoincrement=True)
    run_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Worker(Base):
    """A worker process that is (or recently was) online; written by the worker itself.

    A worker owns slots: its GPUs, or CPU slots on a host without any. `slots` lists them in
    order, each `{"slot": 0, "gpu": "0" | None, "run_id": 12 | None}` (None: free).
    """

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    device: Mapped[str] = mapped_column(String(64))
    queues: Mapped[list[str]]
    slots: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list, server_default="[]")
    idle_since: Mapped[datetime | None]
    """Since when the worker has had a task thread free to take a message (None while every
    thread trains a run or waits for slots)."""
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class User(Base):
    """An account: `admin` manages users and everything, `member` submits and manages its own
    runs, `viewer` reads. The embedded mode's local user has no password (it signs in by token)."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime | None]


class ApiToken(Base):
    """A named bearer token of a user; only its SHA-256 is stored, the token is shown once."""

    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint(_in("scope", TOKEN_SCOPES), name="scope"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    """The token's first characters, so a user can tell tokens apart."""
    scope: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class BrowserSession(Base):
    """A signed-in browser: the cookie carries a random id whose SHA-256 is stored here, with the
    CSRF token every state-changing request of that browser must send back."""

    __tablename__ = "browser_sessions"

    id: Mapped[int] = mapped_column(BigIdType, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Invite(Base):
    """A one-time link that lets its holder create an account with `role` (the first admin's
    set-up link is one)."""

    __tablename__ = "invites"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class AuditEntry(Base):
    """Who did what destructive or security-relevant thing, when and from where."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigIdType, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(200))
    details: Mapped[dict[str, Any]]
    client: Mapped[str | None] = mapped_column(String(64))


class Job(Base):
    """One evaluate, predict or export job on a run's checkpoint, done by a worker.

    `parameters` are the request as accepted (checkpoint, dataset and split, format, inputs);
    `result` is what the job produced (metrics, export check, mask counts) and `files` the
    names of its output files under `runs/<run>/jobs/<id>/` (see `server.job.paths`).
    """

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(_in("kind", JOB_KINDS), name="kind"),
        CheckConstraint(_in("status", JOB_STATUSES), name="status"),
        Index("ix_jobs_run_id_id", "run_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    parameters: Mapped[dict[str, Any]]
    result: Mapped[dict[str, Any] | None]
    files: Mapped[list[str] | None]
    reason: Mapped[str | None] = mapped_column(String(1000))
    details: Mapped[str | None] = mapped_column(Text)
    queue: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[str | None] = mapped_column(String(64))
    worker: Mapped[str | None] = mapped_column(String(200))
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
