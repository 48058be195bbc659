"""Where runs came from: the run a run was cloned, fine-tuned or resumed from, and the runs made
from it; and the environment it reported, as the API shows them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from server.models import Run
from server.run.schemas import ChildRef, EnvironmentOut, LineageOut, RunRef

MAX_CHILDREN = 100
"""Runs made from one run that its page lists (the newest)."""
_RUN_REFERENCE = re.compile(r"^run:(?P<run_id>[0-9]{1,10})(?::(?:best|last))?$")
_RELATIONS = (
    ("cloned_from_id", "clone"),
    ("fine_tuned_from_id", "fine_tune"),
    ("resumed_from_id", "resume"),
)


def fine_tune_source(raw_config: Mapping[str, Any]) -> int | None:
    """The run whose checkpoint a config's `init_from` names (`run:<id>[:best|last]`)."""
    value = raw_config.get("init_from")
    match = _RUN_REFERENCE.match(value) if isinstance(value, str) else None
    return int(match["run_id"]) if match else None


def environment_out(stored: Mapping[str, Any] | None) -> EnvironmentOut | None:
    """The stored environment as the API shows it (keys it does not know are left out)."""
    if not stored:
        return None
    known = {key: value for key, value in stored.items() if key in EnvironmentOut.model_fields}
    return EnvironmentOut.model_validate(known)


def summary_fields(run: Run) -> dict[str, Any]:
    """The environment facts the runs list shows: origin and host."""
    environment = run.environment or {}
    return {"origin": environment.get("origin"), "host": environment.get("host")}


def _ref(session: Session, run_id: int | None) -> RunRef | None:
    if run_id is None:
        return None
    source = session.get(Run, run_id)
    if source is None:
        return None
    return RunRef(id=source.id, name=source.name, status=source.status)


def lineage_of(session: Session, run: Run) -> LineageOut:
    """The runs `run` came from and the (newest MAX_CHILDREN) runs made from it."""
    children = session.scalars(
        select(Run)
        .where(
            or_(
                Run.cloned_from_id == run.id,
                Run.fine_tuned_from_id == run.id,
                Run.resumed_from_id == run.id,
            )
        )
        .order_by(Run.id.desc())
        .limit(MAX_CHILDREN)
    ).all()
    return LineageOut(
        cloned_from=_ref(session, run.cloned_from_id),
        fine_tuned_from=_ref(session, run.fine_tuned_from_id),
        resumed_from=_ref(session, run.resumed_from_id),
        children=[
            ChildRef(id=child.id, name=child.name, status=child.status, relation=relation)
            for child in children
            for column, relation in _RELATIONS
            if getattr(child, column) == run.id
        ],
    )
