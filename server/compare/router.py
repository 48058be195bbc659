"""/api/v1/compare: what the compare page reads about its runs, in one call of three queries
rather than one request per run (50 runs' requests cost more than the page's first chart)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from server.bounds import Text
from server.compare.schemas import CompareRunOut, CompareRunsOut
from server.deps import SessionDep
from server.metric.across_runs import MAX_RUNS, parse_run_ids
from server.metric.repository import summaries
from server.models import Run
from server.run.repository import tags_of
from server.run.router import summary_out
from server.run.schemas import MetricSummaryOut
from server.unit_of_work import UnitOfWorkRoute

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/compare", tags=["compare"])


@router.get("/runs")
def compare_runs(
    session: SessionDep,
    run_ids: Annotated[
        list[Text], Query(description=f"Comma-separated or repeated, at most {MAX_RUNS}")
    ],
) -> CompareRunsOut:
    """Several runs, in the order of `run_ids` (repeats dropped), each with its summary (as
    in `GET /api/v1/runs`), `config`, `params`, `dataset_path`, `class_names` and `metrics`
    (as in `GET /api/v1/runs/{id}`); ids that name no run are listed in `missing` rather than
    failing the call, so a page compares the rest."""
    ids = parse_run_ids(run_ids)
    found = {run.id: run for run in session.scalars(select(Run).where(Run.id.in_(ids)))}
    tags = tags_of(session, list(found))
    metrics = summaries(session, list(found))
    items = [
        CompareRunOut.model_validate(
            {
                **summary_out(run, tags[run.id]).model_dump(),
                "config": run.config,
                "params": run.params,
                "dataset_path": run.dataset_path,
                "class_names": run.class_names,
                "metrics": {
                    key: MetricSummaryOut.model_validate(summary)
                    for key, summary in metrics[run.id].items()
                },
            }
        )
        for run in (found[run_id] for run_id in ids if run_id in found)
    ]
    return CompareRunsOut(items=items, missing=[run_id for run_id in ids if run_id not in found])
