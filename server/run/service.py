"""Run rules for the API: create (validate the config, check the dataset), list, edit, cancel,
resume, clone and delete."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.artifacts import delete_run_files
from server.bounds import NUL_MESSAGE, check_json, server_path_problem
from server.dataset import repository as datasets
from server.dataset.service import report_for_config, resolve_dataset_path
from server.db import after_commit
from server.errors import Conflict, InvalidInput
from server.events import record_event
from server.models import RUN_STATUSES, TERMINAL_STATUSES, Dataset, Run, utcnow
from server.preview.repository import get_checkpoint
from server.queue import TaskQueue
from server.run import repository
from server.run.columns import parse_group_field, parse_order_field
from server.run.config_caps import check_config_caps, check_dataset_caps
from server.run.filter_keys import check_fields
from server.run.filter_language import Field, fields_of, parse_filter
from server.run.lifecycle import RUNNING_STATUSES, dispatch, end_now, enqueue, status_event
from server.run.lineage import fine_tune_source
from server.run.run_list import (
    METRIC_OPERATORS,
    SORT_FIELDS,
    MetricCondition,
    RunFilter,
    RunSort,
)
from server.run.schemas import CloneRequest, RunCreate, RunPatch
from server.run.weights_files import WEIGHT_FIELDS, resolve_weight_files
from server.settings import Settings
from server.worker_status.repository import largest_capacity
from trainer.config import TrainConfig, describe_validation_error

METRIC_GRAMMAR = (
    "<key><op><number> with op one of > >= < <= = != (e.g. val/iou>0.8); it is compared with "
    "the key's last value"
)
_CONDITION = re.compile(r"^\s*(?P<key>[^<>=!]+?)\s*(?P<op>>=|<=|!=|>|<|=)\s*(?P<value>\S+)\s*$")
# A number in ASCII only: float() alone would also read other scripts' digits.
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
RESUMABLE = ("failed", "cancelled", "pruned")
"""The statuses a run is resumed from, continuing its last checkpoint (pruned runs keep theirs)."""
MAX_NAME = 200
"""Run names and dataset names of runs (their columns' length)."""
MAX_GPUS = 32767
"""Most slots a run may ask for (its column is a SMALLINT)."""


@dataclass(frozen=True)
class PreparedConfig:
    """A validated config whose dataset resolved inside the roots and passed inspection."""

    config: TrainConfig
    dataset: Dataset | None
    dataset_name: str
    report: dict[str, Any]


def prepare_config(session: Session, settings: Settings, raw: dict[str, Any]) -> PreparedConfig:
    """Validate a config, resolve its dataset (a registered name or a path) and weight files
    (`run:<id>[:best|last]` or a file), and inspect the dataset.

    Raises:
        InvalidInput: config errors, one `{field, message}` per key (the message lists what is
            allowed), values the database cannot store (NUL characters, NaN), a config over the
            resource caps of `settings` (`server.run.config_caps`), or a dataset folder that
            does not exist.
        PathNotAllowed: the dataset is outside the dataset roots, or a weights file (`init_from`,
            `encoder_weights`) outside the artifacts root and the dataset roots.
        DatasetRejected: the dataset failed inspection (details: the report).
    """
    check_json(raw, "config")
    data = dict(raw)
    registered = None
    if isinstance(data.get("dataset"), str) and data["dataset"]:
        registered = datasets.by_name(session, data["dataset"])
        if registered is not None:
            data["dataset"] = registered.path
    try:
        config = TrainConfig.model_validate(data)
    except ValidationError as error:
        details = describe_validation_error(error)
        summary = "; ".join(f"{item['field']}: {item['message']}" for item in details[:3])
        raise InvalidInput(f"invalid training config: {summary}", details) from error
    check_config_caps(config, settings)
    _check_paths(config)
    folder = resolve_dataset_path(settings, config.dataset, field="config.dataset")
    if registered is None:
        registered = datasets.by_path(session, str(folder))
    config = resolve_weight_files(
        session, settings, config.model_copy(update={"dataset": str(folder)})
    )
    report = report_for_config(session, config, registered)
    check_dataset_caps(config, settings, report)
    name = registered.name if registered is not None else Path(folder).name[:MAX_NAME]
    return PreparedConfig(config=config, dataset=registered, dataset_name=name, report=report)


def _check_paths(config: TrainConfig) -> None:
    """InvalidInput for a path of the config that cannot name one on the server."""
    for name in ("dataset", *WEIGHT_FIELDS):
        raw = getattr(config, name)
        problem = server_path_problem(raw) if raw else None
        if problem is not None:
            field = f"config.{name}"
            raise InvalidInput(f"{field}: {problem}", [{"field": field, "message": problem}])


def gpus_of(config: Mapping[str, Any]) -> int:
    """The slots (GPUs) a training config asks for: its `gpus`, 1 when it names none."""
    gpus = config.get("gpus", 1)
    if isinstance(gpus, bool) or not isinstance(gpus, int) or not 1 <= gpus <= MAX_GPUS:
        message = f"a whole number of GPUs from 1 to {MAX_GPUS}, got {gpus!r}"
        raise InvalidInput(
            f"config.gpus: {message}", [{"field": "config.gpus", "message": message}]
        )
    return gpus


def placement_note(session: Session, settings: Settings, run: Run) -> str | None:
    """Why a queued run cannot start: it needs more slots than any online worker of its queue
    owns. None when one fits, when the run is not queued, or when no worker of it is online."""
    if run.status != "queued" or run.external:
        return None
    seen_after = utcnow() - timedelta(seconds=settings.heartbeat_timeout_s)
    largest = largest_capacity(session, run.queue, seen_after)
    if largest is None or run.gpus <= largest:
        return None
    return f"needs {run.gpus} GPUs; the largest online worker of queue {run.queue!r} has {largest}"


def _training_run(
    prepared: PreparedConfig,
    *,
    name: str | None,
    notes: str,
    priority: int,
    queue: str,
    max_retries: int,
) -> Run:
    config = prepared.config
    dumped = config.model_dump(mode="json")
    now = utcnow()
    return Run(
        name=name or f"{config.model}-{prepared.dataset_name}"[:MAX_NAME],
        status="queued",
        external=False,
        config=dumped,
        gpus=gpus_of(dumped),
        notes=notes,
        priority=priority,
        queue=queue,
        dataset_id=prepared.dataset.id if prepared.dataset is not None else None,
        dataset_name=prepared.dataset_name,
        dataset_path=config.dataset,
        model=config.model,
        attempt=0,
        max_retries=max_retries,
        resume_requested=False,
        created_at=now,
        updated_at=now,
        epochs_done=0,
        epochs_planned=config.epochs,
        monitor=config.monitor,
        class_names=list(prepared.report.get("class_names") or []) or None,
    )


def _created(session: Session, run: Run, tags: Sequence[str]) -> Run:
    repository.add_run(session, run, tags)
    record_event(
        session,
        "run",
        run.id,
        {"action": "created", "status": run.status, "name": run.name, "external": run.external},
    )
    return run


def tracked_run_by_key(session: Session, client_key: str | None) -> Run | None:
    """The run a tracking client created with `client_key`, if any."""
    if client_key is None:
        return None
    return session.scalars(select(Run).where(Run.client_key == client_key)).one_or_none()


def open_external_run(session: Session, settings: Settings, body: RunCreate) -> tuple[Run, bool]:
    """The external run `body` describes, and True; or the run its `client_key` made already,
    and False.

    A client that timed out retries while its first request may still be inserting: the later
    insert then fails on the key's unique index, inside a savepoint, and answers the run the
    first one made.
    """
    existing = tracked_run_by_key(session, body.client_key)
    if existing is not None:
        return existing, False
    try:
        with session.begin_nested():
            return _external_run(session, settings, body), True
    except IntegrityError:
        existing = tracked_run_by_key(session, body.client_key)
        if existing is None:
            raise
        return existing, False


def _external_config(raw: dict[str, Any]) -> TrainConfig:
    """The TrainConfig of a run trained elsewhere: checked, but its paths name files on that
    machine, so neither the dataset nor weight files are resolved here, nor the caps applied."""
    check_json(raw, "config")
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as error:
        details = describe_validation_error(error)
        summary = "; ".join(f"{item['field']}: {item['message']}" for item in details[:3])
        raise InvalidInput(f"invalid training config: {summary}", details) from error


def _external_run(session: Session, settings: Settings, body: RunCreate) -> Run:
    check_json(body.params, "params")
    config = _external_config(body.config) if body.config is not None else None
    if body.resumed_from is not None and session.get(Run, body.resumed_from) is None:
        message = f"run {body.resumed_from} does not exist"
        raise InvalidInput(
            f"resumed_from: {message}", [{"field": "resumed_from", "message": message}]
        )
    now = utcnow()
    started = min(body.started_at, now) if body.started_at is not None else now
    dumped = config.model_dump(mode="json") if config is not None else None
    dataset_name = Path(config.dataset).name[:MAX_NAME] if config is not None else None
    run = Run(
        name=body.name
        or (f"{config.model}-{dataset_name}"[:MAX_NAME] if config is not None else "external"),
        status="running",
        external=True,
        config=dumped,
        params=body.params or {},
        gpus=config.gpus if config is not None else 1,
        notes=body.notes,
        priority=body.priority,
        queue=body.queue or settings.default_queue,
        dataset_name=dataset_name,
        dataset_path=config.dataset if config is not None else None,
        model=config.model if config is not None else None,
        attempt=0,
        max_retries=0,
        resume_requested=False,
        created_at=now,
        updated_at=now,
        started_at=started,
        heartbeat_at=now,
        epochs_done=0,
        epochs_planned=config.epochs if config is not None else None,
        monitor=config.monitor if config is not None else "val/iou",
        client_key=body.client_key,
        environment=body.environment.model_dump(mode="json", exclude_none=True)
        if body.environment is not None
        else None,
        heartbeat_timeout_s=body.heartbeat_timeout_s,
        resumed_from_id=body.resumed_from,
    )
    return _created(session, run, body.tags)


def create_run(session: Session, settings: Settings, task_queue: TaskQueue, body: RunCreate) -> Run:
    """Create a queued training run (sent to the workers after commit); external runs are
    opened by `open_external_run`."""
    assert body.config is not None and not body.external  # RunCreate and the router see to it
    prepared = prepare_config(session, settings, body.config)
    run = _training_run(
        prepared,
        name=body.name,
        notes=body.notes,
        priority=body.priority,
        queue=body.queue or settings.default_queue,
        max_retries=body.max_retries,
    )
    run.fine_tuned_from_id = _existing(session, fine_tune_source(body.config))
    _created(session, run, body.tags)
    enqueue(session, task_queue, run)
    return run


def _existing(session: Session, run_id: int | None) -> int | None:
    """`run_id` when that run exists (lineage never points at nothing)."""
    return run_id if run_id is not None and session.get(Run, run_id) is not None else None


def clone_run(
    session: Session, settings: Settings, task_queue: TaskQueue, run_id: int, body: CloneRequest
) -> Run:
    """A new queued run from `run_id`'s config with `body.overrides` applied."""
    source = repository.get_run(session, run_id)
    if source.config is None:
        raise Conflict(f"run {run_id} is an external run: it has no config to clone")
    check_json(body.overrides, "overrides")
    raw = {**source.config, **body.overrides}
    prepared = prepare_config(session, settings, raw)
    tags = body.tags if body.tags is not None else repository.tags_of(session, [run_id])[run_id]
    run = _training_run(
        prepared,
        name=body.name or f"{source.name} (clone)",
        notes="",
        priority=body.priority if body.priority is not None else source.priority,
        queue=source.queue,
        max_retries=source.max_retries,
    )
    run.cloned_from_id = source.id
    run.fine_tuned_from_id = _existing(session, fine_tune_source(raw))
    _created(session, run, tags)
    enqueue(session, task_queue, run)
    return run


def cancel_run(session: Session, task_queue: TaskQueue, run_id: int) -> Run:
    """Queued: cancelled now (its message is revoked). Running: `cancelling` until the worker
    stops (external runs are cancelled at once). Finished: Conflict."""
    run = repository.get_run(session, run_id, for_update=True)
    if run.status == "queued":
        task_id = run.task_id
        end_now(session, run, "cancelled")
        if task_id is not None:
            after_commit(session, lambda: task_queue.revoke(task_id))
    elif run.status == "running":
        # A script without a heartbeat never hears of the cancel: its run ends now. A tracked
        # run is told by its next heartbeat and finishes itself.
        if run.external and run.heartbeat_timeout_s is None:
            end_now(session, run, "cancelled")
        else:
            run.status = "cancelling"
            session.flush()
            status_event(session, run, "running")
    elif run.status != "cancelling":
        raise Conflict(
            f"run {run_id} is {run.status} already; only queued or running runs can be cancelled"
        )
    return run


def resume_run(
    session: Session, task_queue: TaskQueue, run_id: int, epochs: int | None = None
) -> Run:
    """Queue a failed, cancelled or pruned run again, to continue from its last checkpoint;
    `epochs` (more than done) changes how far it trains, as `segtrack train --resume --set
    epochs=`.

    A run of a sweep is resumed outside it: its trial keeps the status it ended with
    (`Run.trial_status`), so the sweep makes no new trial of it, gives it none of its
    `parallel` slots and its pruner does not stop it again.
    """
    run = repository.get_run(session, run_id, for_update=True)
    if run.external:
        raise Conflict(f"run {run_id} is an external run: its script trains it, not a worker")
    if run.status not in RESUMABLE:
        raise Conflict(
            f"run {run_id} is {run.status}; only {', '.join(RESUMABLE)} runs can be resumed"
        )
    if get_checkpoint(session, run_id, "last") is None:
        raise Conflict(
            f"run {run_id} has no last checkpoint to resume from; clone it to start over"
        )
    if epochs is not None and run.config is not None:
        if epochs <= run.epochs_done:
            message = f"must be above the {run.epochs_done} epochs done, got {epochs}"
            raise InvalidInput(f"epochs: {message}", [{"field": "epochs", "message": message}])
        run.config = {**run.config, "epochs": epochs}
        run.epochs_planned = epochs
    if run.sweep_id is not None and run.trial_status is None:
        run.trial_status = run.status
    run.prune_requested_at = None  # else its worker would stop it again after one epoch
    enqueue(session, task_queue, run, resume=True)
    return run


def patch_run(
    session: Session, task_queue: TaskQueue, run_id: int, body: RunPatch
) -> tuple[Run, list[str]]:
    """Rename, retag, annotate; finish an external run with `status`; re-prioritise a queued run
    or move it to another queue. Returns the run and its tags."""
    run = repository.get_run(session, run_id, for_update=True)
    changed = body.model_dump(exclude_unset=True)
    if body.priority is not None or body.queue is not None:
        _requeue(session, task_queue, run, priority=body.priority, queue=body.queue)
    if body.name is not None:
        run.name = body.name
    if body.notes is not None:
        run.notes = body.notes
    tags = (
        repository.replace_tags(session, run_id, body.tags)
        if body.tags is not None
        else repository.tags_of(session, [run_id])[run_id]
    )
    if body.status is not None:
        if not run.external:
            raise Conflict(
                f"run {run_id} is trained by a worker; only external runs take a status "
                "(use POST /api/v1/runs/{id}/cancel to stop it)"
            )
        if run.status in TERMINAL_STATUSES and run.status != body.status:
            raise Conflict(f"run {run_id} has finished already ({run.status})")
        if run.status not in TERMINAL_STATUSES:  # the same final status again changes nothing
            reason = body.failure_reason if body.status == "failed" else None
            end_now(session, run, body.status, failure_reason=reason)
    session.flush()
    record_event(
        session, "run", run_id, {"action": "updated", "fields": sorted(changed), "name": run.name}
    )
    return run, tags


def _requeue(
    session: Session, task_queue: TaskQueue, run: Run, *, priority: int | None, queue: str | None
) -> None:
    """Change a queued run's priority or queue; it keeps its place in time (`queued_at`).

    Workers take the most urgent queued run of their queues whatever message arrives, so a new
    priority needs no message. A new queue does: one goes to it, and the old one is revoked
    (a copy that still arrives is turned away: it is not the run's latest message).
    """
    if run.status != "queued":
        raise Conflict(
            f"run {run.id} is {run.status}; only queued runs can be re-prioritised or moved to "
            "another queue"
        )
    if priority is not None:
        run.priority = priority
    if queue is not None and queue != run.queue:
        run.queue = queue
        old_task_id = run.task_id
        dispatch(session, task_queue, run)
        if old_task_id is not None:
            after_commit(session, lambda: task_queue.revoke(old_task_id))


def delete_run(
    session: Session, settings: Settings, task_queue: TaskQueue, run_id: int, *, force: bool
) -> None:
    """Delete the run's rows and, after commit, its files. A running run needs `force`."""
    run = repository.get_run(session, run_id, for_update=True)
    if run.status in RUNNING_STATUSES and not force:
        raise Conflict(f"run {run_id} is {run.status}; cancel it first or delete with ?force=true")
    task_id = run.task_id if run.status == "queued" else None
    repository.delete_run(session, run_id)
    record_event(session, "run", run_id, {"action": "deleted", "name": run.name})
    if task_id is not None:
        after_commit(session, lambda: task_queue.revoke(task_id))
    artifacts = settings.artifacts_dir
    after_commit(session, lambda: delete_run_files(artifacts, run_id))


# --- list parameters ------------------------------------------------------------------------------


def parse_metric_condition(text: str) -> MetricCondition:
    """`val/iou>0.8` -> MetricCondition; InvalidInput stating the grammar otherwise."""
    match = _CONDITION.match(text)
    problem = InvalidInput(
        f"invalid metric condition {text!r}: expected {METRIC_GRAMMAR}",
        [{"field": "metric", "message": f"expected {METRIC_GRAMMAR}"}],
    )
    if (
        match is None
        or match["op"] not in METRIC_OPERATORS
        or not _NUMBER.fullmatch(match["value"])
        or "\x00" in match["key"]
    ):
        raise problem
    value = float(match["value"])
    if not math.isfinite(value):
        raise problem
    return MetricCondition(key=match["key"], op=match["op"], value=value)


SORT_HELP = (
    f"one of {', '.join(SORT_FIELDS)}, or a column: config.<key>, params.<key>, "
    "metrics.<key>[.best|.last|.min|.max], tag.<key> (numbers first, by number, then text; "
    "prefix '-' for descending)"
)


def parse_sort(text: str, group_by: str | None = None) -> RunSort:
    """`-best_val_iou` -> descending best_val_iou, `-metrics.val/iou.best` -> descending by a
    column; with `group_by` (a field) the rows come grouped by it first. InvalidInput listing
    what is allowed otherwise."""
    descending = text.startswith("-")
    name = text.lstrip("-+")
    group = parse_group_field(group_by) if group_by else None
    if name in SORT_FIELDS:
        return RunSort(field=name, descending=descending, group=group)
    if "." not in name:
        raise InvalidInput(
            f"cannot sort by {text!r}; sort by {SORT_HELP}",
            [{"field": "sort", "message": f"allowed: {SORT_HELP}"}],
        )
    column = parse_order_field(name)
    return RunSort(field=column.text, descending=descending, column=column, group=group)


def check_list_fields(session: Session, sort: RunSort, columns: Sequence[Field]) -> None:
    """InvalidInput for a column, sort or group over a key no run has (listing those there
    are)."""
    check_fields(session, columns, "columns")
    for field, parameter in ((sort.column, "sort"), (sort.group, "group_by")):
        if field is not None:
            check_fields(session, [field], parameter)


def build_filter(
    session: Session,
    *,
    statuses: Sequence[str],
    tags: Sequence[str],
    text: str | None,
    dataset: str | None,
    model: str | None,
    metrics: Sequence[str],
    external: bool | None = None,
    expression: str | None = None,
) -> RunFilter:
    """A RunFilter from query parameters, with errors naming the allowed values; `expression`
    is in the filter language (`server.run.filter_language`), its keys checked against the
    runs' (`server.run.filter_keys`)."""
    texts = {
        "status": statuses,
        "tag": tags,
        "q": [text or ""],
        "dataset": [dataset or ""],
        "model": [model or ""],
        "metric": metrics,
    }
    for field, values in texts.items():
        if any("\x00" in value for value in values):
            raise InvalidInput(
                f"{field}: {NUL_MESSAGE}", [{"field": field, "message": NUL_MESSAGE}]
            )
    unknown = [status for status in statuses if status not in RUN_STATUSES]
    if unknown:
        raise InvalidInput(
            f"unknown status {unknown[0]!r}; allowed: {', '.join(RUN_STATUSES)}",
            [{"field": "status", "message": f"allowed: {', '.join(RUN_STATUSES)}"}],
        )
    parsed = parse_filter(expression) if expression else None
    tag_texts = check_fields(session, fields_of(parsed), "filter") if parsed is not None else {}
    return RunFilter(
        expression=parsed,
        tag_texts=tag_texts,
        statuses=tuple(statuses),
        tags=tuple(tags),
        text=text.strip() if text and text.strip() else None,
        dataset=dataset or None,
        model=model or None,
        external=external,
        metrics=tuple(parse_metric_condition(condition) for condition in metrics),
    )
