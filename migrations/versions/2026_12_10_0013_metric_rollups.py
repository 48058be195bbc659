"""Metric rollups: per run, key and width (16, 64, ... 4**13 steps), one row per bucket with its
first, lowest, highest and last points and its count, so charts of long series read buckets
instead of points (`server.metric.rollup`). Kept on ingest on PostgreSQL, where this builds
them for the points already stored; SQLite reads points and gets an empty table.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WIDTHS = tuple(16 * 4**level for level in range(12))
COLUMNS = (
    "count, first_step, first_value, min_step, min_value, max_step, max_value, "
    "last_step, last_value"
)
# The rule of server.metric.rollup as of this revision: ties keep the earliest minimum and the
# latest maximum.
FROM_POINTS = """
    count(*)::int, min(m.step), (array_agg(m.value ORDER BY m.step))[1],
    (array_agg(m.step ORDER BY m.value, m.step))[1], min(m.value),
    (array_agg(m.step ORDER BY m.value DESC, m.step DESC))[1], max(m.value),
    max(m.step), (array_agg(m.value ORDER BY m.step DESC))[1]
"""
FROM_BUCKETS = """
    sum(c.count)::int, min(c.first_step), (array_agg(c.first_value ORDER BY c.bucket))[1],
    (array_agg(c.min_step ORDER BY c.min_value, c.min_step))[1], min(c.min_value),
    (array_agg(c.max_step ORDER BY c.max_value DESC, c.max_step DESC))[1], max(c.max_value),
    max(c.last_step), (array_agg(c.last_value ORDER BY c.bucket DESC))[1]
"""


def upgrade() -> None:
    op.create_table(
        "metric_rollups",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_step", sa.BigInteger(), nullable=False),
        sa.Column("first_value", sa.Double(), nullable=False),
        sa.Column("min_step", sa.BigInteger(), nullable=False),
        sa.Column("min_value", sa.Double(), nullable=False),
        sa.Column("max_step", sa.BigInteger(), nullable=False),
        sa.Column("max_value", sa.Double(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("last_value", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_metric_rollups_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "key", "width", "bucket", name=op.f("pk_metric_rollups")),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    # Points of runs that exist (a deleted run's points may wait for the reaper).
    op.execute(f"""
        INSERT INTO metric_rollups (run_id, key, width, bucket, {COLUMNS})
        SELECT m.run_id, m.key, {WIDTHS[0]}, m.step / {WIDTHS[0]}, {FROM_POINTS}
        FROM metrics m WHERE m.run_id IN (SELECT id FROM runs)
        GROUP BY m.run_id, m.key, m.step / {WIDTHS[0]}
    """)
    for child, width in pairwise(WIDTHS):
        op.execute(f"""
            INSERT INTO metric_rollups (run_id, key, width, bucket, {COLUMNS})
            SELECT c.run_id, c.key, {width}, c.bucket / 4, {FROM_BUCKETS}
            FROM metric_rollups c WHERE c.width = {child}
            GROUP BY c.run_id, c.key, c.bucket / 4
        """)


def downgrade() -> None:
    op.drop_table("metric_rollups")
