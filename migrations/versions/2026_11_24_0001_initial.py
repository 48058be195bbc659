"""Initial schema: runs, tags, metrics and their summaries, datasets, previews, checkpoints,
events and workers.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUN_STATUSES = ("queued", "running", "cancelling", "succeeded", "failed", "cancelled")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _big_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _run_fk(column: str = "run_id", table: str = "") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["runs.id"], name=op.f(f"fk_{table}_{column}_runs"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("path", sa.String(length=4096), nullable=False),
        sa.Column("layout", sa.String(length=32), nullable=False),
        sa.Column("report", _json(), nullable=False),
        sa.Column("class_names", _json(), nullable=False),
        sa.Column("class_colors", _json(), nullable=False),
        sa.Column("num_classes", sa.Integer(), nullable=False),
        sa.Column("num_pairs", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("name", name=op.f("uq_datasets_name")),
    )
    op.create_table(
        "events",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_events_created_at"), "events", ["created_at"])
    op.create_index("ix_events_run_id_id", "events", ["run_id", "id"])
    statuses = ", ".join(f"'{status}'" for status in RUN_STATUSES)
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("external", sa.Boolean(), nullable=False),
        sa.Column("config", _json(), nullable=True),
        sa.Column("params", _json(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("dataset_name", sa.String(length=200), nullable=True),
        sa.Column("dataset_path", sa.String(length=4096), nullable=True),
        sa.Column("model", sa.String(length=32), nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("device", sa.String(length=64), nullable=True),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_retries", sa.Integer(), nullable=False),
        sa.Column("resume_requested", sa.Boolean(), nullable=False),
        _at("heartbeat_at", nullable=True),
        _at("created_at"),
        _at("updated_at"),
        _at("queued_at", nullable=True),
        _at("started_at", nullable=True),
        _at("finished_at", nullable=True),
        sa.Column("failure_reason", sa.String(length=1000), nullable=True),
        sa.Column("failure_traceback", sa.Text(), nullable=True),
        sa.Column("epochs_done", sa.Integer(), nullable=False),
        sa.Column("epochs_planned", sa.Integer(), nullable=True),
        sa.Column("best_val_iou", sa.Double(), nullable=True),
        sa.Column("best_epoch", sa.Integer(), nullable=True),
        sa.Column("last_val_iou", sa.Double(), nullable=True),
        sa.Column("monitor", sa.String(length=200), nullable=True),
        sa.Column("best_metric", sa.Double(), nullable=True),
        sa.Column("class_names", _json(), nullable=True),
        sa.CheckConstraint(f"status IN ({statuses})", name=op.f("ck_runs_status")),
        sa.CheckConstraint("priority BETWEEN 0 AND 9", name=op.f("ck_runs_priority")),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_runs_dataset_id_datasets"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_runs_best_val_iou_id", "runs", ["best_val_iou", "id"])
    op.create_index("ix_runs_created_at_id", "runs", ["created_at", "id"])
    op.create_index(op.f("ix_runs_dataset_id"), "runs", ["dataset_id"])
    op.create_index(op.f("ix_runs_model"), "runs", ["model"])
    op.create_index("ix_runs_queue_order", "runs", ["status", "priority", "queued_at"])
    op.create_index("ix_runs_status_created_at", "runs", ["status", "created_at"])
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("metric", sa.Double(), nullable=True),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        _at("updated_at"),
        sa.CheckConstraint("kind IN ('best', 'last')", name=op.f("ck_checkpoints_kind")),
        _run_fk(table="checkpoints"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkpoints")),
        sa.UniqueConstraint("run_id", "kind", name=op.f("uq_checkpoints_run_id_kind")),
    )
    op.create_table(
        "metric_summaries",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("last_value", sa.Double(), nullable=False),
        sa.Column("min_value", sa.Double(), nullable=False),
        sa.Column("max_value", sa.Double(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        _run_fk(table="metric_summaries"),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_metric_summaries")),
    )
    op.create_table(
        "metrics",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=True),
        # No foreign key to runs: see server.models.Metric. The primary key's order also serves
        # range reads: one run, one key, steps in order.
        sa.PrimaryKeyConstraint("run_id", "key", "step", name=op.f("pk_metrics")),
    )
    op.create_table(
        "previews",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("sample_index", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("image_path", sa.String(length=1000), nullable=False),
        sa.Column("truth_path", sa.String(length=1000), nullable=False),
        sa.Column("prediction_path", sa.String(length=1000), nullable=False),
        _at("created_at"),
        _run_fk(table="previews"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_previews")),
        sa.UniqueConstraint(
            "run_id",
            "epoch",
            "sample_index",
            name=op.f("uq_previews_run_id_epoch_sample_index"),
        ),
    )
    op.create_table(
        "run_tags",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=100), nullable=False),
        _run_fk(table="run_tags"),
        sa.PrimaryKeyConstraint("run_id", "tag", name=op.f("pk_run_tags")),
    )
    op.create_index(op.f("ix_run_tags_tag"), "run_tags", ["tag"])
    op.create_table(
        "workers",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("hostname", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("queues", _json(), nullable=False),
        sa.Column("current_run_id", sa.Integer(), nullable=True),
        _at("started_at"),
        _at("last_seen_at"),
        sa.ForeignKeyConstraint(
            ["current_run_id"],
            ["runs.id"],
            name=op.f("fk_workers_current_run_id_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_workers")),
    )
    op.create_index(op.f("ix_workers_last_seen_at"), "workers", ["last_seen_at"])


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_table("run_tags")
    op.drop_table("previews")
    op.drop_table("metrics")
    op.drop_table("metric_summaries")
    op.drop_table("checkpoints")
    op.drop_table("runs")
    op.drop_table("events")
    op.drop_table("datasets")
