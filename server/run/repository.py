"""SQL for runs and their tags: lookups, inserts, deletes, the queue's order. Never commits.

The runs list (filters, sorts, groups, cursors) is `server.run.run_list`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, defer

from server.errors import NotFound
from server.models import Metric, Run, RunTag


def get_run(session: Session, run_id: int, *, for_update: bool = False) -> Run:
    """The run, or NotFound naming the id."""
    query = select(Run).where(Run.id == run_id)
    if for_update:
        query = query.with_for_update()
    run = session.scalars(query).one_or_none()
    if run is None:
        raise NotFound(f"run {run_id} does not exist")
    return run


def tags_of(session: Session, run_ids: Sequence[int]) -> dict[int, list[str]]:
    """Sorted tags of each run."""
    tags: dict[int, list[str]] = defaultdict(list)
    if run_ids:
        rows = session.execute(
            select(RunTag.run_id, RunTag.tag)
            .where(RunTag.run_id.in_(run_ids))
            .order_by(RunTag.run_id, RunTag.tag)
        )
        for run_id, tag in rows:
            tags[run_id].append(tag)
    return tags


def replace_tags(session: Session, run_id: int, tags: Sequence[str]) -> list[str]:
    """Set the run's tags (duplicates dropped); returns them sorted."""
    unique = sorted(set(tags))
    session.execute(delete(RunTag).where(RunTag.run_id == run_id))
    if unique:
        session.execute(insert(RunTag), [{"run_id": run_id, "tag": tag} for tag in unique])
    return unique


def add_run(session: Session, run: Run, tags: Sequence[str]) -> Run:
    """Insert the run (its id is set on return) and its tags."""
    session.add(run)
    session.flush()
    replace_tags(session, run.id, tags)
    return run


def delete_run(session: Session, run_id: int) -> None:
    """Delete the run with its tags, summaries, previews and checkpoints (ON DELETE CASCADE),
    and its metric points (no foreign key there; see `server.models.Metric`)."""
    session.execute(delete(Run).where(Run.id == run_id))
    session.execute(delete(Metric).where(Metric.run_id == run_id))


def queued_runs(session: Session, limit: int = 200) -> list[Run]:
    """Queued runs in the order workers take them: priority (high first), then queue time."""
    return list(
        session.scalars(
            select(Run)
            .options(defer(Run.config), defer(Run.params), defer(Run.failure_traceback))
            .where(Run.status == "queued")
            .order_by(Run.priority.desc(), Run.queued_at, Run.id)
            .limit(limit)
        )
    )
