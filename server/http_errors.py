"""Every error leaves the API as `{"error": {"code", "message", "details"}}`, mapped here once.

Domain errors keep their status; FastAPI's validation errors become 422 (400 for a body that is
not JSON) with one `{field, message}` per problem; anything unexpected is logged with a request id
and answered 500 with that id, never with a traceback.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from server.errors import DomainError

logger = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The one error shape of the API."""
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": details}},
        status_code=status_code,
        headers=headers,
    )


def _field(location: Sequence[Any]) -> str:
    parts = list(location)
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(str(part) for part in parts) or "body"


def _message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "literal_error":
        return f"got {error.get('input')!r}; allowed values are {ctx.get('expected', '')}"
    if kind == "missing":
        return "this field is required"
    if kind == "extra_forbidden":
        return "unknown field"
    return str(error.get("msg", "invalid value"))


def validation_details(errors: Sequence[Any]) -> list[dict[str, str]]:
    """`{field, message}` items from pydantic/FastAPI error dicts."""
    return [{"field": _field(error.get("loc", ())), "message": _message(error)} for error in errors]


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return error_response(exc.status_code, exc.code, exc.message, exc.details)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    broken = next((error for error in errors if error.get("type") == "json_invalid"), None)
    if broken is not None:
        reason = (broken.get("ctx") or {}).get("error", "JSON decode error")
        location = list(broken.get("loc") or ())
        where = f" at character {location[-1]}" if location and location[-1] != "body" else ""
        return error_response(
            400, "malformed_json", f"request body is not valid JSON: {reason}{where}"
        )
    details = validation_details(errors)
    summary = "; ".join(f"{item['field']}: {item['message']}" for item in details[:5])
    more = f" (and {len(details) - 5} more)" if len(details) > 5 else ""
    return error_response(422, "invalid_input", f"invalid request: {summary}{more}", details)


async def http_error(_request: Request, exc: Exception) -> JSONResponse:
    """An HTTPException as the API's JSON error."""
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = "no such endpoint; the API is described at /docs"
    return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    request_id = uuid.uuid4().hex[:12]
    logger.error(
        "request %s %s failed (request id %s)",
        request.method,
        request.url.path,
        request_id,
        exc_info=exc,
    )
    return error_response(
        500,
        "internal_error",
        f"internal error; the server log has the details under request id {request_id}",
        {"request_id": request_id},
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the API's JSON shape."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, _unexpected_error)
