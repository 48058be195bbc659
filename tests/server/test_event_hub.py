"""The shared reader of the events table: idle streams cost no reads, a resumed or slow stream
gets every later event once and in order, a late-committed id is delivered, a failing read is
retried without cutting streams."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import anyio.to_thread
import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from server.db import create_db_engine, make_session_factory, session_scope
from server.event_hub import EventHub, Subscription
from server.events import EventRecord, fetch_events, record_event


@pytest.fixture
def engine(live_database_url: str) -> Iterator[Engine]:
    """Commits for real (the hub reads on its own connections); the events are emptied after."""
    engine = create_db_engine(live_database_url)
    yield engine
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE events RESTART IDENTITY"))
    engine.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


def commit(
    factory: sessionmaker[Session], numbers: range, run_id: Callable[[int], int | None]
) -> None:
    """One committed `status` event per number, `{"n": number}`, of run `run_id(number)`."""
    for number in numbers:
        with session_scope(factory) as session:
            record_event(session, "status", run_id(number), {"n": number})


def of_run_one_or_none(number: int) -> int | None:
    return None if number % 5 == 0 else 1 + number % 2


async def take(subscription: Subscription, count: int) -> list[EventRecord]:
    """The next `count` events of a subscription (keep-alives skipped)."""
    taken: list[EventRecord] = []
    with anyio.fail_after(20):
        async for record in subscription:
            if record is not None:
                taken.append(record)
                if len(taken) == count:
                    break
    return taken


async def until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(20):
        while not condition():
            await anyio.sleep(0.01)


def test_idle_streams_share_one_reader_and_cost_only_keepalives(
    factory: sessionmaker[Session], engine: Engine
) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    async def main() -> None:
        # Polling once an hour: every read after the first would come from the streams.
        hub = EventHub(factory, redis_url=None, poll_interval_s=3600)
        async with AsyncExitStack() as stack:
            streams = [
                await stack.enter_async_context(hub.subscribe(keepalive_s=0.02)) for _ in range(20)
            ]
            assert hub.streams == 20 and hub.running
            await until(lambda: hub.reads == 1)
            event.listen(engine, "before_cursor_execute", count)
            try:

                async def three_keepalives(stream: Subscription) -> None:
                    beats = 0
                    async for record in stream:
                        assert record is None
                        beats += 1
                        if beats == 3:
                            return

                with anyio.fail_after(20):
                    async with anyio.create_task_group() as group:
                        for stream in streams:
                            group.start_soon(three_keepalives, stream)
            finally:
                event.remove(engine, "before_cursor_execute", count)
            assert statements == [] and hub.reads == 1
        assert hub.streams == 0 and not hub.running, "the reader stops with the last stream"

    anyio.run(main)


def test_a_resumed_stream_gets_every_later_event_once_in_order(
    factory: sessionmaker[Session],
) -> None:
    commit(factory, range(30), of_run_one_or_none)
    with factory() as session:
        before = fetch_events(session, 0, limit=100)
    resume_after = before[9].id

    async def main() -> None:
        hub = EventHub(factory, redis_url=None, poll_interval_s=0.02)
        async with (
            hub.subscribe(after_id=resume_after) as everything,
            hub.subscribe(run_id=1, after_id=resume_after) as run_one,
            hub.subscribe(kinds=["status"], after_id=resume_after) as status,
        ):
            assert everything.start_id == resume_after
            # More events are committed while the streams read the older ones from the table.
            writer = threading.Thread(
                target=commit, args=(factory, range(30, 60), of_run_one_or_none)
            )
            writer.start()
            got_all = await take(everything, 50)
            got_run = await take(
                run_one, len([n for n in range(10, 60) if of_run_one_or_none(n) in (1, None)])
            )
            got_status = await take(status, 50)
            await anyio.to_thread.run_sync(writer.join)
        assert [record.payload["n"] for record in got_all] == list(range(10, 60))
        assert [record.payload["n"] for record in got_status] == list(range(10, 60))
        expected_run = [n for n in range(10, 60) if of_run_one_or_none(n) in (1, None)]
        assert [record.payload["n"] for record in got_run] == expected_run
        ids = [record.id for record in got_all]
        assert ids == sorted(set(ids)) and ids[0] > resume_after

    anyio.run(main)


def test_a_slow_stream_reads_what_it_missed_from_the_table(factory: sessionmaker[Session]) -> None:
    async def main() -> None:
        hub = EventHub(factory, redis_url=None, poll_interval_s=0.02)
        async with hub.subscribe() as fast, hub.subscribe(max_pending=5) as slow:
            writer = threading.Thread(target=commit, args=(factory, range(40), lambda n: 7))
            writer.start()
            # The fast stream has seen all 40: the hub read them while `slow` read nothing.
            assert [record.payload["n"] for record in await take(fast, 40)] == list(range(40))
            await anyio.to_thread.run_sync(writer.join)
            assert slow.catch_up_to is not None, "it fell behind: it reads from the table"
            assert slow.pending <= 5, "a slow stream's backlog stays bounded in memory"
            got = await take(slow, 40)
            assert [record.payload["n"] for record in got] == list(range(40))
            commit(factory, range(40, 42), lambda n: 7)
            assert [record.payload["n"] for record in await take(slow, 2)] == [40, 41]

    anyio.run(main)


def test_an_id_committed_late_is_delivered_once(factory: sessionmaker[Session]) -> None:
    async def main() -> None:
        hub = EventHub(factory, redis_url=None, poll_interval_s=0.02)
        async with hub.subscribe() as stream:
            slow = factory()
            record_event(slow, "status", None, {"n": "slow"})  # takes the smaller id, uncommitted
            commit(factory, range(1), lambda n: None)
            assert [record.payload["n"] for record in await take(stream, 1)] == [0]
            await anyio.to_thread.run_sync(slow.commit)
            slow.close()
            commit(factory, range(1, 2), lambda n: None)
            late, after = await take(stream, 2)
            assert late.payload["n"] == "slow" and after.payload["n"] == 1
            assert late.id < after.id

            # A stream that joins while an id is missing still gets it when it commits.
            slow = factory()
            record_event(slow, "status", None, {"n": "slow again"})
            commit(factory, range(2, 3), lambda n: None)
            assert [record.payload["n"] for record in await take(stream, 1)] == [2]
            async with hub.subscribe() as joined:
                await anyio.to_thread.run_sync(slow.commit)
                slow.close()
                assert [record.payload["n"] for record in await take(joined, 1)] == ["slow again"]

    anyio.run(main)


def test_a_failing_read_is_retried_and_streams_stay_open(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        hub = EventHub(factory, redis_url=None, poll_interval_s=0.02)
        read = hub._read_new
        failures = 0

        def flaky(floor: int) -> list[EventRecord]:
            nonlocal failures
            if failures < 3:
                failures += 1
                raise OperationalError("SELECT", {}, Exception("the database went away"))
            return read(floor)

        monkeypatch.setattr(hub, "_read_new", flaky)
        async with hub.subscribe(keepalive_s=0.05) as stream:
            commit(factory, range(2), lambda n: None)
            assert [record.payload["n"] for record in await take(stream, 2)] == [0, 1]
        assert failures == 3

    anyio.run(main)


def test_a_slow_stream_behind_a_late_transaction_gets_nothing_twice(
    factory: sessionmaker[Session],
) -> None:
    """An event above a gap was sent live; the stream then falls behind and reads from the
    table from below the gap, where that event is again."""

    async def main() -> None:
        hub = EventHub(factory, redis_url=None, poll_interval_s=0.02)
        async with hub.subscribe() as fast, hub.subscribe(max_pending=3) as slow:
            late = factory()
            record_event(late, "status", None, {"n": "late"})  # the smaller id, uncommitted
            commit(factory, range(1), lambda n: None)
            assert [record.payload["n"] for record in await take(slow, 1)] == [0]
            assert [record.payload["n"] for record in await take(fast, 1)] == [0]
            commit(factory, range(1, 11), lambda n: None)
            assert len(await take(fast, 10)) == 10
            assert slow.catch_up_to is not None
            assert [record.payload["n"] for record in await take(slow, 10)] == list(range(1, 11))
            await anyio.to_thread.run_sync(late.commit)
            late.close()
            commit(factory, range(11, 12), lambda n: None)
            assert [record.payload["n"] for record in await take(slow, 2)] == ["late", 11]

    anyio.run(main)
