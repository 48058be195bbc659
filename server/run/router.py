"""/api/v1/runs: create, list (filters, columns, sort, groups, cursor), read, edit, delete, cancel,
resume, clone."""

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
from server.run import filter_keys, lineage, repository, run_list, service
from server.run.columns import column_values, parse_columns
from server.run.filter_language import MAX_FILTER_LENGTH
from server.run.run_list import RunFilter
from server.run.schemas import (
    CloneRequest,
    GroupOut,
    MetricSummaryOut,
    ResumeRequest,
    RunCreate,
    RunKeysOut,
    RunOut,
    RunPage,
    RunPatch,
    RunRowOut,
    RunSummaryOut,
    duration_s,
)
from server.settings import Settings
from server.unit_of_work import UnitOfWorkRoute

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/runs", tags=["runs"])
csv_router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1", tags=["runs"])

MAX_PAGE = 500
MAX_CSV_RUNS = 100_000
MAX_GROUPS = 200
FILTER_HELP = """The filter language, e.g.
`config.learning_rate <= 1e-3 and (config.model = 'unet++' or metrics.val/iou.best > 0.8)`.

- `and`, `or`, `not`, parentheses; `not` binds tighter than `and`, `and` tighter than `or`.
- Comparisons `= != < <= > >=`; `in (v1, v2)` and `not in (...)`. Values: text in single or
  double quotes (escapes `\\\\ \\' \\" \\n \\t`), numbers (`3`, `-0.5`, `1e-3`), `true`, `false`.
- Fields: `config.<key>` (the run's TrainConfig; nested keys with dots), `params.<key>`
  (an external run's parameters), `metrics.<key>.best|last|min|max` (`last` when left out;
  `best` is the minimum of keys ending in `loss`, the maximum of others), `status`,
  `tag` (or `tags`: `tag = 'baseline'` carries the tag), `tag.<key>` (the value of a key:value tag
  such as `lr=1e-3`: `tag.lr = 1e-3`), `dataset` (name or path), `model`, `name`, `id`,
  `sweep` (the sweep's id, or its name quoted).
- Keys are bare (ASCII letters, digits, `_ - /`: `metrics.val/iou.best`) or quoted in backticks:
  `` metrics.`val/iou/road sign`.max ``.
- A run without the key compared matches no comparison (`!=` and `not in` match runs that have
  it with another value); `not` matches every run the inner filter does not. JSON values compare
  with values of their type: `config.x > 1` reads numbers only.

A key no run has answers 422 listing the keys there are; a syntax error 422 naming the position
and what was expected there."""


def summary_out(run: Run, tags: list[str]) -> RunSummaryOut:
    return RunSummaryOut.model_validate(_summary(run, tags))


def _summary(run: Run, tags: list[str]) -> dict[str, object]:
    return {
        **_summary_fields(run),
        **lineage.summary_fields(run),
        "tags": tags,
        "duration_s": duration_s(run, utcnow()),
    }


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
    filter_: Annotated[
        Text | None,
        Query(alias="filter", max_length=MAX_FILTER_LENGTH, description=FILTER_HELP),
    ] = None,
    session: SessionDep,
) -> RunFilter:
    """The list filters shared by the JSON list and the CSV export (all of them AND-ed)."""
    return service.build_filter(
        session,
        expression=filter_,
        statuses=status_,
        tags=tag,
        text=q,
        dataset=dataset,
        model=model,
        metrics=metric,
        external=external,
    )


RunFilterDep = Annotated[RunFilter, Depends(run_filter)]
SortParam = Annotated[
    Text,
    Query(
        max_length=500,
        description=f"{service.SORT_HELP}; nulls last either way",
    ),
]


@router.get("")
def list_runs(  # noqa: PLR0917 (one query parameter each)
    session: SessionDep,
    run_filter: RunFilterDep,
    sort: SortParam = "-created_at",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[
        Text | None, Query(max_length=2000, description="The `next_cursor` of the previous page")
    ] = None,
    columns: Annotated[
        Text | None,
        Query(
            max_length=4000,
            description="Comma-separated columns to add to each row's `columns`: "
            "config.<key>, params.<key>, metrics.<key>[.best|.last|.min|.max], tag.<key> "
            "(as in `filter`), e.g. `config.learning_rate,metrics.val/iou.best,tag.lr`",
        ),
    ] = None,
    group_by: Annotated[
        Text | None,
        Query(
            max_length=500,
            description="Order rows by this field first (ascending, nulls last), then by "
            "`sort`: config.<key>, params.<key>, metrics.<key>.<aggregate>, status, model or "
            "dataset",
        ),
    ] = None,
) -> RunPage:
    """Runs matching every filter, one page at a time (keyset pagination: pass `next_cursor`).

    `columns` adds the chosen values to each row's `columns` object; `sort` takes such a
    column too (`-metrics.val/iou.best`). With `group_by` the rows come grouped, ascending by
    the group's value (nulls last), then by `sort`; the group's value is in each row's
    `columns` under `group_by`, so a page draws a group header wherever it changes, and the
    first page lists every group with its count in `groups`. Keys no run has answer 422 listing
    the keys there are.
    """
    chosen = parse_columns(columns) if columns else []
    run_sort = service.parse_sort(sort, group_by)
    service.check_list_fields(session, run_sort, chosen)
    group = run_sort.group
    if group is not None and group.text not in [field.text for field in chosen]:
        chosen.append(group)
    runs, next_cursor = run_list.list_runs(
        session, run_filter, run_sort, limit=limit, cursor=cursor
    )
    ids = [run.id for run in runs]
    tags = repository.tags_of(session, ids)
    values = column_values(session, chosen, runs, tags)
    groups = None
    if group is not None and cursor is None:
        counts = run_list.group_counts(session, run_filter, group, limit=MAX_GROUPS)
        groups = [GroupOut(value=value, count=count) for value, count in counts]
    return RunPage(
        items=[
            RunRowOut.model_validate({**_summary(run, tags[run.id]), "columns": values[run.id]})
            for run in runs
        ],
        next_cursor=next_cursor,
        columns=[field.text for field in chosen],
        group_by=group.text if group is not None else None,
        groups=groups,
    )


CSV_CHUNK = 1000
"""Runs whose chosen columns are read in one query, for a table export."""


@csv_router.get(
    "/runs.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}}
)
def runs_csv(
    session: SessionDep,
    run_filter: RunFilterDep,
    sort: SortParam = "-created_at",
    columns: Annotated[
        Text | None,
        Query(
            max_length=4000,
            description="The runs table as shown: its own columns, then these chosen columns "
            "(as in the list's `columns`; empty for none), then tags. Left out: every "
            "summary column, config.<key>, params.<key> and metric.<key> (last value)",
        ),
    ] = None,
    group_by: Annotated[
        Text | None, Query(max_length=500, description="Order rows by this field first")
    ] = None,
) -> Response:
    """The filtered runs list as CSV, in the list's order; with `columns`, exactly the runs
    table's columns (the page's Export CSV), else every summary, config, params and metric
    column."""
    chosen = parse_columns(columns) if columns else []
    run_sort = service.parse_sort(sort, group_by)
    service.check_list_fields(session, run_sort, chosen)
    runs = list(run_list.iter_runs(session, run_filter, run_sort, limit=MAX_CSV_RUNS))
    ids = [run.id for run in runs]
    tags = repository.tags_of(session, ids)
    if columns is not None:
        values: dict[int, dict[str, object]] = {}
        for start in range(0, len(runs), CSV_CHUNK):
            values.update(column_values(session, chosen, runs[start : start + CSV_CHUNK], tags))
        text = exports.runs_table_csv(runs, tags, [field.text for field in chosen], values)
    else:
        last_values = {
            run_id: {key: summary.last_value for key, summary in by_key.items()}
            for run_id, by_key in summaries(session, ids).items()
        }
        text = exports.runs_csv(runs, tags, last_values)
    return Response(
        text,
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="runs.csv"'},
    )


@router.get("/keys")
def list_keys(session: SessionDep) -> RunKeysOut:
    """The keys there are, for choosing the runs table's columns and writing filters: config
    and params keys (of the newest 1,000 runs, plus TrainConfig's), metric keys and key:value
    tag keys."""
    return RunKeysOut.model_validate(filter_keys.known_keys(session))


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
    """Queue a failed, cancelled or pruned run again, continuing from its last checkpoint; `epochs`
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
