"""Live events: an `events` outbox row per change, a nudge on Redis after commit, and readers.

Publishing: `record_event` adds a row in the caller's transaction, so an event exists exactly when
its change was committed; after the commit `EventNotifier.notify` (or `notify_committed`) publishes
a small message on the Redis channel `segtrack:events`. Subscribing: `Subscription` yields rows with
id greater than the last one seen, woken by that channel, or polling the table every
`event_poll_interval_s` when no Redis is configured (embedded mode).

Events of one run carry its `run_id`; events that belong to no run (`dataset` changes) have none.
A run's stream delivers both, so a run page follows its dataset's colours on the same connection.

Ids come from a sequence, so a transaction that started earlier can commit a smaller id after a
larger one was read. `_Cursor` keeps such gaps open for `GAP_WAIT_S` and delivers late rows once.
A filtered stream (one run, some kinds) also reads the ids of the events it skips, so those are
not taken for gaps and its position moves on while nothing matches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from types import TracebackType
from typing import Any, Literal, cast, get_args

import anyio
import anyio.to_thread
import redis
import redis.asyncio
from sqlalchemy import Table, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from server.db import NOTIFIER_KEY, after_commit
from server.models import Event, utcnow

logger = logging.getLogger(__name__)

EventKind = Literal["run", "status", "metrics", "preview", "checkpoint", "dataset"]
"""Every kind of event that is recorded; streams can be filtered by them."""
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)

CHANNEL = "segtrack:events"
EVENTS = cast(Table, Event.__table__)
GAP_WAIT_S = 5.0
"""How long an id missing below delivered ones may still show up (a slow transaction)."""
REDIS_FALLBACK_POLL_S = 2.0
"""With Redis, the table is still read this often in case a notification was lost."""
BATCH = 500
MAX_READ = 10 * BATCH
"""Events read per wake-up at most; a stream that fell further behind catches up over wake-ups."""
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


def record_event(
    session: Session, kind: EventKind, run_id: int | None, payload: dict[str, Any]
) -> None:
    """Add an event in the session's transaction; it is published after the commit.

    Kinds (`EVENT_KINDS`): `run` (created, updated or deleted), `status`, `metrics`, `preview`,
    `checkpoint`, all with the run's id; and `dataset` with no run id (`{"action": "colors",
    "dataset_id", "name", "class_colors"}` when a dataset's class colours change). Payloads are
    small JSON objects.
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
    """Publishes "new events committed" on Redis; does nothing without a Redis URL."""

    def __init__(self, redis_url: str | None) -> None:
        self.redis_url = redis_url
        self._client: redis.Redis | None = None

    def notify(self) -> None:
        """Tell subscribers to read the events table now. Failures are logged, never raised."""
        if self.redis_url is None:
            return
        try:
            if self._client is None:
                self._client = redis.Redis.from_url(
                    self.redis_url, socket_connect_timeout=1.0, socket_timeout=1.0
                )
            self._client.publish(CHANNEL, b"1")
        except redis.RedisError as error:
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


def event_ids(session: Session, after_id: int, *, limit: int = MAX_READ) -> list[int]:
    """Ids of committed events above `after_id`, in order (read from the primary key alone)."""
    query = select(Event.id).where(Event.id > after_id).order_by(Event.id).limit(limit)
    return list(session.scalars(query))


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


class _Cursor:
    """Which ids were delivered: everything up to `floor`, plus `seen` above it.

    An id below the newest delivered one that is still missing (a gap) keeps `floor` under it for
    up to GAP_WAIT_S, so its row is delivered if its transaction commits late.
    """

    def __init__(self, floor: int) -> None:
        self.floor = floor
        self.seen: set[int] = set()
        self.gaps: dict[int, float] = {}

    def accept(
        self, rows: list[EventRecord], now: float, committed: Iterable[int] = ()
    ) -> list[EventRecord]:
        """The rows not delivered before. `committed`: with a filtered read, the ids of every
        event it went over, so those the filter left out are no gaps."""
        fresh = [row for row in rows if row.id > self.floor and row.id not in self.seen]
        known = {row.id for row in fresh} | {id_ for id_ in committed if id_ > self.floor}
        self.seen |= known
        for id_ in known:
            self.gaps.pop(id_, None)
        top = max(self.seen, default=self.floor)
        for missing in range(self.floor + 1, top):
            if missing not in self.seen:
                self.gaps.setdefault(missing, now)
        self.gaps = {gap: since for gap, since in self.gaps.items() if now - since < GAP_WAIT_S}
        self.floor = (min(self.gaps) - 1) if self.gaps else top
        self.seen = {seen for seen in self.seen if seen > self.floor}
        return fresh

    @property
    def waiting(self) -> bool:
        return bool(self.gaps)


class _PollWaiter:
    """Waits a fixed interval between reads (embedded mode)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval

    async def __aenter__(self) -> _PollWaiter:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def wait(self, timeout: float) -> None:
        await anyio.sleep(min(self.interval, timeout))


class _RedisWaiter:
    """Waits for a message on the events channel (or the timeout)."""

    def __init__(self, url: str) -> None:
        self.client = redis.asyncio.Redis.from_url(url)
        self.pubsub = self.client.pubsub()

    async def __aenter__(self) -> _RedisWaiter:
        await self.pubsub.subscribe(CHANNEL)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with anyio.CancelScope(shield=True):
            await self.pubsub.aclose()  # type: ignore[no-untyped-call]
            await self.client.aclose()

    async def wait(self, timeout: float) -> None:
        message = await self.pubsub.get_message(
            ignore_subscribe_messages=True, timeout=min(timeout, REDIS_FALLBACK_POLL_S)
        )
        # Coalesce a burst of notifications into one read of the table.
        while message is not None:
            message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=0)


class Subscription:
    """Committed events as they arrive, from the moment the subscription is entered.

    `async with Subscription(...) as events:` subscribes (to Redis, when configured) and fixes
    the starting id before returning, so nothing committed after that point is missed; then
    `async for record in events` yields each event, or None when `keepalive_s` passed without one.

    Args:
        factory: Sessions to read the events table with (one short read per wake-up).
        redis_url: Wait for notifications on Redis; None polls every `poll_interval_s`.
        run_id: Only this run's events and those of no run (see `fetch_events`).
        kinds: Only events of these kinds; None: every kind.
        after_id: Resume after this id (SSE Last-Event-ID); None starts with the next new event.
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        redis_url: str | None,
        poll_interval_s: float,
        run_id: int | None = None,
        kinds: Sequence[EventKind] | None = None,
        after_id: int | None = None,
        keepalive_s: float = 15.0,
    ) -> None:
        self.factory = factory
        self.run_id = run_id
        self.kinds = tuple(kinds or ())
        self.after_id = after_id
        self.keepalive_s = keepalive_s
        self.waiter: _RedisWaiter | _PollWaiter = (
            _RedisWaiter(redis_url) if redis_url is not None else _PollWaiter(poll_interval_s)
        )
        self.cursor = _Cursor(0)

    def _newest(self) -> int:
        with self.factory() as session:
            return latest_event_id(session)

    def _read(self, floor: int) -> tuple[list[EventRecord], list[int]]:
        """Events above `floor` (MAX_READ at most) and, with a filter, the ids of every
        committed event the read went over (MAX_READ at most)."""
        filtered = self.run_id is not None or bool(self.kinds)
        rows: list[EventRecord] = []
        committed: list[int] = []
        until: int | None = None
        with self.factory() as session:
            if filtered:
                # Ids first: the events the filter skips are then no gaps, and the read stops
                # at the last of them.
                committed = event_ids(session, floor)
                if not committed:
                    return [], []
                until = committed[-1]
            while True:
                after = rows[-1].id if rows else floor
                page = fetch_events(
                    session, after, until_id=until, run_id=self.run_id, kinds=self.kinds
                )
                rows += page
                if len(page) < BATCH or (until is None and len(rows) >= MAX_READ):
                    break
        return rows, committed

    async def __aenter__(self) -> Subscription:
        # Subscribed before the first read, so no notification falls between the two.
        await self.waiter.__aenter__()
        start = self.after_id
        if start is None:
            start = await anyio.to_thread.run_sync(self._newest)
        self.cursor = _Cursor(start)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.waiter.__aexit__(kind, exc, tb)

    async def __aiter__(self) -> AsyncIterator[EventRecord | None]:
        quiet_since = time.monotonic()
        while True:
            rows, committed = await anyio.to_thread.run_sync(self._read, self.cursor.floor)
            fresh = self.cursor.accept(rows, time.monotonic(), committed)
            for row in fresh:
                yield row
            now = time.monotonic()
            if fresh:
                quiet_since = now
            elif now - quiet_since >= self.keepalive_s:
                yield None
                quiet_since = now
            remaining = max(self.keepalive_s - (time.monotonic() - quiet_since), 0.0)
            # While an id is missing below delivered ones, look again soon.
            await self.waiter.wait(min(remaining, 0.5) if self.cursor.waiting else remaining)
