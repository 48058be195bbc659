"""Dispatch tracking: when a queued run's message was sent, and since when a worker is idle.

Together they let the reaper notice a queued run whose message never reached the broker (or was
lost there): an idle worker serving its queue would have taken it long ago.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("workers", sa.Column("idle_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers") as workers:
        workers.drop_column("idle_since")
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("sent_at")
