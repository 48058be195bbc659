"""Previews say why they are there (`previews.reasons`: "fixed", "pinned", "worst"; earlier rows
were all the fixed set), and `pinned_images` holds the validation images users pinned on a run,
deleted with their run.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-11
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    with op.batch_alter_table("previews") as batch:
        batch.add_column(sa.Column("reasons", json, nullable=False, server_default='["fixed"]'))
    op.create_table(
        "pinned_images",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("image_index", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("pinned_by", sa.String(100), nullable=True),
        sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_pinned_images_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "image_index", name=op.f("pk_pinned_images")),
    )


def downgrade() -> None:
    op.drop_table("pinned_images")
    with op.batch_alter_table("previews") as batch:
        batch.drop_column("reasons")
