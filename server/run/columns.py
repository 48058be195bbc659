"""Chosen columns of the runs table (`columns=config.learning_rate,metrics.val/iou.best,tag.lr`):
their values for a page of runs, and the SQL that sorts or groups the list by one of them.

A `tag.<key>` column sorts by the value of the run's first (sorted) `key=value` tag, as its cell
shows it: values that are numbers first, by number (`3e-4` before `1e-3` before `0.01`), then the
others by text, then runs without such a tag. Its sort is two keys (the number, the text), read
from one outer join of the tags grouped by run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Double, and_, case, cast, func, literal, select
from sqlalchemy.orm import Session, aliased

from server.errors import InvalidInput
from server.models import MetricSummary, Run, RunTag
from server.run.filter_language import Field, parse_field, parse_field_list
from server.run.json_fields import json_value

MAX_COLUMNS = 30
COLUMN_HELP = "config.<key>, params.<key>, metrics.<key>[.best|.last|.min|.max], tag.<key>"
ORDER_HELP = "config.<key>, params.<key>, metrics.<key>[.best|.last|.min|.max], tag.<key>"
GROUP_HELP = "config.<key>, params.<key>, metrics.<key>[.best|.last|.min|.max], status, model, "
GROUP_HELP += "dataset, sweep"
_ROW_FIELDS = {"status": "status", "model": "model", "dataset": "dataset_name", "sweep": "sweep_id"}
_GROUP_COLUMNS: dict[str, Any] = {
    "status": Run.status,
    "model": Run.model,
    "dataset": Run.dataset_name,
    "sweep": Run.sweep_id,
}


def parse_columns(text: str) -> list[Field]:
    """The fields of `columns=` (comma-separated, duplicates dropped), or InvalidInput."""
    fields: list[Field] = []
    for field in parse_field_list(text, "columns", MAX_COLUMNS):
        if field.source not in ("config", "params", "metrics", "tag_value"):
            raise _refused("columns", field, COLUMN_HELP)
        if field.text not in (known.text for known in fields):
            fields.append(field)
    return fields


def parse_order_field(text: str) -> Field:
    """A `sort=` field beyond the summary columns: a config, params, metric or tag column."""
    field = parse_field(text, "sort")
    if field.source not in ("config", "params", "metrics", "tag_value"):
        raise _refused("sort", field, ORDER_HELP)
    return field


def parse_group_field(text: str) -> Field:
    """The field of `group_by=`."""
    field = parse_field(text, "group_by")
    if field.source not in ("config", "params", "metrics", *_GROUP_COLUMNS):
        raise _refused("group_by", field, GROUP_HELP)
    return field


def _refused(parameter: str, field: Field, allowed: str) -> InvalidInput:
    message = f"cannot use {field.text} here; allowed: {allowed}"
    return InvalidInput(f"{parameter}: {message}", [{"field": parameter, "message": message}])


@dataclass(frozen=True)
class OrderColumn:
    """The value the list sorts or groups by, and the outer join it needs (metrics: the
    metric's summary row, joined once rather than looked up row by row)."""

    expression: ColumnElement[Any]
    join: tuple[Any, ColumnElement[bool]] | None = None


def order_column(field: Field, dialect: str) -> OrderColumn:
    """JSON values as the database orders them (numbers by value, text by collation; a key
    holding mixed types orders by type first), metrics as numbers; NULL where the run lacks
    it."""
    if field.source in ("config", "params"):
        column = Run.config if field.source == "config" else Run.params
        return OrderColumn(json_value(column, field.path, dialect))
    if field.source == "metrics":
        summary = aliased(MetricSummary)
        value = {
            "last": summary.last_value,
            "min": summary.min_value,
            "max": summary.max_value,
        }[field.summary]
        on = and_(summary.run_id == Run.id, summary.key == field.key)
        return OrderColumn(value.expression, (summary, on))
    plain: ColumnElement[Any] = _GROUP_COLUMNS[field.source]
    return OrderColumn(plain)


TAG_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,2})?$"
"""A tag value PostgreSQL sorts as a number: the filter language's numbers, with at most two
exponent digits, so that no value of a 100-character tag overflows a double when cast."""


def tag_order_columns(field: Field, dialect: str) -> tuple[OrderColumn, OrderColumn]:
    """The two keys a `tag.<key>` column sorts by: the value as a number (NULL when it is
    none), then as text (NULL when the run has no such tag); both read from one outer join of
    the run's first `key=value` tag."""
    prefix = field.key + "="
    tags = (
        select(
            RunTag.run_id.label("run_id"),
            func.substr(func.min(RunTag.tag), len(prefix) + 1).label("value"),
        )
        .where(RunTag.tag.startswith(prefix, autoescape=True))
        .group_by(RunTag.run_id)
        .subquery()
    )
    value = tags.c.value
    numeric: ColumnElement[bool]
    if dialect == "postgresql":
        numeric = value.op("~", return_type=Boolean)(literal(TAG_NUMBER))
    else:  # SQLite has no regular expressions: a JSON number (within a double's range) is one
        numeric = and_(
            func.json_valid(value) == 1,
            func.json_type(value).in_(("integer", "real")),
            func.abs(cast(value, Double)) < 1e300,
        )
    number = case((numeric, cast(value, Double)), else_=None)
    join = (tags, tags.c.run_id == Run.id)
    return OrderColumn(number, join), OrderColumn(value)


def column_values(
    session: Session,
    columns: Sequence[Field],
    runs: Sequence[Run],
    tags: Mapping[int, Sequence[str]],
) -> dict[int, dict[str, Any]]:
    """Each run's value of each column (None where it has none), keyed by the column's text.
    Besides the chosen columns' sources, a group's field of the row (status, model, dataset,
    sweep) is read from the run."""
    run_ids = [run.id for run in runs]
    found: dict[tuple[int, str], Any] = {}
    if run_ids:
        found.update(_document_values(session, columns, run_ids))
        found.update(_metric_values(session, columns, run_ids))
    for run in runs:
        for field in columns:
            if field.source in _ROW_FIELDS:
                found[run.id, field.text] = getattr(run, _ROW_FIELDS[field.source])
            elif field.source == "tag_value":
                found[run.id, field.text] = tag_value(tags.get(run.id, ()), field.key)
    return {
        run_id: {field.text: found.get((run_id, field.text)) for field in columns}
        for run_id in run_ids
    }


def _document_values(
    session: Session, columns: Sequence[Field], run_ids: Sequence[int]
) -> dict[tuple[int, str], Any]:
    """The config and params columns' values, by (run id, column)."""
    documents = [field for field in columns if field.source in ("config", "params")]
    if not documents:
        return {}
    selected = [
        (Run.config if field.source == "config" else Run.params)[field.path] for field in documents
    ]
    rows = session.execute(select(Run.id, *selected).where(Run.id.in_(run_ids)))
    return {
        (run_id, field.text): value
        for run_id, *values in rows
        for field, value in zip(documents, values, strict=True)
    }


def _metric_values(
    session: Session, columns: Sequence[Field], run_ids: Sequence[int]
) -> dict[tuple[int, str], float]:
    """The metric columns' values, by (run id, column)."""
    metrics = [field for field in columns if field.source == "metrics"]
    if not metrics:
        return {}
    rows = session.execute(
        select(
            MetricSummary.run_id,
            MetricSummary.key,
            MetricSummary.last_value,
            MetricSummary.min_value,
            MetricSummary.max_value,
        ).where(
            MetricSummary.run_id.in_(run_ids),
            MetricSummary.key.in_({field.key for field in metrics}),
        )
    )
    summaries = {(run_id, key): (last, low, high) for run_id, key, last, low, high in rows}
    return {
        (run_id, field.text): _pick(field, summaries[run_id, field.key])
        for run_id in run_ids
        for field in metrics
        if (run_id, field.key) in summaries
    }


def _pick(field: Field, summary: tuple[float, float, float]) -> float:
    last, low, high = summary
    return {"last": last, "min": low, "max": high}[field.summary]


def tag_value(tags: Sequence[str], key: str) -> str | None:
    """The value of the run's first (sorted) tag `key=value`, or None."""
    prefix = key + "="
    return next((tag[len(prefix) :] for tag in sorted(tags) if tag.startswith(prefix)), None)
