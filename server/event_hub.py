"""One reader of the events table per process, fanning new events out to every open stream.

An idle stream costs a waiting coroutine and a keep-alive now and then: the hub alone reads the
table, woken by one Redis subscription (`segtrack:events`) or, with no Redis (embedded mode), every
`poll_interval_s`. It runs while at least one stream is open.

Losing Redis cuts no stream: the hub reads the table every `poll_interval_s` while it reconnects
with back-off, and reads it again once subscribed, so nothing committed meanwhile is missed. A
failing database read is retried the same way; streams keep their keep-alives.

Ids come from a sequence, so a transaction that started earlier can commit a smaller id after a
larger one was read. `Cursor` keeps such gaps open for `GAP_WAIT_S` and delivers late rows once.

A stream that resumes (Last-Event-ID) or falls behind (a slow client, more than `max_pending`
events waiting) reads what it lacks from the table itself, then takes the hub's events again:
every event after its position, in id order, none twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy.orm import Session, sessionmaker

from server.db import open_session
from server.events import BATCH, CHANNEL, EventKind, EventRecord, fetch_events, latest_event_id
from server.events import matches as event_matches

logger = logging.getLogger(__name__)

GAP_WAIT_S = 5.0
"""How long an id missing below delivered ones may still show up (a slow transaction)."""
GAP_POLL_S = 0.5
"""While an id is missing, the table is read at least this often."""
REDIS_FALLBACK_POLL_S = 2.0
"""With Redis, the table is still read this often in case a notification was lost."""
MAX_READ = 10 * BATCH
"""Events the hub reads per wake-up at most; when it read that many it reads on at once."""
MAX_PENDING = 2 * MAX_READ
"""Events waiting for one slow stream at most; beyond, it reads them from the table itself."""
BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 5.0


class Cursor:
    """Which ids were delivered: everything up to `floor`, plus `seen` above it.

    An id below the newest delivered one that is still missing (a gap) keeps `floor` under it for
    up to GAP_WAIT_S, so its row is delivered if its transaction commits late.
    """

    def __init__(self, floor: int) -> None:
        self.floor = floor
        self.seen: set[int] = set()
        self.gaps: dict[int, float] = {}

    def accept(self, rows: list[EventRecord], now: float) -> list[EventRecord]:
        """The rows not delivered before (`rows`: every committed row above `floor`)."""
        fresh = [row for row in rows if row.id > self.floor and row.id not in self.seen]
        self.seen |= {row.id for row in fresh}
        for row in fresh:
            self.gaps.pop(row.id, None)
        top = self.top
        for missing in range(self.floor + 1, top):
            if missing not in self.seen:
                self.gaps.setdefault(missing, now)
        self.gaps = {gap: since for gap, since in self.gaps.items() if now - since < GAP_WAIT_S}
        self.floor = (min(self.gaps) - 1) if self.gaps else top
        self.seen = {seen for seen in self.seen if seen > self.floor}
        return fresh

    @property
    def top(self) -> int:
        """The newest delivered id."""
        return max(self.seen, default=self.floor)

    @property
    def waiting(self) -> bool:
        return bool(self.gaps)


class Subscription:
    """One stream's events: `async for record in subscription` yields each event after the
    position it started at, or None when `keepalive_s` passed without one.

    `floor`: every id up to it was delivered or does not concern this stream; `sent`: ids above
    it that were. `catch_up_to`: ids up to it are first read from the table, from `position` on.
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        run_id: int | None,
        kinds: Sequence[EventKind],
        keepalive_s: float,
        max_pending: int,
    ) -> None:
        self.factory = factory
        self.run_id = run_id
        self.kinds = tuple(kinds)
        self.keepalive_s = keepalive_s
        self.max_pending = max_pending
        self.floor = 0
        self.sent: set[int] = set()
        self.start_id = 0
        """The position the stream started at (the SSE `id` its first message carries)."""
        self.catch_up_to: int | None = None
        self.position = 0
        self._catch_up_floor = 0
        self._idle_floor = 0
        # Events to send, each batch followed by the hub's floor after reading it. One item at a
        # time leaves the queue, so an iterator given up after a yield loses nothing.
        self._pending: deque[EventRecord | int] = deque()
        self._pending_rows = 0
        self._wake = asyncio.Event()

    @property
    def pending(self) -> int:
        """Events waiting in memory for this stream to send them."""
        return self._pending_rows

    def start_at(self, cursor: Cursor, after_id: int | None) -> None:
        """Begin after `after_id` (read from the table up to the hub's position), or with the
        hub's next event."""
        if after_id is None:
            # The hub delivers every id above its floor that it has not delivered yet.
            self.floor = self.start_id = cursor.floor
            return
        self.floor = self.start_id = after_id
        self._catch_up(cursor)

    def offer(self, rows: list[EventRecord], cursor: Cursor) -> None:
        """New events from the hub, which has now read up to `cursor` (never blocks)."""
        mine = [row for row in rows if event_matches(row, self.run_id, self.kinds)]
        if not mine and not self._pending and self.catch_up_to is None:
            self._idle_floor = cursor.floor
            return
        self._pending.extend(mine)
        self._pending.append(cursor.floor)
        self._pending_rows += len(mine)
        if self._pending_rows > self.max_pending:
            self._catch_up(cursor)  # too slow to keep them in memory: the table has them all
        elif mine:
            self._wake.set()

    def _catch_up(self, cursor: Cursor) -> None:
        """Read everything up to what the hub has delivered from the table first."""
        if self.catch_up_to is None:
            self.position = self.floor
        self.catch_up_to = max(cursor.top, self.catch_up_to or 0)
        self._catch_up_floor = cursor.floor
        self._pending.clear()
        self._pending_rows = 0
        self._wake.set()

    def _advance(self, floor: int) -> None:
        if floor > self.floor:
            self.floor = floor
            self.position = max(self.position, floor)
            self.sent = {sent for sent in self.sent if sent > floor}

    def _first_time(self, row: EventRecord, *, remember: bool = True) -> bool:
        if row.id <= self.floor or row.id in self.sent:
            return False
        if remember:
            self.sent.add(row.id)
        return True

    def _read_missing(self, after: int, until: int) -> list[EventRecord]:
        with open_session(self.factory, write=False) as session:
            return fetch_events(
                session, after, until_id=until, run_id=self.run_id, kinds=self.kinds
            )

    async def __aiter__(self) -> AsyncIterator[EventRecord | None]:
        quiet_since = time.monotonic()
        while True:
            if self.catch_up_to is not None:
                target = self.catch_up_to
                page = await anyio.to_thread.run_sync(self._read_missing, self.position, target)
                for row in page:
                    self.position = max(self.position, row.id)
                    # Ids the hub will not deliver again need no remembering (a long replay).
                    if self._first_time(row, remember=row.id > self._catch_up_floor):
                        yield row
                        quiet_since = time.monotonic()
                if len(page) < BATCH and self.catch_up_to == target:
                    self.catch_up_to = None
                    self._advance(self._catch_up_floor)
            elif self._pending:
                item = self._pending.popleft()
                if isinstance(item, int):
                    self._advance(item)
                    continue
                self._pending_rows -= 1
                if self._first_time(item):
                    yield item
                    quiet_since = time.monotonic()
            else:
                self._advance(self._idle_floor)
                remaining = self.keepalive_s - (time.monotonic() - quiet_since)
                if remaining <= 0:
                    yield None
                    quiet_since = time.monotonic()
                    continue
                self._wake.clear()
                with anyio.move_on_after(remaining):
                    await self._wake.wait()


class EventHub:
    """The process's reader of the events table for every stream of one app.

    Args:
        factory: Sessions to read the events table with (one short read per wake-up).
        redis_url: Wake up on notifications on Redis; None polls every `poll_interval_s`.
        poll_interval_s: How often the table is read with no Redis, or while Redis is away.
    """

    def __init__(
        self, factory: sessionmaker[Session], *, redis_url: str | None, poll_interval_s: float
    ) -> None:
        self.factory = factory
        self.redis_url = redis_url
        self.poll_interval_s = poll_interval_s
        self.loop = asyncio.get_running_loop()
        self.redis_connected = False
        self.reads = 0
        """Reads of new events from the table so far (the only reads idle streams cause)."""
        self._subscriptions: set[Subscription] = set()
        self._cursor: Cursor | None = None
        self._task: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._wake = asyncio.Event()

    @property
    def streams(self) -> int:
        """Streams subscribed now."""
        return len(self._subscriptions)

    @property
    def running(self) -> bool:
        return self._task is not None

    @asynccontextmanager
    async def subscribe(
        self,
        *,
        run_id: int | None = None,
        kinds: Sequence[EventKind] = (),
        after_id: int | None = None,
        keepalive_s: float = 15.0,
        max_pending: int = MAX_PENDING,
    ) -> AsyncIterator[Subscription]:
        """A subscription from `after_id` on (None: from the next new event).

        Once entered, nothing committed afterwards is missed; the hub starts with the first
        subscription and stops when the last one leaves.

        Args:
            run_id: Only this run's events and those of no run (see `fetch_events`).
            kinds: Only events of these kinds; empty: every kind.
        """
        cursor = await self._start()
        subscription = Subscription(
            self.factory,
            run_id=run_id,
            kinds=kinds,
            keepalive_s=keepalive_s,
            max_pending=max_pending,
        )
        subscription.start_at(cursor, after_id)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)
            if not self._subscriptions:
                await self._stop()

    async def _start(self) -> Cursor:
        async with self._starting:
            if self._cursor is None or self._task is None:
                # Errors here (no database) fail the subscribing request, not a later read.
                self._cursor = Cursor(await anyio.to_thread.run_sync(self._newest))
                self._task = asyncio.create_task(self._run(self._cursor), name="event-hub")
            return self._cursor

    async def _stop(self) -> None:
        task, self._task, self._cursor = self._task, None, None
        if task is not None:
            task.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.wait([task])

    def _newest(self) -> int:
        with open_session(self.factory, write=False) as session:
            return latest_event_id(session)

    def _read_new(self, floor: int) -> list[EventRecord]:
        self.reads += 1
        rows: list[EventRecord] = []
        with open_session(self.factory, write=False) as session:
            while len(rows) < MAX_READ:
                page = fetch_events(session, rows[-1].id if rows else floor)
                rows += page
                if len(page) < BATCH:
                    break
        return rows

    def _interval(self, cursor: Cursor) -> float:
        interval = REDIS_FALLBACK_POLL_S if self.redis_connected else self.poll_interval_s
        return min(interval, GAP_POLL_S) if cursor.waiting else interval

    async def _run(self, cursor: Cursor) -> None:
        self.redis_connected = False
        listener = asyncio.create_task(self._listen()) if self.redis_url is not None else None
        failures = 0
        try:
            while True:
                # Cleared before the read: a notification during it brings another read.
                self._wake.clear()
                try:
                    rows = await anyio.to_thread.run_sync(self._read_new, cursor.floor)
                except Exception as error:  # a reader that died would stall every stream
                    failures += 1
                    if failures == 1:
                        logger.warning("cannot read the events table (%s); retrying", error)
                    await anyio.sleep(_backoff(failures))
                    continue
                if failures:
                    logger.info("reading the events table again after %d failures", failures)
                    failures = 0
                fresh = cursor.accept(rows, time.monotonic())
                for subscription in list(self._subscriptions):
                    subscription.offer(fresh, cursor)
                if len(rows) >= MAX_READ:
                    continue
                with anyio.move_on_after(self._interval(cursor)):
                    await self._wake.wait()
        finally:
            if listener is not None:
                listener.cancel()
                with anyio.CancelScope(shield=True):
                    await asyncio.wait([listener])

    async def _listen(self) -> None:
        """Wake the hub on every notification; reconnect with back-off when Redis goes away."""
        assert self.redis_url is not None
        failures = 0
        while True:
            # No retries inside redis-py: a lost connection must surface here to be caught up.
            client = redis.asyncio.Redis.from_url(
                self.redis_url,
                retry=Retry(NoBackoff(), 0),
                socket_connect_timeout=2.0,
                socket_keepalive=True,
            )
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                self.redis_connected = True
                if failures:
                    logger.info("subscribed to Redis again; catching up from the events table")
                failures = 0
                self._wake.set()  # whatever was committed before the subscription
                while True:
                    if await pubsub.get_message(ignore_subscribe_messages=True, timeout=None):
                        self._wake.set()
            except (redis.RedisError, OSError) as error:
                failures += 1
                if self.redis_connected or failures == 1:
                    logger.warning(
                        "lost Redis at %s (%s); reading the events table every %.2f s and "
                        "reconnecting", self.redis_url, error, self.poll_interval_s,
                    )  # fmt: skip
                self.redis_connected = False
                self._wake.set()
            finally:
                with anyio.CancelScope(shield=True):
                    await _close_quietly(pubsub, client)
            await anyio.sleep(_backoff(failures))


def _backoff(failures: int) -> float:
    """Seconds to wait after `failures` failures in a row: doubling, capped, with jitter so many
    processes do not retry in step."""
    delay = min(BACKOFF_MIN_S * 2.0 ** max(failures - 1, 0), BACKOFF_MAX_S)
    return delay * random.uniform(0.5, 1.0)


async def _close_quietly(pubsub: redis.asyncio.client.PubSub, client: redis.asyncio.Redis) -> None:
    try:
        # Typed here: older redis releases leave PubSub.aclose unannotated.
        close_pubsub: Callable[[], Awaitable[None]] = pubsub.aclose
        await close_pubsub()
        await client.aclose()
    except (redis.RedisError, OSError):
        pass  # a connection that is gone already
