"""Every request is someone's (DESIGN §10): this ASGI middleware runs before any route.

In order: the `Host` must be this server's (DNS rebinding); a state-changing request must not come
from another site and must carry JSON when it carries a body; then the caller is resolved from
`Authorization: Bearer`, the browser-session cookie (whose state-changing requests must echo the
session's CSRF token in `X-CSRF-Token`), or a `?token=` on a page link, which signs the browser in
and redirects to the same page without it (as Jupyter does). Requests without a caller get 401
(API) or the sign-in page (browsers); callers whose role or token is read-only cannot change
anything. The principal is left in the request state for the endpoints (`PrincipalDep`).

Database look-ups run in a thread of their own short unit of work, so no connection is held while
the request waits for anything else."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode

import anyio.to_thread
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from server.auth import credentials, repository, service
from server.auth.principal import OPEN_PRINCIPAL, PRINCIPAL_KEY, Principal
from server.auth.request_checks import (
    SAFE_METHODS,
    cross_site_reason,
    host_allowed,
    host_name,
    is_json,
    media_type,
)
from server.auth.session_cookie import cookie_header, cookie_name, read_cookie
from server.db import session_scope
from server.job.inputs_form import is_predict_inputs_form
from server.settings import Settings
from server.tracking.preview_form import is_preview_form
from server.upload.pieces import is_upload_piece

CSRF_HEADER = "x-csrf-token"
TOKEN_PARAMETER = "token"
OPEN_PATHS = frozenset(
    {
        "/healthz",
        "/login",
        "/setup",
        "/favicon.ico",
        "/api/v1/auth/login",
        "/api/v1/auth/setup",
        "/api/v1/auth/invite",
    }
)
OPEN_PREFIXES = ("/static/",)
SELF_SERVICE_PREFIX = "/api/v1/auth/"
"""Signing out, one's own password and tokens: open to every role (each endpoint checks)."""

T = TypeVar("T")


def _is_api(path: str) -> bool:
    return path.startswith("/api/") or path == "/openapi.json"


def _has_body(headers: Headers) -> bool:
    length = headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in headers


@dataclass(frozen=True)
class _Reply:
    """An answer the middleware gives itself instead of passing the request on."""

    status: int
    code: str = ""
    message: str = ""
    bearer: bool = False
    location: str | None = None
    cookie: str | None = None


class AccessMiddleware:
    """Host, cross-site and content-type checks, then authentication and the read-only rule."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        outcome: Principal | _Reply | None = self._check_headers(scope, headers)
        if outcome is None and not scope["path"].startswith(OPEN_PREFIXES):
            # Files under the open prefixes are the same for everyone: a page's dozens of module
            # and style requests cost no credential look-up each.
            if self._signs_in_with_token(scope):
                outcome = await self._sign_in_with_token(scope, headers.get("host", ""))
            else:
                outcome = await self._admit(scope, headers)
        if isinstance(outcome, _Reply):
            await _send(send, outcome)
            return
        scope.setdefault("state", {})[PRINCIPAL_KEY] = outcome
        await self.app(scope, receive, send)

    def _check_headers(self, scope: Scope, headers: Headers) -> _Reply | None:
        """The checks that need no account: Host, cross-site origin, JSON bodies."""
        host = headers.get("host", "")
        if not host_allowed(host, self.settings.allowed_hosts):
            shown = host_name(host) or host[:100]
            return _Reply(
                400,
                "host_not_allowed",
                f"this server does not answer to the host name {shown!r}; an admin can add it "
                "to SEGTRACK_ALLOWED_HOSTS",
            )
        if scope["method"] in SAFE_METHODS:
            return None
        reason = cross_site_reason(
            origin=headers.get("origin"),
            fetch_site=headers.get("sec-fetch-site"),
            host_header=host,
            allowed_origins=self.settings.cors_origins,
        )
        if reason is not None:
            return _Reply(403, "cross_site_refused", reason)
        # An upload's pieces are raw bytes; PATCH needs a CORS preflight, so no page can forge one.
        # Previews and images to predict on come as forms; the cross-site check above holds
        # for them too.
        form_type = media_type(headers.get("content-type"))
        if (
            _has_body(headers)
            and not is_json(headers.get("content-type"))
            and not is_upload_piece(scope)
            and not is_preview_form(scope, form_type)
            and not is_predict_inputs_form(scope, form_type)
        ):
            return _Reply(
                415,
                "unsupported_media_type",
                "this endpoint takes a JSON body (Content-Type: application/json), not "
                f"{headers.get('content-type') or 'a body without a Content-Type'}",
            )
        return None

    def _signs_in_with_token(self, scope: Scope) -> bool:
        return (
            scope["method"] == "GET"
            and not _is_api(scope["path"])
            and self.settings.auth == "accounts"
            and TOKEN_PARAMETER in _query(scope)
        )

    async def _admit(self, scope: Scope, headers: Headers) -> Principal | _Reply | None:
        """The caller, a refusal, or None for an anonymous request to an open path."""
        path: str = scope["path"]
        principal = await self._authenticate(scope, headers)
        if isinstance(principal, str):
            return _Reply(401, "unauthenticated", principal, bearer=True)
        if principal is None:
            if path in OPEN_PATHS:
                return None
            if _is_api(path):
                return _Reply(
                    401,
                    "unauthenticated",
                    "sign in, or send `Authorization: Bearer <token>` (create a token on the "
                    "Account page or with `segtrack token create`)",
                    bearer=True,
                )
            return _Reply(303, location=_login_location(scope))
        if scope["method"] not in SAFE_METHODS:
            refusal = _write_refusal(principal, headers, path)
            if refusal is not None:
                return _Reply(403, *refusal)
        return principal

    async def _authenticate(self, scope: Scope, headers: Headers) -> Principal | str | None:
        """The caller; a string says why presented credentials were refused; None: none given."""
        if self.settings.auth == "none":
            return OPEN_PRINCIPAL
        factory = _session_factory(scope)
        authorization = headers.get("authorization")
        if authorization is not None:
            kind, _, token = authorization.partition(" ")
            if kind.lower() != "bearer" or not token.strip():
                return "the Authorization header must be `Bearer <token>`"
            found = await _in_thread(factory, service.principal_from_token, token.strip())
            if found is None:
                return "this token is unknown, revoked or expired"
            principal, stale = found
            if stale and principal.token_id is not None:
                await _in_thread(factory, repository.touch_token, principal.token_id, write=True)
            return principal
        cookie = read_cookie(headers.get("cookie"), cookie_name(headers.get("host", "")))
        if cookie is None:
            return None
        return await _in_thread(factory, service.principal_from_session, cookie)

    async def _sign_in_with_token(self, scope: Scope, host: str) -> _Reply:
        """`GET /page?token=...`: open a browser session for a read-write token, then show the
        same page without the token in the address bar."""
        factory = _session_factory(scope)
        query = _query(scope)
        token = query.pop(TOKEN_PARAMETER)
        found = await _in_thread(factory, service.principal_from_token, token)
        if found is None or found[0].user_id is None or found[0].scope != "write":
            return _Reply(303, location="/login?" + urlencode({"problem": "token"}))
        opened_cookie = await _in_thread(
            factory,
            service.open_browser_session,
            found[0].user_id,
            self.settings.session_ttl_s,
            write=True,
        )
        location = quote(scope["path"]) + ("?" + urlencode(query) if query else "")
        cookie = cookie_header(
            cookie_name(host),
            opened_cookie,
            max_age_s=int(self.settings.session_ttl_s),
            secure=scope.get("scheme") == "https",
        )
        return _Reply(303, location=location, cookie=cookie)


def _session_factory(scope: Scope) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = scope["app"].state.session_factory
    return factory


def _write_refusal(principal: Principal, headers: Headers, path: str) -> tuple[str, str] | None:
    """Why a principal may not make this state-changing request (code, message), or None.
    Signing in needs no CSRF token (there is none yet; the origin check covers it)."""
    if path in OPEN_PATHS:
        return None
    if principal.via == "session":
        sent = headers.get(CSRF_HEADER)
        expected = principal.csrf_token or ""
        if sent is None or not credentials.same_secret(sent, expected):
            return (
                "csrf_failed",
                "this request lacks the page's CSRF token (X-CSRF-Token); reload the page",
            )
    if principal.scope != "write":
        return "forbidden", "this token is read-only; create a read-write token to change things"
    if path.startswith(SELF_SERVICE_PREFIX) or principal.can_write:
        return None
    return "forbidden", f"{principal.name} is a viewer and can only read"


def _query(scope: Scope) -> dict[str, str]:
    raw: bytes = scope.get("query_string", b"")
    return dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))


def _login_location(scope: Scope) -> str:
    target = scope["path"]
    raw: bytes = scope.get("query_string", b"")
    if raw:
        target += "?" + raw.decode("latin-1")
    return "/login?" + urlencode({"next": target})


async def _in_thread(
    factory: sessionmaker[Session], function: Callable[..., T], *args: Any, write: bool = False
) -> T:
    """`function(session, *args)` in its own unit of work, in a worker thread; look-ups only read
    (on SQLite they take no write lock), `write=True` for the few that write."""
    call = partial(_in_session, factory, function, *args, write=write)
    return await anyio.to_thread.run_sync(call)


def _in_session(
    factory: sessionmaker[Session], function: Callable[..., T], *args: Any, write: bool
) -> T:
    with session_scope(factory, write=write) as session:
        return function(session, *args)


async def _send(send: Send, reply: _Reply) -> None:
    body = b""
    headers: list[tuple[bytes, bytes]] = [(b"cache-control", b"no-store")]
    if reply.location is not None:
        headers.append((b"location", reply.location.encode("latin-1", "replace")))
    else:
        error = {"code": reply.code, "message": reply.message, "details": None}
        body = json.dumps({"error": error}).encode()
        headers.append((b"content-type", b"application/json"))
    if reply.bearer:
        headers.append((b"www-authenticate", b'Bearer realm="segtrack"'))
    if reply.cookie is not None:
        headers.append((b"set-cookie", reply.cookie.encode("latin-1")))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
