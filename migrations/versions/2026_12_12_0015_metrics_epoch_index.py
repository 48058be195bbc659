"""An index on metrics (run_id, epoch): values at an epoch (the compare page's tables) and a
run's last epoch were read by scanning the run's points, and whether a run logs epochs at all
by a scan the planner could run over the whole table.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-12
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_metrics_run_id_epoch", "metrics", ["run_id", "epoch"])


def downgrade() -> None:
    op.drop_index("ix_metrics_run_id_epoch", table_name="metrics")
