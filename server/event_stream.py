"""Server-Sent Events: GET /api/v1/events (every run, or `?run_id=`) and /api/v1/runs/{id}/events.

A run's stream (either URL) carries that run's events and the events of no run: `dataset` events
(class colours changed), which every run page showing that dataset follows on the same connection.
`?kind=` (repeatable, on both URLs) keeps only events of those kinds, e.g. `?kind=dataset` for the
datasets page; an unknown kind is a 422 that lists the known ones.

The first message, once subscribed, is `retry: 2000` with `id: <position>`: a client that reconnects
with that id (browsers send it as Last-Event-ID themselves) misses nothing that happened since.
Each event is `id: <event id>`, `event: <kind>`, `data: <JSON>`; a `: keep-alive` comment goes out
after `sse_keepalive_s` of silence. Reconnecting clients send Last-Event-ID or `?after_id=` (the
header wins when both are sent: the browser keeps it up to date on the same URL) and get every
event after it that is still kept, then the live ones, in order and none twice.

Streams are capped per client (`sse_max_streams_per_client`) and in all (`sse_max_streams`); one
more is answered 429 with Retry-After. Every stream of the process shares one reader of the events
table (`server.event_hub`), so idle streams cost next to nothing.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, FastAPI, Header, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import Receive, Scope, Send

from server.db import open_session
from server.event_hub import EventHub
from server.events import EVENT_KINDS, EventKind, EventRecord
from server.http_errors import ErrorOut, error_response, error_responses
from server.run.repository import get_run
from server.settings import Settings
from server.stream_limits import StreamLimits, StreamSlot, client_key

router = APIRouter(prefix="/api/v1", tags=["events"])

RETRY_MS = 2000
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
KEEPALIVE = b": keep-alive\n\n"
EVENT_ID_MAX = 2**63 - 1
"""Event ids are int8."""
RUN_ID_MAX = 2**31 - 1
"""Run ids are int4."""


def format_event(record: EventRecord) -> bytes:
    """One SSE message."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (record.id, record.kind.encode(), record.data)


def event_hub(app: FastAPI) -> EventHub:
    """The app's hub on the running event loop, made on first use."""
    hub: EventHub | None = getattr(app.state, "event_hub", None)
    if hub is None or hub.loop is not asyncio.get_running_loop():
        settings: Settings = app.state.settings
        hub = EventHub(
            app.state.session_factory,
            redis_url=settings.redis_url,
            poll_interval_s=settings.event_poll_interval_s,
        )
        app.state.event_hub = hub
    return hub


def stream_limits(app: FastAPI) -> StreamLimits:
    """The app's count of open streams, made on first use."""
    limits: StreamLimits | None = getattr(app.state, "stream_limits", None)
    if limits is None:
        settings: Settings = app.state.settings
        limits = StreamLimits(
            per_client=settings.sse_max_streams_per_client, total=settings.sse_max_streams
        )
        app.state.stream_limits = limits
    return limits


class EventStreamResponse(StreamingResponse):
    """A stream that gives its slot back however it ends (or if it is never sent)."""

    def __init__(self, content: AsyncIterator[bytes], slot: StreamSlot) -> None:
        super().__init__(content, media_type="text/event-stream", headers=HEADERS)
        self.slot = slot
        weakref.finalize(self, slot.release)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slot.release()


async def _messages(
    hub: EventHub,
    settings: Settings,
    run_id: int | None,
    kinds: Sequence[EventKind],
    after_id: int | None,
) -> AsyncIterator[bytes]:
    subscription = hub.subscribe(
        run_id=run_id, kinds=kinds, after_id=after_id, keepalive_s=settings.sse_keepalive_s
    )
    async with subscription as events:
        # Sent once subscribed: a client that has read it will not miss a later event.
        yield b"retry: %d\nid: %d\n\n" % (RETRY_MS, events.start_id)
        async for record in events:
            yield KEEPALIVE if record is None else format_event(record)


def _resume_from(header: str | None, query: int | None) -> int | None:
    """Last-Event-ID when it is an event id, else `?after_id=`."""
    text = (header or "").strip()
    if text.isascii() and text.isdigit() and int(text) <= EVENT_ID_MAX:
        return int(text)
    return query


async def _stream(
    request: Request,
    run_id: int | None,
    after_id: int | None,
    kinds: Sequence[EventKind],
    *,
    check_run: bool = False,
) -> Response:
    settings: Settings = request.app.state.settings
    admitted = stream_limits(request.app).admit(client_key(request))
    if not isinstance(admitted, StreamSlot):
        return error_response(
            429,
            "too_many_streams",
            admitted.message,
            {"limit": admitted.limit, "scope": admitted.scope},
            headers={"Retry-After": str(admitted.retry_after_s)},
        )
    try:
        if check_run and run_id is not None:
            await anyio.to_thread.run_sync(_check_run, request.app.state.session_factory, run_id)
        messages = _messages(event_hub(request.app), settings, run_id, kinds, after_id)
        return EventStreamResponse(messages, admitted)
    except BaseException:
        admitted.release()
        raise


def _check_run(factory: sessionmaker[Session], run_id: int) -> None:
    with open_session(factory, write=False) as session:
        get_run(session, run_id)


KindsParam = Annotated[
    list[EventKind] | None,
    Query(description=f"Only events of these kinds (repeatable): {', '.join(EVENT_KINDS)}"),
]
AfterIdParam = Annotated[
    int | None, Query(ge=0, le=EVENT_ID_MAX, description="Resume after this event id")
]
LastEventIdHeader = Annotated[
    str | None, Header(description="Resume after this event id (sent by browsers themselves)")
]
STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "The event stream"},
    429: {
        "model": ErrorOut,
        "description": "Too many open streams from this client or in all "
        "(`too_many_streams`); retry after the seconds in Retry-After",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}


@router.get("/events", response_class=StreamingResponse, responses=STREAM_RESPONSES)
async def all_events(
    request: Request,
    run_id: Annotated[
        int | None,
        Query(ge=1, le=RUN_ID_MAX, description="Only this run's events and those of no run"),
    ] = None,
    kind: KindsParam = None,
    after_id: AfterIdParam = None,
    last_event_id: LastEventIdHeader = None,
) -> Response:
    """Every new event (metrics, previews, checkpoints, status, run and dataset changes), or
    those of `kind`; an unknown kind is a 422 naming the allowed ones."""
    return await _stream(request, run_id, _resume_from(last_event_id, after_id), kind or ())


@router.get(
    "/runs/{run_id}/events",
    response_class=StreamingResponse,
    responses={**STREAM_RESPONSES, **error_responses(404)},
)
async def run_events(
    request: Request,
    run_id: Annotated[int, PathParam(ge=1, le=RUN_ID_MAX, description="The run's id")],
    kind: KindsParam = None,
    after_id: AfterIdParam = None,
    last_event_id: LastEventIdHeader = None,
) -> Response:
    """New events of one run, and those of no run (dataset changes), or those of `kind`; 404 for
    an unknown run."""
    resume = _resume_from(last_event_id, after_id)
    return await _stream(request, run_id, resume, kind or (), check_run=True)
