"""Server-Sent Events: GET /api/v1/events (every run, or `?run_id=`) and /api/v1/runs/{id}/events.

Each event is `id: <event id>`, `event: <kind>`, `data: <JSON>`; a `: keep-alive` comment goes out
after 15 s of silence. Reconnecting clients send Last-Event-ID (browsers do it themselves) or
`?after_id=` and get every event after it that is still kept.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio.to_thread
import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from server.events import EventRecord, Subscription
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
    factory: sessionmaker[Session], settings: Settings, run_id: int | None, after_id: int | None
) -> AsyncIterator[bytes]:
    subscription = Subscription(
        factory,
        redis_url=settings.redis_url,
        poll_interval_s=settings.event_poll_interval_s,
        run_id=run_id,
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


def _stream(request: Request, run_id: int | None, after_id: int | None) -> StreamingResponse:
    return StreamingResponse(
        _messages(request.app.state.session_factory, request.app.state.settings, run_id, after_id),
        media_type="text/event-stream",
        headers=HEADERS,
    )


@router.get("/events", response_class=StreamingResponse)
async def all_events(
    request: Request,
    run_id: int | None = None,
    after_id: Annotated[int | None, Query(ge=0, description="Resume after this event id")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Every new event (metrics, previews, checkpoints, status and run changes)."""
    return _stream(request, run_id, _resume_from(last_event_id, after_id))


@router.get("/runs/{run_id}/events", response_class=StreamingResponse)
async def run_events(
    request: Request,
    run_id: int,
    after_id: Annotated[int | None, Query(ge=0, description="Resume after this event id")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """New events of one run; 404 for an unknown run."""
    factory: sessionmaker[Session] = request.app.state.session_factory

    def check() -> None:
        with factory() as session:
            get_run(session, run_id)

    await anyio.to_thread.run_sync(check)
    return _stream(request, run_id, _resume_from(last_event_id, after_id))
