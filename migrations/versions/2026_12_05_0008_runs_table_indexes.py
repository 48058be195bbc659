"""Indexes of the runs table's filter language: GIN indexes on runs.config and runs.params
(PostgreSQL only: `@>` containment for equality terms, `?` for the known-key check) and an index
on metric_summaries.key (the known-key check and the list of metric keys).

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
        op.create_index("ix_runs_config", "runs", ["config"], postgresql_using="gin")
        op.create_index("ix_runs_params", "runs", ["params"], postgresql_using="gin")


def downgrade() -> None:
    if _postgresql():
        op.drop_index("ix_runs_params", table_name="runs")
        op.drop_index("ix_runs_config", table_name="runs")
    op.drop_index(op.f("ix_metric_summaries_key"), table_name="metric_summaries")
