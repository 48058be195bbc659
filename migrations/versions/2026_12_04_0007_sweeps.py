"""Sweeps: the sweeps table, each run's sweep, trial number, swept values and prune request, and
the `pruned` final status.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = ("queued", "running", "cancelling", "succeeded", "failed", "cancelled")
NEW_STATUSES = (*OLD_STATUSES, "pruned")
SWEEP_STATUSES = ("running", "paused", "finished", "cancelled")
SWEEP_METHODS = ("grid", "random", "bayes")


def _in(column: str, values: Sequence[str]) -> str:
    return "{} IN ({})".format(column, ", ".join(f"'{value}'" for value in values))


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    op.create_table(
        "sweeps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("goal", sa.String(8), nullable=False),
        sa.Column("spec", json, nullable=False),
        sa.Column("max_runs", sa.Integer(), nullable=False),
        sa.Column("parallel", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("submitted_by_id", sa.Integer(), nullable=True),
        sa.Column("submitted_by", sa.String(100), nullable=True),
        sa.Column("note", sa.String(1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(_in("status", SWEEP_STATUSES), name=op.f("ck_sweeps_status")),
        sa.CheckConstraint(_in("method", SWEEP_METHODS), name=op.f("ck_sweeps_method")),
        sa.CheckConstraint("goal IN ('maximize', 'minimize')", name=op.f("ck_sweeps_goal")),
        sa.ForeignKeyConstraint(
            ["submitted_by_id"],
            ["users.id"],
            name=op.f("fk_sweeps_submitted_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweeps")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_sweeps_submitted_by_id"), "sweeps", ["submitted_by_id"])
    with op.batch_alter_table("runs", table_kwargs={"sqlite_autoincrement": True}) as runs:
        runs.add_column(sa.Column("sweep_id", sa.Integer(), nullable=True))
        runs.add_column(sa.Column("trial_number", sa.Integer(), nullable=True))
        runs.add_column(sa.Column("sweep_params", json, nullable=True))
        runs.add_column(sa.Column("prune_requested_at", sa.DateTime(timezone=True), nullable=True))
        runs.create_foreign_key(
            op.f("fk_runs_sweep_id_sweeps"), "sweeps", ["sweep_id"], ["id"], ondelete="SET NULL"
        )
        runs.create_index(op.f("ix_runs_sweep_id"), ["sweep_id"])
        runs.create_unique_constraint(
            op.f("uq_runs_sweep_id_trial_number"), ["sweep_id", "trial_number"]
        )
        runs.drop_constraint(op.f("ck_runs_status"), type_="check")
        runs.create_check_constraint(op.f("ck_runs_status"), _in("status", NEW_STATUSES))


def downgrade() -> None:
    op.execute("UPDATE runs SET status = 'failed' WHERE status = 'pruned'")
    with op.batch_alter_table("runs", table_kwargs={"sqlite_autoincrement": True}) as runs:
        runs.drop_constraint(op.f("ck_runs_status"), type_="check")
        runs.create_check_constraint(op.f("ck_runs_status"), _in("status", OLD_STATUSES))
        runs.drop_constraint(op.f("uq_runs_sweep_id_trial_number"), type_="unique")
        runs.drop_index(op.f("ix_runs_sweep_id"))
        runs.drop_constraint(op.f("fk_runs_sweep_id_sweeps"), type_="foreignkey")
        for column in ("prune_requested_at", "sweep_params", "trial_number", "sweep_id"):
            runs.drop_column(column)
    op.drop_index(op.f("ix_sweeps_submitted_by_id"), table_name="sweeps")
    op.drop_table("sweeps")
