"""Runs trained elsewhere: the client's idempotency key, the environment a run trained in, the
heartbeat limit of tracked external runs, the log lines they sent, lineage (cloned, fine-tuned,
resumed from), resumable uploads and the files a run logged besides its checkpoints.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LINEAGE = ("cloned_from_id", "fine_tuned_from_id", "resumed_from_id")


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    with op.batch_alter_table("runs", table_kwargs={"sqlite_autoincrement": True}) as runs:
        runs.add_column(sa.Column("client_key", sa.String(64), nullable=True))
        runs.add_column(sa.Column("environment", json, nullable=True))
        runs.add_column(sa.Column("heartbeat_timeout_s", sa.Integer(), nullable=True))
        runs.add_column(sa.Column("log_lines", sa.Integer(), server_default="0", nullable=False))
        for column in LINEAGE:
            runs.add_column(sa.Column(column, sa.Integer(), nullable=True))
            runs.create_foreign_key(
                op.f(f"fk_runs_{column}_runs"), "runs", [column], ["id"], ondelete="SET NULL"
            )
            runs.create_index(op.f(f"ix_runs_{column}"), [column])
        runs.create_unique_constraint(op.f("uq_runs_client_key"), ["client_key"])

    op.create_table(
        "uploads",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("received_bytes", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=True),
        sa.Column("metric", sa.Double(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_uploads_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
    )
    op.create_index("ix_uploads_run_id_kind_name", "uploads", ["run_id", "kind", "name"])

    op.create_table(
        "run_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_files_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_files")),
        sa.UniqueConstraint("run_id", "name", name=op.f("uq_run_files_run_id_name")),
    )


def downgrade() -> None:
    op.drop_table("run_files")
    op.drop_index("ix_uploads_run_id_kind_name", table_name="uploads")
    op.drop_table("uploads")
    with op.batch_alter_table("runs", table_kwargs={"sqlite_autoincrement": True}) as runs:
        runs.drop_constraint(op.f("uq_runs_client_key"), type_="unique")
        for column in reversed(LINEAGE):
            runs.drop_index(op.f(f"ix_runs_{column}"))
            runs.drop_constraint(op.f(f"fk_runs_{column}_runs"), type_="foreignkey")
            runs.drop_column(column)
        for column in ("log_lines", "heartbeat_timeout_s", "environment", "client_key"):
            runs.drop_column(column)
