"""Indexes of the runs table's filter language: GIN indexes (jsonb_path_ops) on runs.config and
runs.params (PostgreSQL only: `@>` containment answers equality terms) and an index on
metric_summaries.key (the known-key check and the list of metric keys).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_index(op.f("ix_metric_summaries_key"), "metric_summaries", ["key"])
    if _postgresql():
        for column in ("config", "params"):
            op.create_index(
                f"ix_runs_{column}",
                "runs",
                [column],
                postgresql_using="gin",
                postgresql_ops={column: "jsonb_path_ops"},
            )


def downgrade() -> None:
    if _postgresql():
        op.drop_index("ix_runs_params", table_name="runs")
        op.drop_index("ix_runs_config", table_name="runs")
    op.drop_index(op.f("ix_metric_summaries_key"), table_name="metric_summaries")
