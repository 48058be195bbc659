"""Server-Sent Events: GET /api/v1/events (every run, or `?run_id=`) and /api/v1/runs/{id}/events.

A run's stream (either URL) carries that run's events and the events of no run: `dataset` events
(class colours changed), which every run page showing that dataset follows on the same connection.
`?kind=` (repeatable, on both URLs) keeps only events of those kinds, e.g. `?kind=dataset` for the
datasets page; an unknown kind is a 422 that lists the known ones.

Each event is `id: <event id>`, `event: <kind>`, `data: <JSON>`; a `: keep-alive` comment goes out
after 15 s of silence. Reconnecting clients send Last-Event-ID (browsers do it themselves) or
`?after_id=` and get every event after it that is still kept.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Annotated

import anyio.to_thread
import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from server.events import EVENT_KINDS, EventKind, EventRecord, Subscription
from server.run.repository import get_run
from server.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["events"])

KEEPALIVE_S = 15.0
RETRY_MS = 2000
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def format_event(record: EventRecord) -> bytes:
    """One SSE message."""
    data = orjson.dumps(record.to_dict(), option=orjson.OPT_UTC_Z)
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (record.id, record.kind.encode(), data)


async def _messages(
    factory: sessionmaker[Session],
    settings: Settings,
    run_id: int | None,
    kinds: Sequence[EventKind],
    after_id: int | None,
) -> AsyncIterator[bytes]:
    subscription = Subscription(
        factory,
        redis_url=settings.redis_url,
        poll_interval_s=settings.event_poll_interval_s,
        run_id=run_id,
        kinds=kinds,
        after_id=after_id,
        keepalive_s=KEEPALIVE_S,
    )
    async with subscription:
        # Sent once subscribed: a client that has read it will not miss a later event.
        yield b"retry: %d\n\n" % RETRY_MS
        async for record in subscription:
            yield b": keep-alive\n\n" if record is None else format_event(record)


def _resume_from(header: str | None, query: int | None) -> int | None:
    if query is not None:
        return query
    if header is not None and header.strip().isdigit():
        return int(header.strip())
    return None


def _stream(
    request: Request, run_id: int | None, after_id: int | None, kinds: Sequence[EventKind] = ()
) -> StreamingResponse:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return StreamingResponse(
        _messages(factory, request.app.state.settings, run_id, kinds, after_id),
        media_type="text/event-stream",
        headers=HEADERS,
    )


KindsParam = Annotated[
    list[EventKind] | None,
    Query(description=f"Only events of these kinds (repeatable): {', '.join(EVENT_KINDS)}"),
]


@router.get("/events", response_class=StreamingResponse)
async def all_events(
    request: Request,
    run_id: Annotated[
        int | None, Query(description="Only this run's events and those of no run (datasets)")
    ] = None,
    kind: KindsParam = None,
    after_id: Annotated[int | None, Query(ge=0, description="Resume after this event id")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Every new event (metrics, previews, checkpoints, status, run and dataset changes), or
    those of `kind`; an unknown kind is a 422 naming the allowed ones."""
    return _stream(request, run_id, _resume_from(last_event_id, after_id), kind or ())


@router.get("/runs/{run_id}/events", response_class=StreamingResponse)
async def run_events(
    request: Request,
    run_id: int,
    kind: KindsParam = None,
    after_id: Annotated[int | None, Query(ge=0, description="Resume after this event id")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """New events of one run, and those of no run (dataset changes), or those of `kind`; 404 for
    an unknown run."""
    factory: sessionmaker[Session] = request.app.state.session_factory

    def check() -> None:
        with factory() as session:
            get_run(session, run_id)

    await anyio.to_thread.run_sync(check)
    return _stream(request, run_id, _resume_from(last_event_id, after_id), kind or ())
