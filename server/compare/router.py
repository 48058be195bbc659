"""/api/v1/compare: what the compare page reads about its runs, in one call rather than one per
run (50 runs' requests cost more than the page's first chart)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from server.bounds import Text
from server.compare.schemas import CompareRunsOut
from server.deps import SessionDep, SettingsDep
from server.metric.across_runs import MAX_RUNS, parse_run_ids
from server.models import Run
from server.run.repository import tags_of
from server.run.router import run_out
from server.unit_of_work import UnitOfWorkRoute

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/compare", tags=["compare"])


@router.get("/runs")
def compare_runs(
    session: SessionDep,
    settings: SettingsDep,
    run_ids: Annotated[
        list[Text], Query(description=f"Comma-separated or repeated, at most {MAX_RUNS}")
    ],
) -> CompareRunsOut:
    """Several runs in full, in the order of `run_ids` (repeats dropped); ids that name no run
    are listed in `missing` rather than failing the call, so a page compares the rest."""
    ids = parse_run_ids(run_ids)
    found = {run.id: run for run in session.scalars(select(Run).where(Run.id.in_(ids)))}
    tags = tags_of(session, list(found))
    return CompareRunsOut(
        items=[
            run_out(session, settings, found[run_id], tags[run_id])
            for run_id in ids
            if run_id in found
        ],
        missing=[run_id for run_id in ids if run_id not in found],
    )
