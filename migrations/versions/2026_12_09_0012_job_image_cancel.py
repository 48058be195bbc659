"""Jobs: `predict_image` (one validation image predicted from the run's nearest checkpoint, shown
in the run page's Images view) and cancelling: `cancelling` while a running job's worker stops
it, `cancelled` once stopped (a queued job is cancelled at once and never starts).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-09
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KINDS = ("evaluate", "predict", "export")
OLD_STATUSES = ("queued", "running", "succeeded", "failed")
NEW_KINDS = (*OLD_KINDS, "predict_image")
NEW_STATUSES = (*OLD_STATUSES, "cancelling", "cancelled")


def _in(column: str, values: Sequence[str]) -> str:
    return "{} IN ({})".format(column, ", ".join(f"'{value}'" for value in values))


def _constraints(kinds: Sequence[str], statuses: Sequence[str]) -> None:
    with op.batch_alter_table(
        "jobs", recreate="auto", table_kwargs={"sqlite_autoincrement": True}
    ) as jobs:
        jobs.drop_constraint(op.f("ck_jobs_kind"), type_="check")
        jobs.drop_constraint(op.f("ck_jobs_status"), type_="check")
        jobs.create_check_constraint(op.f("ck_jobs_kind"), _in("kind", kinds))
        jobs.create_check_constraint(op.f("ck_jobs_status"), _in("status", statuses))


def upgrade() -> None:
    _constraints(NEW_KINDS, NEW_STATUSES)


def downgrade() -> None:
    op.execute("DELETE FROM jobs WHERE kind = 'predict_image'")
    op.execute("UPDATE jobs SET status = 'failed' WHERE status IN ('cancelling', 'cancelled')")
    _constraints(OLD_KINDS, OLD_STATUSES)
