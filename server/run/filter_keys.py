"""Which keys the runs have: a filter, column, sort or group over a key that no run has is a
422 listing the keys there are, instead of an empty page. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, exists, func, select, true
from sqlalchemy.orm import Session

from server.errors import InvalidInput
from server.models import MetricSummary, Run, RunTag
from server.run.filter_language import Field
from server.run.json_fields import json_present
from trainer.config import TrainConfig

MAX_LISTED = 100
"""Keys an error message lists at most (the rest are counted)."""
NEWEST_DOCUMENTS = 1000
"""Runs whose config or params keys an error message lists: the newest ones (listing every
run's keys would read every run's document)."""
_MAX_SCANNED = 10_000


def check_fields(session: Session, fields: Sequence[Field], parameter: str) -> dict[str, list[str]]:
    """InvalidInput for the first field over a key no run has; else the `key=value` tags of
    each `tag.<key>` field's key (what `server.run.filter_sql.FilterContext` needs)."""
    dialect = session.get_bind().dialect.name
    tag_texts: dict[str, list[str]] = {}
    for field in fields:
        if field.source in ("config", "params"):
            if (
                field.source == "config"
                and len(field.path) == 1
                and (field.path[0] in TrainConfig.model_fields)
            ):
                continue
            column = Run.config if field.source == "config" else Run.params
            present = json_present(column, field.path, dialect)
            if not session.scalar(select(exists().where(present))):
                keys = _json_keys(session, field.source, dialect)
                raise _unknown(field, parameter, f"{field.source} keys", keys)
        elif field.source == "metrics":
            if not session.scalar(select(exists().where(MetricSummary.key == field.key))):
                query = select(MetricSummary.key).distinct().order_by(MetricSummary.key)
                raise _unknown(field, parameter, "metric keys", _listed(session, query))
        elif field.source == "tag_value" and field.key not in tag_texts:
            texts = _tags_of_key(session, field.key)
            if not texts:
                raise _unknown(field, parameter, "key:value tag keys", _tag_keys(session))
            tag_texts[field.key] = texts
    return tag_texts


def _unknown(field: Field, parameter: str, kind: str, keys: list[str]) -> InvalidInput:
    shown = ", ".join(keys[:MAX_LISTED]) or "none"
    if len(keys) > MAX_LISTED:
        shown += f" (and {len(keys) - MAX_LISTED} more)"
    message = f"no run has {field.text}; {kind} there are: {shown}"
    if field.source == "config":
        message += f" (TrainConfig's and the newest {NEWEST_DOCUMENTS:,} runs')"
    elif field.source == "params":
        message += f" (the newest {NEWEST_DOCUMENTS:,} runs')"
    return InvalidInput(
        f"{parameter} at position {field.position}: {message}",
        [{"field": parameter, "message": message, "position": str(field.position)}],
    )


def _listed(session: Session, query: Select[Any]) -> list[str]:
    return [key for key in session.scalars(query.limit(_MAX_SCANNED)) if key is not None]


def _json_keys(session: Session, source: str, dialect: str) -> list[str]:
    """The top-level keys of the newest runs' configs or params (and TrainConfig's, for
    configs)."""
    column = Run.config if source == "config" else Run.params
    is_object = (
        func.jsonb_typeof(column) == "object"
        if dialect == "postgresql"
        else func.json_type(column) == "object"
    )
    newest = (
        select(column.label("document"))
        .where(is_object)
        .order_by(Run.id.desc())
        .limit(NEWEST_DOCUMENTS)
        .subquery()
    )
    if dialect == "postgresql":
        query = select(func.jsonb_object_keys(newest.c.document).label("key")).distinct()
    else:
        entry = func.json_each(newest.c.document).table_valued("key", name="entry")
        query = select(entry.c.key).select_from(newest).join(entry, true()).distinct()
    keys = set(_listed(session, query))
    if source == "config":
        keys.update(TrainConfig.model_fields)
    return sorted(keys)


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _tags_of_key(session: Session, key: str) -> list[str]:
    """The distinct tags `key=...`."""
    query = select(RunTag.tag).where(RunTag.tag.like(_like_prefix(key + "="), escape="\\"))
    return _listed(session, query.distinct().order_by(RunTag.tag))


def _tag_keys(session: Session) -> list[str]:
    """The keys of the key:value tags there are (the text before a tag's first '=')."""
    query = select(RunTag.tag).where(RunTag.tag.like("%=%")).distinct()
    return sorted({tag.split("=", 1)[0] for tag in _listed(session, query)})


def known_keys(session: Session) -> dict[str, list[str]]:
    """The keys there are, for choosing columns and writing filters: config keys (TrainConfig's
    and the newest runs'), params keys (the newest runs'), metric keys and the keys of
    key:value tags."""
    dialect = session.get_bind().dialect.name
    metrics = select(MetricSummary.key).distinct().order_by(MetricSummary.key)
    return {
        "config": _json_keys(session, "config", dialect),
        "params": _json_keys(session, "params", dialect),
        "metrics": _listed(session, metrics),
        "tags": _tag_keys(session),
    }
