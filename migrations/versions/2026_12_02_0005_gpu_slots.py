"""GPU slots: how many slots (GPUs) each run trains on, and which run holds each slot of a
worker (a worker process now owns several GPUs and trains one run per child process).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    op.add_column("runs", sa.Column("gpus", sa.SmallInteger(), server_default="1", nullable=False))
    # Worker rows are rewritten by every heartbeat: the slots replace the one current run.
    with op.batch_alter_table("workers") as workers:
        workers.add_column(sa.Column("slots", json, server_default="[]", nullable=False))
        workers.drop_constraint(op.f("fk_workers_current_run_id_runs"), type_="foreignkey")
        workers.drop_column("current_run_id")


def downgrade() -> None:
    with op.batch_alter_table("workers") as workers:
        workers.add_column(sa.Column("current_run_id", sa.Integer(), nullable=True))
        workers.create_foreign_key(
            op.f("fk_workers_current_run_id_runs"),
            "runs",
            ["current_run_id"],
            ["id"],
            ondelete="SET NULL",
        )
        workers.drop_column("slots")
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("gpus")
