"""Live events: an `events` outbox row per change, a nudge on Redis after commit, and reads.

Publishing: `record_event` adds a row in the caller's transaction, so an event exists exactly when
its change was committed; after the commit `EventNotifier.notify` (or `notify_committed`) publishes
a small message on the Redis channel `segtrack:events`. Reading: `fetch_events` returns committed
rows after an id; `server.event_hub` is the one reader per process that streams share.

Events of one run carry its `run_id`; events that belong to no run (`dataset` and `sweep` changes)
have none.
A run's stream delivers both, so a run page follows its dataset's colours on the same connection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, lru_cache
from typing import Any, Literal, cast, get_args

import orjson
import redis
from sqlalchemy import Table, func, or_, select
from sqlalchemy.orm import Session

from server.db import NOTIFIER_KEY, after_commit
from server.models import Event, utcnow

logger = logging.getLogger(__name__)

EventKind = Literal[
    "run",
    "status",
    "metrics",
    "preview",
    "checkpoint",
    "file",
    "dataset",
    "validation",
    "sweep",
    "job",
]
"""Every kind of event that is recorded; streams can be filtered by them."""
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)

CHANNEL = "segtrack:events"
EVENTS = cast(Table, Event.__table__)
BATCH = 500
"""Events per read of the table."""
_NOTIFY_REGISTERED = "segtrack.events_notify_registered"


@dataclass(frozen=True)
class EventRecord:
    """One committed event as streams send it."""

    id: int
    kind: str
    run_id: int | None
    created_at: datetime
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The SSE `data` object: id, kind, run_id, created_at and the payload's fields."""
        return {
            **self.payload,
            "id": self.id,
            "kind": self.kind,
            "run_id": self.run_id,
            "created_at": self.created_at.isoformat(),
        }

    @cached_property
    def data(self) -> bytes:
        """`to_dict` as JSON, encoded once however many streams send it."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_UTC_Z)


def record_event(
    session: Session, kind: EventKind, run_id: int | None, payload: dict[str, Any]
) -> None:
    """Add an event in the session's transaction; it is published after the commit.

    Kinds (`EVENT_KINDS`): `run` (created, updated or deleted), `status`, `metrics`, `preview`,
    `checkpoint`, `file` (a file the run logged arrived whole), `validation` (`{"epoch",
    "images"}`: an epoch's confusion matrix and per-image scores were stored), `job`
    (`{"job_id", "job_kind", "status"}`: one of the run's jobs was queued, started, is being
    cancelled or ended), all with the run's id; and with no run id `dataset` (`{"action":
    "colors", "dataset_id", "name", "class_colors"}` when a dataset's class colours change)
    and `sweep` (`{"action", "sweep_id", "status"}` when a sweep changed: runs queued or pruned
    by its controller, its status or settings). Payloads are small JSON objects.
    """
    session.execute(
        EVENTS.insert().values(kind=kind, run_id=run_id, payload=payload, created_at=utcnow())
    )
    notifier: Callable[[], None] | None = session.info.get(NOTIFIER_KEY)
    if notifier is not None and not session.info.get(_NOTIFY_REGISTERED):
        session.info[_NOTIFY_REGISTERED] = True

        def notify_and_rearm() -> None:
            session.info.pop(_NOTIFY_REGISTERED, None)
            notifier()

        after_commit(session, notify_and_rearm)


class EventNotifier:
    """Publishes "new events committed" on Redis; does nothing without a Redis URL.

    After a failed publish it stays quiet for `PAUSE_AFTER_FAILURE_S`, so a Redis outage does not
    add a connection attempt to every write: subscribers read the events table while Redis is
    away and miss nothing.
    """

    PAUSE_AFTER_FAILURE_S = 1.0

    def __init__(self, redis_url: str | None) -> None:
        self.redis_url = redis_url
        self._client: redis.Redis | None = None
        self._paused_until = 0.0

    def notify(self) -> None:
        """Tell subscribers to read the events table now. Failures are logged, never raised."""
        if self.redis_url is None or time.monotonic() < self._paused_until:
            return
        try:
            if self._client is None:
                self._client = redis.Redis.from_url(
                    self.redis_url, socket_connect_timeout=1.0, socket_timeout=1.0
                )
            self._client.publish(CHANNEL, b"1")
        except redis.RedisError as error:
            self._paused_until = time.monotonic() + self.PAUSE_AFTER_FAILURE_S
            logger.warning("could not publish events on %s: %s", self.redis_url, error)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


@lru_cache(maxsize=4)
def _shared_notifier(redis_url: str) -> EventNotifier:
    return EventNotifier(redis_url)


def notify_committed(redis_url: str | None) -> None:
    """Publish after committing events from a session made without a notifier (e.g. a worker)."""
    if redis_url is not None:
        _shared_notifier(redis_url).notify()


# --- reading --------------------------------------------------------------------------------------


def latest_event_id(session: Session) -> int:
    """The largest committed event id (0 when there is none)."""
    return int(session.scalar(select(func.coalesce(func.max(Event.id), 0))) or 0)


def fetch_events(
    session: Session,
    after_id: int,
    *,
    until_id: int | None = None,
    run_id: int | None = None,
    kinds: Sequence[EventKind] | None = None,
    limit: int = BATCH,
) -> list[EventRecord]:
    """Events with id > `after_id` (and <= `until_id`) in id order.

    Args:
        run_id: Only this run's events and those of no run (dataset changes), which concern
            every run; None: all events.
        kinds: Only events of these kinds; None or empty: every kind.
    """
    query = select(Event.id, Event.kind, Event.run_id, Event.created_at, Event.payload).where(
        Event.id > after_id
    )
    if until_id is not None:
        query = query.where(Event.id <= until_id)
    if run_id is not None:
        query = query.where(or_(Event.run_id == run_id, Event.run_id.is_(None)))
    if kinds:
        query = query.where(Event.kind.in_(sorted(set(kinds))))
    rows = session.execute(query.order_by(Event.id).limit(limit)).all()
    return [EventRecord(*row) for row in rows]


def matches(record: EventRecord, run_id: int | None, kinds: Sequence[str]) -> bool:
    """Whether `fetch_events` with these filters returns `record` (the same rules, in memory)."""
    if run_id is not None and record.run_id not in (run_id, None):
        return False
    return not kinds or record.kind in kinds
