"""Refuse request bodies over their limit with a JSON 413, before they are read whole.

Checks Content-Length up front and also counts the streamed bytes, since chunked uploads carry
no length. Pure ASGI so it never buffers a body itself. `limit_of` gives each request its limit
(most share SEGTRACK_MAX_BODY_BYTES); None lets it pass untouched: routes that stream bodies to
disk under limits of their own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.byte_size import byte_size


class _BodyTooLargeError(Exception):
    """Raised into the app from `receive` once the limit is passed."""


@dataclass(frozen=True)
class BodyLimit:
    """The most bytes a request's body may have, and what sets that limit (for the message)."""

    max_bytes: int
    set_by: str


class BodySizeLimitMiddleware:
    """Answer 413 `{"error": {"code": "payload_too_large", ...}}` for bodies over their limit."""

    def __init__(self, app: ASGIApp, limit_of: Callable[[Scope], BodyLimit | None]) -> None:
        self.app = app
        self.limit_of = limit_of

    @staticmethod
    def _error(limit: BodyLimit) -> tuple[Message, Message]:
        body = json.dumps(
            {
                "error": {
                    "code": "payload_too_large",
                    "message": "request body is larger than the limit of "
                    f"{byte_size(limit.max_bytes)}: {limit.set_by}",
                    "details": {"max_body_bytes": limit.max_bytes},
                }
            }
        ).encode()
        start: Message = {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
        return start, {"type": "http.response.body", "body": body}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit_of(scope) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > limit.max_bytes:
            for message in self._error(limit):
                await send(message)
            return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
                    exceeded = True
                    raise _BodyTooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                # The framework turned our exception into some error response: send ours instead.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    for replacement in self._error(limit):
                        await send(replacement)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLargeError:
            if started:
                raise
            for message in self._error(limit):
                await send(message)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
