"""Jobs: evaluate, predict and export work a worker does with one of a run's checkpoints (its
parameters, status, reason, result and output files), deleted with their run.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JOB_KINDS = ("evaluate", "predict", "export")
JOB_STATUSES = ("queued", "running", "succeeded", "failed")


def _in(column: str, values: Sequence[str]) -> str:
    return "{} IN ({})".format(column, ", ".join(f"'{value}'" for value in values))


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("parameters", json, nullable=False),
        sa.Column("result", json, nullable=True),
        sa.Column("files", json, nullable=True),
        sa.Column("reason", sa.String(1000), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("task_id", sa.String(64), nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(_in("kind", JOB_KINDS), name=op.f("ck_jobs_kind")),
        sa.CheckConstraint(_in("status", JOB_STATUSES), name=op.f("ck_jobs_status")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_jobs_run_id_runs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_jobs_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_jobs_run_id_id", "jobs", ["run_id", "id"])
    op.create_index(op.f("ix_jobs_created_by_id"), "jobs", ["created_by_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_jobs_created_by_id"), table_name="jobs")
    op.drop_index("ix_jobs_run_id_id", table_name="jobs")
    op.drop_table("jobs")
