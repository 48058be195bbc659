"""SQL of the runs list: the filters (query parameters and the filter language), the order
(a sort field or column, optionally grouped), keyset cursors, pages and group counts. Never
commits."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Double,
    Select,
    and_,
    cast,
    exists,
    extract,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session, defer

from server.bounds import INT32_MAX, INT32_MIN, ascii_id
from server.errors import InvalidInput
from server.models import MetricSummary, Run, RunTag, UTCDateTime, utcnow
from server.run import filter_sql
from server.run.columns import order_column, tag_order_columns
from server.run.filter_language import Expression, Field
from server.run.json_fields import json_bound

_TEXT_SORTS = {"name", "status", "model", "dataset_name"}
_NUMBER_SORTS = {"best_val_iou", "last_val_iou", "duration"}
_INTEGER_SORTS = {"epochs_done", "priority", "id"}
SORT_FIELDS: tuple[str, ...] = (
    "created_at",
    "name",
    "status",
    "model",
    "dataset_name",
    "best_val_iou",
    "last_val_iou",
    "epochs_done",
    "duration",
    "priority",
    "id",
)
METRIC_OPERATORS: tuple[str, ...] = (">=", "<=", "!=", ">", "<", "=")
_NULLABLE_SORTS = {"best_val_iou", "last_val_iou", "duration", "model", "dataset_name"}


@dataclass(frozen=True)
class MetricCondition:
    """`<key> <op> <value>`, compared with the key's LAST value (from metric_summaries)."""

    key: str
    op: str
    value: float

    def clause(self) -> ColumnElement[bool]:
        last = MetricSummary.last_value
        compare = {
            ">": last > self.value,
            ">=": last >= self.value,
            "<": last < self.value,
            "<=": last <= self.value,
            "=": last == self.value,
            "!=": last != self.value,
        }[self.op]
        return exists().where(
            MetricSummary.run_id == Run.id, MetricSummary.key == self.key, compare
        )


@dataclass(frozen=True)
class RunFilter:
    """Conditions AND-ed together; an empty filter matches every run.

    `expression` is the filter language's (`server.run.filter_language`), its `tag.<key>`
    terms' tags in `tag_texts` (`server.run.filter_keys.check_fields`).
    """

    statuses: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    text: str | None = None
    dataset: str | None = None
    model: str | None = None
    external: bool | None = None
    metrics: tuple[MetricCondition, ...] = field(default_factory=tuple)
    expression: Expression | None = None
    tag_texts: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSort:
    """A sort field (one of SORT_FIELDS, or a `column`'s text) and direction; ties are broken
    by id. With `group`, rows are ordered by the group's value first (ascending, nulls last)."""

    field: str = "created_at"
    descending: bool = True
    column: Field | None = None
    group: Field | None = None

    @property
    def spec(self) -> str:
        text = ("-" if self.descending else "") + self.field
        return f"{self.group.text}|{text}" if self.group is not None else text


def _sort_expression(session: Session, name: str, now: datetime) -> ColumnElement[Any]:
    if name != "duration":
        column: ColumnElement[Any] = getattr(Run, name)
        return column
    # "now" comes from here, not the database: its now() is frozen at the transaction's start.
    end = func.coalesce(Run.finished_at, literal(now, UTCDateTime()))
    if session.get_bind().dialect.name == "postgresql":
        return cast(extract("epoch", end - Run.started_at), Double)
    # SQLite stores UTC text; julianday() reads it and counts days.
    return (func.julianday(end) - func.julianday(Run.started_at)) * literal(86400.0)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(session: Session, run_filter: RunFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if run_filter.statuses:
        conditions.append(Run.status.in_(run_filter.statuses))
    for tag in run_filter.tags:
        conditions.append(Run.id.in_(select(RunTag.run_id).where(RunTag.tag == tag)))
    if run_filter.text:
        pattern = _like(run_filter.text)
        matches: list[ColumnElement[bool]] = [
            Run.name.ilike(pattern, escape="\\"),
            Run.notes.ilike(pattern, escape="\\"),
            Run.dataset_name.ilike(pattern, escape="\\"),
            Run.id.in_(select(RunTag.run_id).where(RunTag.tag.ilike(pattern, escape="\\"))),
        ]
        run_id = ascii_id(run_filter.text)
        if run_id is not None:
            matches.append(Run.id == run_id)
        conditions.append(or_(*matches))
    if run_filter.dataset:
        by_name = or_(
            Run.dataset_name == run_filter.dataset, Run.dataset_path == run_filter.dataset
        )
        dataset_id = ascii_id(run_filter.dataset)
        conditions.append(
            or_(by_name, Run.dataset_id == dataset_id) if dataset_id is not None else by_name
        )
    if run_filter.model:
        conditions.append(Run.model == run_filter.model)
    if run_filter.external is not None:
        conditions.append(Run.external.is_(run_filter.external))
    conditions.extend(condition.clause() for condition in run_filter.metrics)
    if run_filter.expression is not None:
        context = filter_sql.FilterContext(
            dialect=session.get_bind().dialect.name, tag_texts=run_filter.tag_texts
        )
        conditions.append(filter_sql.condition(run_filter.expression, context))
    return conditions


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last row's sort value (and group value) and id, and the "now"
    running durations were measured at (kept for the whole walk, so growing durations do not
    reorder it)."""

    value: Any
    run_id: int
    now: datetime
    group_value: Any = None


def encode_cursor(sort: RunSort, cursor: Cursor) -> str:
    """An opaque cursor: base64 of the sort, the last value(s), id and now as JSON."""
    value = cursor.value.isoformat() if isinstance(cursor.value, datetime) else cursor.value
    data = {"s": sort.spec, "v": value, "id": cursor.run_id, "now": cursor.now.isoformat()}
    if sort.group is not None:
        data["g"] = cursor.group_value
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


def decode_cursor(text: str, sort: RunSort) -> Cursor:
    """The cursor of a page of the same sort, else InvalidInput.

    A cursor comes back from the client, so every part is checked before it reaches SQL: a
    forged one may hold any JSON, and a wrong type or an integer beyond int4 would fail there.
    """
    problem = InvalidInput(
        "invalid cursor: pass the `next_cursor` of the previous page with the same sort",
        [{"field": "cursor", "message": "not a cursor of this list"}],
    )
    try:
        data = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(data, dict) or data.get("s") != sort.spec:
            raise problem
        now = _aware_datetime(data["now"])
        run_id = data["id"]
        if now is None or not _is_int32(run_id):
            raise problem
        value = (
            _column_value(sort.column, data["v"], problem)
            if sort.column is not None
            else _sort_value(sort.field, data["v"], problem)
        )
        group_value = (
            _column_value(sort.group, data["g"], problem) if sort.group is not None else None
        )
        return Cursor(value=value, run_id=run_id, now=now, group_value=group_value)
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError) as error:
        raise problem from error


def _is_int32(value: Any) -> bool:
    return type(value) is int and INT32_MIN <= value <= INT32_MAX


def _aware_datetime(value: Any) -> datetime | None:
    """A timezone-aware datetime from ISO text, or None for anything else."""
    if not isinstance(value, str) or "\x00" in value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else None


def _sort_value(field: str, value: Any, problem: InvalidInput) -> Any:
    """A cursor's sort value, if it has the type of `field`'s column; else `problem`."""
    if field == "created_at":
        moment = _aware_datetime(value)
        if moment is None:
            raise problem
        return moment
    if value is None and field in _NULLABLE_SORTS:
        return None
    if field in _TEXT_SORTS and isinstance(value, str) and "\x00" not in value:
        return value
    if field in _INTEGER_SORTS and _is_int32(value):
        return value
    if field in _NUMBER_SORTS and type(value) in (int, float) and math.isfinite(value):
        return float(value)
    raise problem


def _column_value(field: Field, value: Any, problem: InvalidInput) -> Any:
    """A cursor's value of a column sort or group: a number for metrics, any JSON without NUL
    for config and params (a list or object only on PostgreSQL, checked in `_bound`)."""
    if value is None:
        return None
    if field.source == "metrics":
        if type(value) in (int, float) and math.isfinite(value):
            return float(value)
        raise problem
    if field.source in ("status", "model", "dataset"):
        if isinstance(value, str) and "\x00" not in value:
            return value
        raise problem
    if field.source == "sweep":
        if _is_int32(value):
            return value
        raise problem
    if field.source == "tag_value":
        return _tag_cursor_value(value, problem)
    if "\\u0000" in orjson.dumps(value).decode():
        raise problem
    return value


def _tag_cursor_value(value: Any, problem: InvalidInput) -> list[Any]:
    """A tag column's cursor value: [its number or None, its text or None]."""
    if not isinstance(value, list) or len(value) != 2:
        raise problem
    number, text = value
    if number is not None and not (type(number) in (int, float) and math.isfinite(number)):
        raise problem
    if text is not None and not (isinstance(text, str) and "\x00" not in text):
        raise problem
    return [float(number) if number is not None else None, text]


@dataclass(frozen=True)
class _OrderKey:
    """One key of the list's order; NULLs come last in either direction."""

    expression: ColumnElement[Any]
    descending: bool
    nullable: bool
    json: bool = False
    """A config or params value: cursor values are bound as JSON (`json_bound`)."""
    join: tuple[Any, ColumnElement[bool]] | None = None


def _order_keys(session: Session, sort: RunSort, now: datetime) -> list[_OrderKey]:
    dialect = session.get_bind().dialect.name
    keys: list[_OrderKey] = []
    for column, descending in ((sort.group, False), (sort.column, sort.descending)):
        if column is not None and column.source == "tag_value":
            for order in tag_order_columns(column, dialect):
                keys.append(_OrderKey(order.expression, descending, True, join=order.join))
        elif column is not None:
            is_json = column.source in ("config", "params")
            order = order_column(column, dialect)
            keys.append(_OrderKey(order.expression, descending, True, is_json, order.join))
    if sort.column is None:
        expression = _sort_expression(session, sort.field, now)
        keys.append(_OrderKey(expression, sort.descending, sort.field in _NULLABLE_SORTS))
    return keys


def _bound(session: Session, key: _OrderKey, value: Any, problem: InvalidInput) -> Any:
    if not key.json or value is None:
        return value
    dialect = session.get_bind().dialect.name
    if dialect != "postgresql" and isinstance(value, list | dict):
        raise problem  # SQLite reads objects and arrays as text: a forged cursor
    return json_bound(value, dialect)


def _after(
    keys: Sequence[_OrderKey], values: Sequence[Any], run_id: int, descending: bool
) -> ColumnElement[bool]:
    """Rows after (values..., run_id) in the order (keys..., id), nulls last in each key."""
    after: ColumnElement[bool] = Run.id < run_id if descending else Run.id > run_id
    for key, value in zip(reversed(keys), reversed(values), strict=True):
        column = key.expression
        if value is None:
            after = and_(column.is_(None), after)
            continue
        beyond = column < value if key.descending else column > value
        if key.nullable:
            beyond = or_(beyond, column.is_(None))
        after = or_(beyond, and_(column == value, after))
    return after


def _ordered(
    session: Session, run_filter: RunFilter, sort: RunSort, now: datetime
) -> tuple[Select[Any], list[_OrderKey]]:
    keys = _order_keys(session, sort, now)
    order = []
    for key in keys:
        direction = key.expression.desc() if key.descending else key.expression.asc()
        order.append(direction.nulls_last() if key.nullable else direction)
    tie = Run.id.desc() if sort.descending else Run.id.asc()
    labelled = [key.expression.label(f"order_{index}") for index, key in enumerate(keys)]
    query = select(Run, *labelled).select_from(Run)
    for key in keys:
        if key.join is not None:
            query = query.outerjoin(*key.join)
    return query.where(*_conditions(session, run_filter)).order_by(*order, tie), keys


def _two_keys(sort: RunSort) -> bool:
    """Whether the sort column orders by two keys (a tag's number and text)."""
    return sort.column is not None and sort.column.source == "tag_value"


def list_runs(
    session: Session,
    run_filter: RunFilter,
    sort: RunSort,
    *,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[Run], str | None]:
    """One page of runs (config, params, notes and traceback not loaded) and the next cursor."""
    position = decode_cursor(cursor, sort) if cursor else None
    now = position.now if position is not None else utcnow()
    query, keys = _ordered(session, run_filter, sort, now)
    query = query.options(
        defer(Run.config),
        defer(Run.params),
        defer(Run.notes),
        defer(Run.failure_traceback),
        defer(Run.class_names),
    )
    if position is not None:
        problem = InvalidInput(
            "invalid cursor: pass the `next_cursor` of the previous page with the same sort",
            [{"field": "cursor", "message": "not a cursor of this list"}],
        )
        value = position.value if _two_keys(sort) else [position.value]
        raw = value if sort.group is None else [position.group_value, *value]
        values = [
            _bound(session, key, value, problem) for key, value in zip(keys, raw, strict=True)
        ]
        query = query.where(_after(keys, values, position.run_id, sort.descending))
    rows = session.execute(query.limit(limit + 1)).all()
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit and page:
        last_run, *last_values = page[-1]
        group_value = last_values[0] if sort.group is not None else None
        last = last_values[-2:] if _two_keys(sort) else last_values[-1]
        cursor_state = Cursor(last, last_run.id, now, group_value=group_value)
        next_cursor = encode_cursor(sort, cursor_state)
    return [row[0] for row in page], next_cursor


def group_counts(
    session: Session, run_filter: RunFilter, group: Field, *, limit: int
) -> list[tuple[Any, int]]:
    """The first `limit` values of `group` among the matching runs (ascending, nulls last),
    each with its number of runs."""
    order = order_column(group, session.get_bind().dialect.name)
    expression = order.expression.label("group_value")
    query = select(expression, func.count()).select_from(Run)
    if order.join is not None:
        query = query.outerjoin(*order.join)
    query = (
        query.where(*_conditions(session, run_filter))
        .group_by(expression)
        .order_by(expression.asc().nulls_last())
        .limit(limit)
    )
    return [(value, count) for value, count in session.execute(query)]


def first_page_statement(
    session: Session, run_filter: RunFilter, sort: RunSort, *, limit: int
) -> Select[Any]:
    """The SELECT of a list's first page (what `bench/runs_table.py` explains)."""
    query, _ = _ordered(session, run_filter, sort, utcnow())
    return query.limit(limit + 1)


def iter_runs(
    session: Session, run_filter: RunFilter, sort: RunSort, *, limit: int
) -> Iterator[Run]:
    """Every matching run in full, up to `limit` (exports)."""
    query, _ = _ordered(session, run_filter, sort, utcnow())
    for row in session.execute(query.limit(limit)):
        yield row[0]
