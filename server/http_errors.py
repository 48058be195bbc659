"""Every error leaves the API as `{"error": {"code", "message", "details"}}`, mapped here once.

Domain errors keep their status; FastAPI's validation errors become 422 (400 for a body that is
not JSON) with one `{field, message}` per problem; anything unexpected is logged with a request id
and answered 500 with that id, never with a traceback. Error bodies stay small whatever the input:
at most MAX_DETAILS items (then one that counts the rest), each field and message cut to a length.

The OpenAPI document describes the same shape (`ErrorOut`) for every error an operation can give:
routes name theirs with `error_responses(...)`, and `install_error_handlers` adds those every
route shares (422 for parameters and bodies, 400, 413 and 415 for bodies, 404 for paths with ids).
"""

from __future__ import annotations

import errno
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from server.errors import DomainError

logger = logging.getLogger(__name__)

MAX_DETAILS = 50
"""Problems listed in an error body; the rest are counted in one last item."""
MAX_FIELD_CHARS = 200
MAX_DETAIL_MESSAGE_CHARS = 1000
MAX_MESSAGE_CHARS = 2000
UPLOAD_FILE_EXPECTED = "Expected UploadFile, received: <class 'str'>"
"""The end of FastAPI's message for a form field that should have been a file."""

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}

ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Malformed request: the body is not valid JSON",
    403: "Not allowed: e.g. a server path outside the configured dataset or artifacts roots",
    404: "Not found: no such run, dataset, epoch or file (the message names it)",
    409: "Conflict: valid, but not in the resource's current state (e.g. cancelling a finished "
    "run, or a name that is taken)",
    413: "Payload too large: a body over SEGTRACK_MAX_BODY_BYTES, or too many points in a batch",
    415: "Unsupported media type: the body must be sent as application/json",
    507: "Insufficient storage: the server's disk is full; nothing of the request was kept "
    "(send it again once space is freed)",
    422: f"Invalid input: `details` holds one `{{field, message}}` per problem (at most "
    f"{MAX_DETAILS}, then one counting the rest)",
}


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable name, e.g. `invalid_input`")
    message: str = Field(description="What was wrong and what is allowed")
    details: Any = Field(
        None,
        description="`[{field, message}]` for invalid input; otherwise an object or null",
    )


class ErrorOut(BaseModel):
    """The body of every error response."""

    error: ErrorBody


def error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the errors with these statuses, all in the `ErrorOut` shape."""
    return {
        code: {"model": ErrorOut, "description": ERROR_DESCRIPTIONS[code]} for code in status_codes
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
        {"error": {"code": code, "message": _cut(message, MAX_MESSAGE_CHARS), "details": details}},
        status_code=status_code,
        headers=headers,
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cap_details(
    details: Sequence[dict[str, Any]], total: int | None = None
) -> list[dict[str, str]]:
    """At most MAX_DETAILS `{field, message}` items with bounded lengths, then one counting the
    rest (of `total` problems, default `len(details)`): a body with 100,000 unknown keys
    answers in kilobytes, not megabytes."""
    total = len(details) if total is None else total
    # A list that is one item over already ends with such a count (the trainer's config errors).
    kept = details if total <= MAX_DETAILS + 1 else details[:MAX_DETAILS]
    capped = [
        {
            "field": _cut(str(item.get("field", "")), MAX_FIELD_CHARS),
            "message": _cut(str(item.get("message", "")), MAX_DETAIL_MESSAGE_CHARS),
        }
        for item in kept
    ]
    if total > len(capped):
        capped.append(
            {"field": "", "message": f"and {total - len(capped)} more problems not listed"}
        )
    return capped


def _is_field_list(details: Any) -> bool:
    """Whether `details` is the `[{field, message}]` list of an invalid input."""
    return isinstance(details, list) and all(
        isinstance(item, dict) and set(item) == {"field", "message"} for item in details
    )


def _field(location: Sequence[Any]) -> str:
    parts = list(location)
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(str(part) for part in parts) or "body"


def _shown(value: Any) -> str:
    """A user's value quoted in a message, cut so that a huge input is not echoed back."""
    return _cut(repr(value), 80)


def _message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "literal_error":
        return f"got {_shown(error.get('input'))}; allowed values are {ctx.get('expected', '')}"
    if kind == "missing":
        return "this field is required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "value_error" and str(error.get("msg", "")).endswith(UPLOAD_FILE_EXPECTED):
        # FastAPI's words for a multipart part sent without a file name, which makes it a text
        # field (an HTTP client drops an empty file name).
        name = _field(error.get("loc", ())).split(".")[0]
        return (
            f"expected a file: send {name} as a multipart file part with a file name "
            f"(curl -F '{name}=@image.png'), not a text field"
        )
    return str(error.get("msg", "invalid value")).removeprefix("Value error, ")


def validation_details(errors: Sequence[Any]) -> list[dict[str, str]]:
    """`{field, message}` items from pydantic/FastAPI error dicts, capped (`cap_details`)."""
    items = [
        {"field": _field(error.get("loc", ())), "message": _message(error)}
        for error in errors[:MAX_DETAILS]
    ]
    return cap_details(items, total=len(errors))


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    details = cap_details(exc.details) if _is_field_list(exc.details) else exc.details
    return error_response(exc.status_code, exc.code, exc.message, details)


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
    shown = details[: min(5, MAX_DETAILS)]
    summary = "; ".join(f"{item['field']}: {_cut(item['message'], 200)}" for item in shown)
    more = f" (and {len(errors) - len(shown)} more)" if len(errors) > len(shown) else ""
    return error_response(422, "invalid_input", f"invalid request: {summary}{more}", details)


async def http_error(_request: Request, exc: Exception) -> JSONResponse:
    """An HTTPException as the API's JSON error."""
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = "no such endpoint; the API is described at /docs"
    return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}))


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def disk_full(error: BaseException) -> bool:
    """Whether `error`, or an error it was raised from, is a full disk or quota."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in DISK_FULL_ERRNOS:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def _os_error(request: Request, exc: Exception) -> JSONResponse:
    """A full disk is the operator's to fix and the client's to retry: 507, not 500."""
    if not disk_full(exc):
        return await _unexpected_error(request, exc)
    logger.error("request %s %s: the disk is full (%s)", request.method, request.url.path, exc)
    return error_response(
        507,
        "insufficient_storage",
        "the server's disk is full, so nothing of this request was stored; send it again once "
        "space has been freed on the server",
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    if disk_full(exc):
        return await _os_error(request, exc)
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
    """Register the handlers that give every error the API's JSON shape, and describe that shape
    in the app's OpenAPI document (see `document_errors`)."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(OSError, _os_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.openapi = patched_once(app.openapi, document_errors)  # type: ignore[method-assign]


# --- the errors in the OpenAPI document -----------------------------------------------------------

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_FASTAPI_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError")
_ERROR_REF = "#/components/schemas/ErrorOut"


def _error_content() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _ERROR_REF}}}


def document_errors(document: dict[str, Any]) -> dict[str, Any]:
    """Make an OpenAPI document tell the truth about errors, in place; returns it.

    FastAPI documents its own `{"detail": [...]}` 422 that this API never sends: each becomes the
    `ErrorOut` shape. Every operation also gets the errors all routes share: 422 when it takes
    parameters or a body, 400 (not JSON), 413 (too large) and 415 (not sent as JSON) with a
    body, 404 with a path id.
    """
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    if "ErrorOut" not in schemas:
        generated = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(generated.pop("$defs", {}))
        schemas["ErrorOut"] = generated
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is not None:
                _document_operation(path, operation)
    for name in _FASTAPI_ERROR_SCHEMAS:
        schemas.pop(name, None)
    return document


def _document_operation(path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    shared: list[int] = []
    if operation.get("parameters") or "requestBody" in operation:
        shared.append(422)
    if "requestBody" in operation:
        shared += [400, 413, 415]
    if "{" in path:
        shared.append(404)
    for status in shared:
        responses.setdefault(str(status), {"description": ERROR_DESCRIPTIONS[status]})
    for key, response in responses.items():
        if key.startswith(("4", "5")) and _is_fastapi_error(response):
            response["content"] = _error_content()
            if key == "422":
                response["description"] = ERROR_DESCRIPTIONS[422]
        elif key.startswith("4") and "content" not in response:
            response["content"] = _error_content()


def _is_fastapi_error(response: dict[str, Any]) -> bool:
    content = response.get("content", {}).get("application/json", {})
    reference = str(content.get("schema", {}).get("$ref", ""))
    return reference.rsplit("/", 1)[-1] in _FASTAPI_ERROR_SCHEMAS


def patched_once(
    openapi: Callable[[], dict[str, Any]], patch: Callable[[dict[str, Any]], dict[str, Any]]
) -> Callable[[], dict[str, Any]]:
    """`openapi` (FastAPI's, which caches its document) with `patch` applied once."""
    patched: list[dict[str, Any]] = []

    def patched_openapi() -> dict[str, Any]:
        document = openapi()
        if not any(document is seen for seen in patched):
            patched[:] = [patch(document)]
        return document

    return patched_openapi
