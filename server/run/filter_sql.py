"""Filter expressions (`server.run.filter_language`) -> SQLAlchemy conditions on `runs`.

Every value is a bound parameter. Two-valued logic: a term is true or false for each run; a
run that lacks the key compared is false for every comparison, `!=` and `not in` included
(they match runs that have the key with another value), and `not` is the complement, so
`not config.x = 1` also matches runs without `config.x`.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, not_, or_, select

from server.bounds import INT32_MAX, INT32_MIN
from server.errors import InvalidInput
from server.models import RUN_STATUSES, MetricSummary, Run, RunTag, Sweep
from server.run.filter_language import (
    And,
    Comparison,
    Expression,
    Field,
    Not,
    Or,
)
from server.run.filter_tokens import Value
from server.run.json_fields import (
    containment_applies,
    json_boolean_text,
    json_contains,
    json_number,
    json_present,
    json_text,
)

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)


@dataclass(frozen=True)
class FilterContext:
    """What compiling needs besides the expression.

    Attributes:
        dialect: the database's dialect name (`postgresql` or `sqlite`).
        tag_texts: for each key of a `tag.<key>` term, the `key=value` tags that exist.
    """

    dialect: str
    tag_texts: Mapping[str, Sequence[str]] = field(default_factory=dict)


def metric_column(field: Field) -> Any:
    """The metric_summaries column a `metrics.<key>.<aggregate>` field reads."""
    return {
        "last": MetricSummary.last_value,
        "min": MetricSummary.min_value,
        "max": MetricSummary.max_value,
    }[field.summary]


def condition(expression: Expression, context: FilterContext) -> ColumnElement[bool]:
    """The WHERE condition of `expression`.

    Raises:
        InvalidInput: a value of the wrong type for its field (text for a metric, an unknown
            status, an order comparison of true/false), naming the field and its position.
    """
    if isinstance(expression, And):
        return and_(*(condition(operand, context) for operand in expression.operands))
    if isinstance(expression, Or):
        return or_(*(condition(operand, context) for operand in expression.operands))
    if isinstance(expression, Not):
        # NULL (a missing value deep inside) counts as false, so NOT turns it into true.
        return not_(func.coalesce(condition(expression.operand, context), false()))
    if isinstance(expression, Comparison):
        return _Term(expression.field, context).compare(expression.op, expression.value)
    return _Term(expression.field, context).member(expression.values, expression.negated)


def _problem(field: Field, message: str) -> InvalidInput:
    text = f"filter at position {field.position}: {field.text} {message}"
    return InvalidInput(
        text,
        [
            {
                "field": "filter",
                "message": f"{field.text} {message}",
                "position": str(field.position),
            }
        ],
    )


class _Term:
    """One comparison's field, turned into SQL for one operator or one list of values."""

    def __init__(self, field: Field, context: FilterContext) -> None:
        self.field = field
        self.context = context

    def compare(self, op: str, value: Value) -> ColumnElement[bool]:
        if op == "!=":
            return and_(self.present(), not_(func.coalesce(self.equal_any([value]), false())))
        if op == "=":
            return self.equal_any([value])
        return self.order(op, value)

    def member(self, values: Sequence[Value], negated: bool) -> ColumnElement[bool]:
        matches = self.equal_any(values)
        if negated:
            return and_(self.present(), not_(func.coalesce(matches, false())))
        return matches

    # --- per source ---------------------------------------------------------------------------

    def present(self) -> ColumnElement[bool]:
        """Whether the run has a value for the field at all."""
        source = self.field.source
        if source in ("config", "params"):
            return json_present(self._json_column(), self.field.path, self.context.dialect)
        if source == "metrics":
            return exists().where(
                MetricSummary.run_id == Run.id, MetricSummary.key == self.field.key
            )
        if source == "tag_value":
            return self._tags_matching(lambda _: True)
        if source in ("tag", "status", "name", "id"):
            return Run.id.is_not(None)
        column = {"model": Run.model, "dataset": Run.dataset_name, "sweep": Run.sweep_id}[source]
        return column.is_not(None)

    def equal_any(self, values: Sequence[Value]) -> ColumnElement[bool]:  # noqa: PLR0911 (a branch per field)
        source = self.field.source
        if source in ("config", "params"):
            return self._json_equal_any(values)
        if source == "metrics":
            numbers = [self._number(value) for value in values]
            return exists().where(
                MetricSummary.run_id == Run.id,
                MetricSummary.key == self.field.key,
                metric_column(self.field).in_(numbers),
            )
        if source == "tag":
            texts = [self._text(value) for value in values]
            return Run.id.in_(select(RunTag.run_id).where(RunTag.tag.in_(texts)))
        if source == "tag_value":
            return self._tags_matching(lambda text: any(_tag_equal(text, v) for v in values))
        if source == "status":
            return Run.status.in_([self._status(value) for value in values])
        if source == "id":
            return Run.id.in_([self._run_id(value) for value in values])
        if source == "sweep":
            names = [value for value in values if isinstance(value, str)]
            ids = [self._run_id(value) for value in values if not isinstance(value, str)]
            by_name = select(Sweep.id).where(Sweep.name.in_(names))
            return or_(Run.sweep_id.in_(ids), Run.sweep_id.in_(by_name))
        texts = [self._text(value) for value in values]
        if source == "dataset":
            return or_(Run.dataset_name.in_(texts), Run.dataset_path.in_(texts))
        return (Run.model if source == "model" else Run.name).in_(texts)

    def order(self, op: str, value: Value) -> ColumnElement[bool]:
        compare = _COMPARE[op]
        source = self.field.source
        if isinstance(value, bool) or source in ("tag", "status", "sweep"):
            raise _problem(self.field, f"takes = != in and not in, not {op}")
        if source in ("config", "params"):
            dialect = self.context.dialect
            read = json_number if isinstance(value, int | float) else json_text
            return compare(read(self._json_column(), self.field.path, dialect), value)  # type: ignore[no-any-return]
        if source == "metrics":
            return exists().where(
                MetricSummary.run_id == Run.id,
                MetricSummary.key == self.field.key,
                compare(metric_column(self.field), self._number(value)),
            )
        if source == "tag_value":
            return self._tags_matching(lambda text: _tag_compare(text, compare, value))
        if source == "id":
            return compare(Run.id, self._run_id(value))  # type: ignore[no-any-return]
        column = {"dataset": Run.dataset_name, "model": Run.model, "name": Run.name}[source]
        return compare(column, self._text(value))  # type: ignore[no-any-return]

    # --- helpers ------------------------------------------------------------------------------

    def _json_column(self) -> Any:
        return Run.config if self.field.source == "config" else Run.params

    def _json_equal_any(self, values: Sequence[Value]) -> ColumnElement[bool]:
        column, path, dialect = self._json_column(), self.field.path, self.context.dialect
        if containment_applies(path, dialect):
            return or_(*(json_contains(column, path, value) for value in values))
        booleans = [("true" if value else "false") for value in values if isinstance(value, bool)]
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        texts = [value for value in values if isinstance(value, str)]
        parts: list[ColumnElement[bool]] = []
        if numbers:
            parts.append(json_number(column, path, dialect).in_(numbers))
        if texts:
            parts.append(json_text(column, path, dialect).in_(texts))
        if booleans:
            parts.append(json_boolean_text(column, path, dialect).in_(booleans))
        return or_(*parts)

    def _tags_matching(self, accept: Callable[[str], bool]) -> ColumnElement[bool]:
        prefix = len(self.field.key) + 1
        texts = self.context.tag_texts.get(self.field.key, ())
        chosen = [text for text in texts if accept(text[prefix:])]
        if not chosen:
            return false()
        return Run.id.in_(select(RunTag.run_id).where(RunTag.tag.in_(chosen)))

    def _number(self, value: Value) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _problem(self.field, f"is a number; compare it with a number, not {value!r}")
        return float(value)

    def _text(self, value: Value) -> str:
        if not isinstance(value, str):
            raise _problem(self.field, f"is text; quote the value: '{value}'")
        return value

    def _status(self, value: Value) -> str:
        if value not in RUN_STATUSES:
            raise _problem(self.field, f"is one of {', '.join(RUN_STATUSES)}; not {value!r}")
        return str(value)

    def _run_id(self, value: Value) -> int:
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not INT32_MIN <= value <= INT32_MAX
        ):
            raise _problem(self.field, f"is a whole number (an id), not {value!r}")
        return value


def _tag_value(text: str, like: Value) -> Value | None:
    """A key:value tag's value read as the type of `like` (None when it cannot be)."""
    if isinstance(like, bool):
        lowered = text.lower()
        return lowered == "true" if lowered in ("true", "false") else None
    if isinstance(like, int | float):
        return float(text) if _NUMBER.fullmatch(text) else None
    return text


def _tag_equal(text: str, value: Value) -> bool:
    read = _tag_value(text, value)
    return read is not None and read == value


def _tag_compare(text: str, compare: Callable[[Any, Any], Any], value: Value) -> bool:
    read = _tag_value(text, value)
    return read is not None and bool(compare(read, value))
