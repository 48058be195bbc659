"""/api/v1/auth (sign-in, sign-out, one's own account and tokens), /api/v1/users, /api/v1/invites
and /api/v1/audit (admins)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.orm import Session

from server.auth import audit, repository, service
from server.auth.principal import AdminDep, Principal, PrincipalDep
from server.auth.rate_limit import LoginRateLimiter
from server.auth.schemas import (
    AuditEntryOut,
    AuditPage,
    InviteIn,
    InviteInfoOut,
    InviteOut,
    LoginIn,
    MeOut,
    NewTokenOut,
    PasswordIn,
    SetupIn,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
    UserPatch,
)
from server.auth.session_cookie import cookie_header, cookie_name
from server.bounds import Id32, Text
from server.deps import SessionDep, SettingsDep
from server.errors import Forbidden, TooManyRequests, Unauthenticated
from server.models import ApiToken, User
from server.settings import Settings
from server.unit_of_work import UnitOfWorkRoute

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1", tags=["accounts"])
MAX_AUDIT_PAGE = 500


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _limiter(request: Request) -> LoginRateLimiter:
    limiter: LoginRateLimiter = request.app.state.login_limiter
    return limiter


def _set_session_cookie(request: Request, response: Response, value: str, max_age_s: int) -> None:
    name = cookie_name(request.headers.get("host", ""))
    secure = request.url.scheme == "https"
    response.headers.append(
        "set-cookie", cookie_header(name, value, max_age_s=max_age_s, secure=secure)
    )


def _me(principal: Principal) -> MeOut:
    return MeOut(
        id=principal.user_id,
        name=principal.name,
        role=principal.role,
        via=principal.via,
        scope=principal.scope,
    )


def _sign_in(
    request: Request, response: Response, session: Session, settings: Settings, user: User
) -> MeOut:
    """Open a browser session for `user` and set its cookie on `response`."""
    cookie = service.open_browser_session(session, user.id, settings.session_ttl_s)
    _set_session_cookie(request, response, cookie, int(settings.session_ttl_s))
    return MeOut.model_validate(
        {"id": user.id, "name": user.name, "role": user.role, "via": "session", "scope": "write"}
    )


@router.post("/auth/login", responses={401: {}, 429: {}})
def login(
    body: LoginIn, request: Request, response: Response, session: SessionDep, settings: SettingsDep
) -> MeOut:
    """Sign a browser in: sets the session cookie (HttpOnly, SameSite=Lax). Failed attempts are
    limited per client address and per account (429 with Retry-After)."""
    limiter = _limiter(request)
    keys = (f"client:{_client(request)}", f"user:{body.name}")
    wait = limiter.retry_after(*keys)
    if wait > 0:
        raise TooManyRequests(
            f"too many failed sign-ins; try again in {wait:.0f} s",
            {"retry_after_s": round(wait)},
        )
    try:
        user = service.check_password(session, body.name, body.password)
    except Unauthenticated:
        limiter.failed(*keys)
        raise
    limiter.succeeded(*keys)
    audit.record(
        session, None, "auth.login", f"user {user.name}", actor=user.name, client=_client(request)
    )
    return _sign_in(request, response, session, settings, user)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    """End this browser's session (and clear its cookie)."""
    if principal.session_id is not None:
        service.close_browser_session(session, principal.session_id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _set_session_cookie(request, response, "", 0)
    return response


@router.get("/auth/me")
def me(principal: PrincipalDep) -> MeOut:
    """Who the caller is: name, role, and how they signed in."""
    return _me(principal)


@router.post("/auth/password", status_code=status.HTTP_204_NO_CONTENT, responses={401: {}})
def change_password(
    body: PasswordIn, request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    """Change one's own password; signs out every browser of the account, this one included."""
    if principal.user_id is None:
        raise Forbidden("this server has no accounts (started with --insecure-no-auth)")
    user = service.get_user(session, principal.user_id)
    service.check_password(session, user.name, body.current_password)
    service.change_user(session, user, password=body.new_password)
    audit.record(session, principal, "user.password", f"user {user.name}", client=_client(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/auth/invite", responses={403: {}})
def invite_info(session: SessionDep, code: Annotated[Text, Query(max_length=200)]) -> InviteInfoOut:
    """The role a one-time invite link grants (403 when it is unknown, used or expired)."""
    role = service.invite_role(session, code)
    return InviteInfoOut.model_validate({"role": role})


@router.post("/auth/setup", status_code=status.HTTP_201_CREATED, responses={403: {}})
def redeem_invite(
    body: SetupIn, request: Request, response: Response, session: SessionDep, settings: SettingsDep
) -> MeOut:
    """Create the account an invite link grants (the first admin's too) and sign in."""
    user = service.redeem_invite(session, body.code, body.name, body.password)
    return _sign_in(request, response, session, settings, user)


# --- tokens ---------------------------------------------------------------------------------------


def _token_out(record: ApiToken, user: str) -> dict[str, object]:
    return {
        "id": record.id,
        "name": record.name,
        "user": user,
        "prefix": record.prefix,
        "scope": record.scope,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "last_used_at": record.last_used_at,
        "revoked_at": record.revoked_at,
    }


@router.get("/auth/tokens")
def list_tokens(
    principal: PrincipalDep,
    session: SessionDep,
    all_users: Annotated[bool, Query(alias="all", description="Every user's (admins)")] = False,
) -> list[TokenOut]:
    """The caller's tokens (never the tokens themselves, only their first characters)."""
    if all_users and not principal.is_admin:
        raise Forbidden("only admins may list every user's tokens")
    if not all_users and principal.user_id is None:
        return []  # an open server has no accounts, hence no tokens of its own
    owner = None if all_users else principal.user_id
    return [
        TokenOut.model_validate(_token_out(token, name))
        for token, name in repository.tokens_of(session, owner)
    ]


@router.post("/auth/tokens", status_code=status.HTTP_201_CREATED)
def create_token(
    body: TokenIn, request: Request, principal: PrincipalDep, session: SessionDep
) -> NewTokenOut:
    """A new token for the caller, shown once. Viewers get read-only tokens only."""
    if principal.user_id is None:
        raise Forbidden("this server has no accounts (started with --insecure-no-auth)")
    if body.scope == "write" and not principal.can_write:
        raise Forbidden(f"{principal.name} is a viewer: only read tokens are possible")
    created = service.create_token(
        session, principal.user_id, body.name, body.scope, body.expires_in_days
    )
    audit.record(
        session,
        principal,
        "token.create",
        f"token {created.record.id}",
        client=_client(request),
        name=body.name,
        scope=body.scope,
    )
    return NewTokenOut.model_validate(
        {**_token_out(created.record, principal.name), "token": created.token}
    )


@router.delete("/auth/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(
    token_id: Id32, request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    """Revoke a token: it stops working at once. Admins may revoke anyone's."""
    record = service.token_of(session, principal, token_id)
    service.revoke_token(record)
    audit.record(
        session,
        principal,
        "token.revoke",
        f"token {record.id}",
        client=_client(request),
        name=record.name,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- users, invites and the audit log (admins) ----------------------------------------------------


def _user_out(user: User) -> UserOut:
    return UserOut.model_validate(
        {
            "id": user.id,
            "name": user.name,
            "role": user.role,
            "active": user.active,
            "created_at": user.created_at,
            "has_password": user.password_hash is not None,
        }
    )


@router.get("/users")
def list_users(_admin: AdminDep, session: SessionDep) -> list[UserOut]:
    return [_user_out(user) for user in repository.list_users(session)]


@router.post("/users", status_code=status.HTTP_201_CREATED, responses={409: {}})
def create_user(body: UserIn, request: Request, admin: AdminDep, session: SessionDep) -> UserOut:
    """A new account; without a password it signs in by token only."""
    user = service.create_user(session, body.name, body.role, body.password)
    audit.record(
        session, admin, "user.create", f"user {user.name}", client=_client(request), role=user.role
    )
    return _user_out(user)


@router.patch("/users/{user_id}", responses={409: {}})
def change_user(
    user_id: Id32, body: UserPatch, request: Request, admin: AdminDep, session: SessionDep
) -> UserOut:
    """Change a role, disable or enable an account, or set its password."""
    user = service.get_user(session, user_id)
    service.change_user(session, user, role=body.role, active=body.active, password=body.password)
    changed = body.model_dump(exclude_none=True, exclude={"password"})
    if body.password is not None:
        changed["password"] = "changed"
    audit.record(
        session, admin, "user.change", f"user {user.name}", client=_client(request), **changed
    )
    return _user_out(user)


@router.delete("/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses={409: {}})
def delete_user(user_id: Id32, request: Request, admin: AdminDep, session: SessionDep) -> Response:
    """Delete an account and its tokens; its runs stay, with the submitter's name."""
    user = service.get_user(session, user_id)
    service.delete_user(session, user)
    audit.record(session, admin, "user.delete", f"user {user.name}", client=_client(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/invites", status_code=status.HTTP_201_CREATED)
def create_invite(
    body: InviteIn, request: Request, admin: AdminDep, session: SessionDep
) -> InviteOut:
    """A one-time link, valid one day, that lets its holder create an account with `role`."""
    code = service.create_invite(session, body.role, admin.name)
    audit.record(session, admin, "invite.create", f"invite {body.role}", client=_client(request))
    return InviteOut(role=body.role, path="/setup?" + urlencode({"code": code}))


@router.get("/audit")
def read_audit(
    _admin: AdminDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Older than id")] = None,
    action: Annotated[Text | None, Query(max_length=64)] = None,
) -> AuditPage:
    """Who deleted, cancelled, signed in, changed accounts or tokens; newest first."""
    items = audit.entries(session, limit=limit, before_id=before, action=action)
    next_before = items[-1].id if len(items) == limit else None
    return AuditPage(
        items=[AuditEntryOut.model_validate(item) for item in items], next_before=next_before
    )
