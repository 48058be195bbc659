"""Every epoch's validation detail: the confusion matrix and every validation image's pixel
counts (validation_epochs, one row per run and epoch), and the run's image names once
(validation_sets). On PostgreSQL the per-image scores are stored uncompressed out of line, so
reading one image's trend slices 24 bytes of each epoch instead of decompressing the column.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EXTERNAL_STORAGE = (
    ("validation_epochs", "confusion"),
    ("validation_epochs", "counts"),
    ("validation_epochs", "scores"),
    ("validation_sets", "image_names"),
)


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    op.create_table(
        "validation_sets",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("class_names", json, nullable=False),
        sa.Column("image_count", sa.Integer(), nullable=False),
        sa.Column("image_names", sa.LargeBinary(), nullable=False),
        sa.Column("names_digest", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_validation_sets_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_validation_sets")),
    )
    op.create_table(
        "validation_epochs",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("count_bytes", sa.SmallInteger(), nullable=False),
        sa.Column("confusion", sa.LargeBinary(), nullable=False),
        sa.Column("counts", sa.LargeBinary(), nullable=False),
        sa.Column("scores", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_validation_epochs_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "epoch", name=op.f("pk_validation_epochs")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # The blobs are compressed already, and scores are sliced by `substr`.
        for table, column in EXTERNAL_STORAGE:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("validation_epochs")
    op.drop_table("validation_sets")
