"""/api/v1/compare: what the compare page reads about its runs, in one call of three queries
rather than one request per run (50 runs' requests cost more than the page's first chart), and
their previews at an epoch, in one call rather than two a run."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from server.bounds import Count32, Text
from server.compare.schemas import (
    ComparePreviewsOut,
    CompareRunOut,
    CompareRunsOut,
    RunPreviewsOut,
)
from server.deps import SessionDep
from server.metric.across_runs import MAX_RUNS, parse_run_ids
from server.metric.repository import summaries
from server.models import Preview, Run
from server.preview.router import list_previews
from server.run.repository import tags_of
from server.run.router import summary_out
from server.run.schemas import MetricSummaryOut
from server.unit_of_work import UnitOfWorkRoute

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/compare", tags=["compare"])


RunIdsParam = Annotated[
    list[Text], Query(description=f"Comma-separated or repeated, at most {MAX_RUNS}")
]


def shown_epoch(epochs: list[int], wanted: int | None) -> int | None:
    """The preview epoch shown for `wanted` (None: the latest): that epoch, else the latest
    before it, else the first after it (runs keep previews at different epochs, or stopped
    earlier); None when the run has none. `epochs` ascending."""
    if not epochs:
        return None
    if wanted is None or wanted in epochs:
        return epochs[-1] if wanted is None else wanted
    before = [epoch for epoch in epochs if epoch < wanted]
    return before[-1] if before else epochs[0]


@router.get("/previews")
def compare_previews(
    session: SessionDep,
    run_ids: RunIdsParam,
    epoch: Annotated[Count32 | None, Query(description="Default: each run's latest")] = None,
) -> ComparePreviewsOut:
    """Each run's previews as `GET /api/v1/runs/{id}/previews` gives them, at the epoch shown for
    `epoch`: that epoch, else the run's latest before it, else its first after it. In the order
    of `run_ids` (repeats dropped); ids that name no run are listed in `missing`."""
    ids = parse_run_ids(run_ids)
    found = set(session.scalars(select(Run.id).where(Run.id.in_(ids))))
    epochs: dict[int, list[int]] = {run_id: [] for run_id in found}
    rows = select(Preview.run_id, Preview.epoch).where(Preview.run_id.in_(found)).distinct()
    for run_id, at in session.execute(rows.order_by(Preview.run_id, Preview.epoch)):
        epochs[run_id].append(at)
    items = [
        RunPreviewsOut(
            run_id=run_id,
            **list_previews(run_id, session, shown_epoch(epochs[run_id], epoch)).model_dump(),
        )
        for run_id in ids
        if run_id in found
    ]
    return ComparePreviewsOut(
        items=items, missing=[run_id for run_id in ids if run_id not in found]
    )


@router.get("/runs")
def compare_runs(session: SessionDep, run_ids: RunIdsParam) -> CompareRunsOut:
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
