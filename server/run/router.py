"""/api/v1/runs: create, list (filters, sort, cursor), read, edit, delete, cancel, resume, clone."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from fastapi.responses import Response
from sqlalchemy.orm import Session

from server import exports
from server.auth import audit
from server.auth.principal import Principal, PrincipalDep
from server.bounds import RunIdPath, Text
from server.deps import SessionDep, SettingsDep, TaskQueueDep
from server.errors import Conflict
from server.http_errors import error_responses
from server.metric.repository import summaries
from server.models import Run, utcnow
from server.run import lineage, repository, service
from server.run.repository import RunFilter
from server.run.schemas import (
    CloneRequest,
    MetricSummaryOut,
    ResumeRequest,
    RunCreate,
    RunOut,
    RunPage,
    RunPatch,
    RunSummaryOut,
    duration_s,
)
from server.settings import Settings
from server.unit_of_work import UnitOfWorkRoute

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/runs", tags=["runs"])
csv_router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1", tags=["runs"])

MAX_PAGE = 500
MAX_CSV_RUNS = 100_000


def summary_out(run: Run, tags: list[str]) -> RunSummaryOut:
    return RunSummaryOut.model_validate(
        {
            **_summary_fields(run),
            **lineage.summary_fields(run),
            "tags": tags,
            "duration_s": duration_s(run, utcnow()),
        }
    )


def _summary_fields(run: Run) -> dict[str, object]:
    return {name: getattr(run, name) for name in RunSummaryOut.model_fields if hasattr(Run, name)}


def _record_submitter(run: Run, principal: Principal) -> None:
    run.submitted_by_id = principal.user_id
    run.submitted_by = principal.name if principal.via != "open" else None


def run_out(
    session: Session, settings: Settings, run: Run, tags: list[str] | None = None
) -> RunOut:
    """The full view of a run, with its tags, metric summaries and placement note."""
    if tags is None:
        tags = repository.tags_of(session, [run.id])[run.id]
    metrics = {
        key: MetricSummaryOut.model_validate(summary)
        for key, summary in summaries(session, [run.id])[run.id].items()
    }
    fields = {name: getattr(run, name) for name in RunOut.model_fields if hasattr(Run, name)}
    return RunOut.model_validate(
        {
            **fields,
            **lineage.summary_fields(run),
            "environment": lineage.environment_out(run.environment),
            "lineage": lineage.lineage_of(session, run),
            "tags": tags,
            "duration_s": duration_s(run, utcnow()),
            "metrics": metrics,
            "placement_note": service.placement_note(session, settings, run),
        }
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "The run with this `client_key` exists already"},
        **error_responses(403, 409),
    },
)
def create_run(
    body: RunCreate,
    response: Response,
    *,
    session: SessionDep,
    settings: SettingsDep,
    task_queue: TaskQueueDep,
    principal: PrincipalDep,
) -> RunOut:
    """Queue a training run, or open an external run (`external: true`) to log into.

    An invalid config answers 422 with one `{field, message}` per problem; a dataset outside the
    dataset roots 403; a dataset that fails inspection 422 with the inspection report. An
    external run may carry its TrainConfig (checked, not resolved: it trains elsewhere); one
    whose `client_key` exists answers 200 with that run (409 when it is another user's).
    """
    if body.external:
        run, created = service.open_external_run(session, settings, body)
        if not created:
            if not principal.is_admin and run.submitted_by_id != principal.user_id:
                raise Conflict(
                    f"client_key {body.client_key} belongs to run {run.id} of another user"
                )
            response.status_code = status.HTTP_200_OK
            return run_out(session, settings, run)
    else:
        run = service.create_run(session, settings, task_queue, body)
    _record_submitter(run, principal)
    return run_out(session, settings, run, sorted(set(body.tags)))


def run_filter(
    *,
    status_: Annotated[list[Text], Query(alias="status")] = [],  # noqa: B006 (FastAPI reads it)
    tag: Annotated[list[Text], Query(description="Runs carrying every tag given")] = [],  # noqa: B006
    q: Annotated[
        Text | None, Query(max_length=200, description="Text in name, notes, tags")
    ] = None,
    dataset: Annotated[
        Text | None, Query(max_length=4096, description="Dataset name, id or path")
    ] = None,
    model: Annotated[Text | None, Query(max_length=200)] = None,
    external: bool | None = None,
    metric: Annotated[
        list[Text], Query(description=service.METRIC_GRAMMAR + "; repeat to AND several")
    ] = [],  # noqa: B006
) -> RunFilter:
    """The list filters shared by the JSON list and the CSV export."""
    return service.build_filter(
        statuses=status_,
        tags=tag,
        text=q,
        dataset=dataset,
        model=model,
        metrics=metric,
        external=external,
    )


RunFilterDep = Annotated[RunFilter, Depends(run_filter)]
SortParam = Annotated[Text, Query(description="Field, '-' prefix for descending")]


@router.get("")
def list_runs(
    session: SessionDep,
    run_filter: RunFilterDep,
    sort: SortParam = "-created_at",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[
        Text | None, Query(max_length=2000, description="The `next_cursor` of the previous page")
    ] = None,
) -> RunPage:
    """Runs matching every filter, one page at a time (keyset pagination: pass `next_cursor`)."""
    runs, next_cursor = repository.list_runs(
        session, run_filter, service.parse_sort(sort), limit=limit, cursor=cursor
    )
    tags = repository.tags_of(session, [run.id for run in runs])
    return RunPage(items=[summary_out(run, tags[run.id]) for run in runs], next_cursor=next_cursor)


@csv_router.get(
    "/runs.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}}
)
def runs_csv(
    session: SessionDep, run_filter: RunFilterDep, sort: SortParam = "-created_at"
) -> Response:
    """The filtered runs list as CSV: summary columns, config.<key>, params.<key>, metric.<key>."""
    runs = list(
        repository.iter_runs(session, run_filter, service.parse_sort(sort), limit=MAX_CSV_RUNS)
    )
    ids = [run.id for run in runs]
    last_values = {
        run_id: {key: summary.last_value for key, summary in by_key.items()}
        for run_id, by_key in summaries(session, ids).items()
    }
    text = exports.runs_csv(runs, repository.tags_of(session, ids), last_values)
    return Response(
        text,
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="runs.csv"'},
    )


@router.get("/{run_id}", responses=error_responses(404))
def get_run(run_id: RunIdPath, session: SessionDep, settings: SettingsDep) -> RunOut:
    return run_out(session, settings, repository.get_run(session, run_id))


@router.patch("/{run_id}", responses=error_responses(404, 409))
def patch_run(
    run_id: RunIdPath,
    body: RunPatch,
    session: SessionDep,
    settings: SettingsDep,
    task_queue: TaskQueueDep,
) -> RunOut:
    """Change name, tags or notes; external runs also take a final `status`; queued runs take a
    new `priority` or `queue` (409 once a worker has claimed the run)."""
    run, tags = service.patch_run(session, task_queue, run_id, body)
    return run_out(session, settings, run, tags)


@router.delete(
    "/{run_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404, 409)
)
def delete_run(
    run_id: RunIdPath,
    *,
    session: SessionDep,
    settings: SettingsDep,
    task_queue: TaskQueueDep,
    principal: PrincipalDep,
    force: bool = False,
) -> Response:
    """Delete the run and its files; a running run needs `?force=true`."""
    name = repository.get_run(session, run_id).name
    service.delete_run(session, settings, task_queue, run_id, force=force)
    audit.record(session, principal, "run.delete", f"run {run_id}", name=name, force=force)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{run_id}/cancel", responses=error_responses(404, 409))
def cancel_run(
    run_id: RunIdPath,
    session: SessionDep,
    settings: SettingsDep,
    task_queue: TaskQueueDep,
    principal: PrincipalDep,
) -> RunOut:
    """Queued runs end now; running ones become `cancelling` until their worker stops."""
    run = service.cancel_run(session, task_queue, run_id)
    audit.record(session, principal, "run.cancel", f"run {run_id}", name=run.name)
    return run_out(session, settings, run)


@router.post("/{run_id}/resume", responses=error_responses(404, 409))
def resume_run(
    run_id: RunIdPath,
    session: SessionDep,
    settings: SettingsDep,
    task_queue: TaskQueueDep,
    body: ResumeRequest | None = None,
) -> RunOut:
    """Queue a failed or cancelled run again, continuing from its last checkpoint; `epochs`
    above the planned ones extends the run."""
    epochs = body.epochs if body is not None else None
    return run_out(session, settings, service.resume_run(session, task_queue, run_id, epochs))


@router.post(
    "/{run_id}/clone",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(403, 404, 409),
)
def clone_run(
    run_id: RunIdPath,
    body: CloneRequest,
    *,
    session: SessionDep,
    settings: SettingsDep,
    task_queue: TaskQueueDep,
    principal: PrincipalDep,
) -> RunOut:
    """A new queued run with this run's config and `overrides` applied (the caller's run)."""
    run = service.clone_run(session, settings, task_queue, run_id, body)
    _record_submitter(run, principal)
    return run_out(session, settings, run)
