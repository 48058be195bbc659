"""Values inside the runs' JSON columns (`config`, `params`) as SQL on PostgreSQL and SQLite.

PostgreSQL stores them as jsonb and SQLite as JSON text read by its json1 functions; the two
spell paths, types and casts differently. Every comparison here reads a value only when it has
the JSON type compared with (a number for numbers, a string for text), so `config.x > 1` never
casts a string and never errors: a value of another type is NULL, which no comparison matches.
Paths and values are always bound parameters.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Double,
    SQLColumnExpression,
    Text,
    case,
    cast,
    func,
    literal,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

JsonPath = tuple[str, ...]


def _sqlite_path(path: JsonPath) -> ColumnElement[str]:
    # Keys never hold '"' (the filter language refuses it), so quoting each one is enough.
    return literal("$" + "".join(f'."{key}"' for key in path), Text())


def _pg_path(column: SQLColumnExpression[Any], path: JsonPath) -> ColumnElement[Any]:
    return column.op("#>", return_type=JSONB())(literal(list(path), ARRAY(Text())))


def _pg_text(column: SQLColumnExpression[Any], path: JsonPath) -> ColumnElement[str]:
    return column.op("#>>", return_type=Text())(literal(list(path), ARRAY(Text())))


def json_value(
    column: SQLColumnExpression[Any], path: JsonPath, dialect: str
) -> ColumnElement[Any]:
    """The value at `path` for sorting, grouping and showing: jsonb on PostgreSQL, SQLite's
    native value (text for objects and arrays); JSON null and a missing key are SQL NULL."""
    if dialect == "postgresql":
        return func.nullif(_pg_path(column, path), cast(literal("null"), JSONB()), type_=JSONB())
    return func.json_extract(column, _sqlite_path(path))


def json_number(
    column: SQLColumnExpression[Any], path: JsonPath, dialect: str
) -> ColumnElement[float]:
    """The number at `path` as a double; NULL where the value is missing or not a number."""
    if dialect == "postgresql":
        is_number = func.jsonb_typeof(_pg_path(column, path)) == "number"
        return case((is_number, cast(_pg_text(column, path), Double())), else_=None)
    is_number = func.json_type(column, _sqlite_path(path)).in_(("integer", "real"))
    return case((is_number, cast(func.json_extract(column, _sqlite_path(path)), Double())))


def json_text(column: SQLColumnExpression[Any], path: JsonPath, dialect: str) -> ColumnElement[str]:
    """The string at `path`; NULL where the value is missing or not a string."""
    if dialect == "postgresql":
        is_string = func.jsonb_typeof(_pg_path(column, path)) == "string"
        return case((is_string, _pg_text(column, path)), else_=None)
    is_string = func.json_type(column, _sqlite_path(path)) == "text"
    return case((is_string, func.json_extract(column, _sqlite_path(path))), else_=None)


def json_boolean_text(
    column: SQLColumnExpression[Any], path: JsonPath, dialect: str
) -> ColumnElement[str]:
    """'true' or 'false' for a boolean at `path`; NULL for anything else."""
    if dialect == "postgresql":
        is_boolean = func.jsonb_typeof(_pg_path(column, path)) == "boolean"
        return case((is_boolean, _pg_text(column, path)), else_=None)
    kind = func.json_type(column, _sqlite_path(path))
    return case((kind.in_(("true", "false")), kind), else_=None)


def json_contains(
    column: SQLColumnExpression[Any], path: JsonPath, value: str | float | bool
) -> ColumnElement[bool]:
    """PostgreSQL only: the value at `path` equals `value` (of the same JSON type; numbers by
    value, so 1e-3 matches 0.001), as jsonb containment, which the GIN index on the column
    answers. None of `path`'s keys may be all digits (`#>` reads those as array positions)."""
    document: Any = value
    for key in reversed(path):
        document = {key: document}
    return column.op("@>", return_type=Boolean())(json_bound(document, "postgresql"))


def containment_applies(path: JsonPath, dialect: str) -> bool:
    """Whether `json_contains` means the same as comparing the value at `path`."""
    return dialect == "postgresql" and not any(key.isdigit() for key in path)


def json_present(
    column: SQLColumnExpression[Any], path: JsonPath, dialect: str
) -> ColumnElement[bool]:
    """True where `path` holds a value other than JSON null."""
    return json_value(column, path, dialect).is_not(None)


def json_bound(value: Any, dialect: str) -> ColumnElement[Any]:
    """A cursor's sort value as a parameter comparable with `json_value`."""
    if dialect == "postgresql":
        return cast(literal(orjson.dumps(value).decode(), Text()), JSONB())
    return literal(value)
