"""The OpenAPI document says how to authenticate and what every protected operation can answer
because of it: 401 without valid credentials, 403 for a role or token that may not (and, for
state-changing operations, a cross-site origin or a missing CSRF token), 400 for a foreign
`Host`, 429 for too many sign-ins."""

from __future__ import annotations

from typing import Any

from server.auth.middleware import OPEN_PATHS

BEARER = "bearerToken"
SESSION = "sessionCookie"
_ERROR_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
_STATE_CHANGING = ("post", "put", "patch", "delete")
_DESCRIPTIONS = {
    "400": "Bad request: not valid JSON, or a Host name this server does not answer to",
    "401": "Unauthenticated: no session and no `Authorization: Bearer <token>`, or a token that "
    "is unknown, revoked or expired",
    "403": "Forbidden: the role or token scope does not allow it, another user's run, a request "
    "from another site, a missing CSRF token, or a server path outside the configured roots",
}


def document_access(document: dict[str, Any]) -> dict[str, Any]:
    """Add the security schemes and the access errors to `document`, in place; returns it."""
    schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (Account page or `segtrack token create`)",
    }
    schemes[SESSION] = {"type": "apiKey", "in": "cookie", "name": "segtrack_session"}
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses: dict[str, Any] = operation["responses"]
            statuses = ["400"]
            if path not in OPEN_PATHS:
                operation["security"] = [{BEARER: []}, {SESSION: []}]
                statuses.append("401")
                if method in _STATE_CHANGING:
                    statuses.append("403")
            for status in statuses:
                response = responses.setdefault(status, {"description": _DESCRIPTIONS[status]})
                response["description"] = _DESCRIPTIONS[status]
                response.setdefault("content", _ERROR_REF)
    return document
