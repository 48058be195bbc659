"""Accounts, tokens, sign-in and invites: the rules, over `server.auth.repository`. Never commits.

Errors are domain errors with messages that say what is allowed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from server.auth import audit, credentials, repository
from server.auth.principal import Principal
from server.auth.roles import ROLES, SCOPES, Role, Scope
from server.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from server.models import ApiToken, BrowserSession, Invite, User, utcnow

INVITE_TTL = timedelta(days=1)
LOCAL_USER = "local"
"""The embedded mode's one account: an admin that signs in with the token `segtrack up` prints."""


def principal_from_token(session: Session, token: str) -> tuple[Principal, bool] | None:
    """The principal of a bearer token and whether its `last_used_at` is due for a rewrite; None
    when the token is unknown, revoked or expired, or its user is disabled."""
    found = repository.token_with_user(session, credentials.digest(token))
    if found is None:
        return None
    api_token, user = found
    principal = Principal(
        user_id=user.id,
        name=user.name,
        role=_role(user.role),
        scope=_scope(api_token.scope),
        via="token",
        token_id=api_token.id,
    )
    return principal, repository.last_use_is_stale(api_token)


def principal_from_session(session: Session, session_id: str) -> Principal | None:
    found = repository.session_with_user(session, credentials.digest(session_id))
    if found is None:
        return None
    browser, user = found
    return Principal(
        user_id=user.id,
        name=user.name,
        role=_role(user.role),
        scope="write",
        via="session",
        session_id=browser.id,
        csrf_token=browser.csrf_token,
    )


def _role(value: str) -> Role:
    if value == "admin":
        return "admin"
    return "member" if value == "member" else "viewer"


def _scope(value: str) -> Scope:
    return "write" if value == "write" else "read"


def open_browser_session(session: Session, user_id: int, ttl_s: float) -> str:
    """Sign a browser of `user_id` in for `ttl_s`; returns the cookie value (stored hashed)."""
    cookie = credentials.new_secret()
    session.add(
        BrowserSession(
            user_id=user_id,
            session_hash=credentials.digest(cookie),
            csrf_token=credentials.new_secret(),
            expires_at=utcnow() + timedelta(seconds=ttl_s),
        )
    )
    session.flush()
    return cookie


def close_browser_session(session: Session, session_id: int) -> None:
    browser = session.get(BrowserSession, session_id)
    if browser is not None:
        session.delete(browser)


def check_password(session: Session, name: str, password: str) -> User:
    """The active account `name` if `password` is its password; Unauthenticated otherwise (the
    same message whether the name exists or not)."""
    user = repository.user_by_name(session, name)
    if user is None or not user.active:
        credentials.dummy_password_check(password)
        raise Unauthenticated("wrong user name or password")
    if not credentials.verify_password(user.password_hash, password):
        raise Unauthenticated("wrong user name or password")
    return user


# --- users ----------------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if not name or len(name) > 100 or not name.isascii() or not name.isprintable():
        raise InvalidInput(
            "a user name has 1 to 100 printable ASCII characters",
            [{"field": "name", "message": "1 to 100 printable ASCII characters"}],
        )
    if name.strip() != name or " " in name:
        raise InvalidInput(
            "a user name cannot contain spaces",
            [{"field": "name", "message": "no spaces"}],
        )


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(
            f"unknown role {role!r}; roles are {', '.join(ROLES)}",
            [{"field": "role", "message": f"one of {', '.join(ROLES)}"}],
        )


def _checked_password_hash(password: str) -> str:
    problem = credentials.password_problem(password)
    if problem is not None:
        raise InvalidInput(problem, [{"field": "password", "message": problem}])
    return credentials.hash_password(password)


def create_user(session: Session, name: str, role: str, password: str | None) -> User:
    """A new account; `password` None makes a token-only account."""
    _check_name(name)
    _check_role(role)
    if repository.user_by_name(session, name) is not None:
        raise Conflict(f"a user named {name!r} exists already")
    user = User(
        name=name,
        role=role,
        password_hash=None if password is None else _checked_password_hash(password),
        password_changed_at=None if password is None else utcnow(),
        active=True,
    )
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


def _keep_an_admin(session: Session, user: User) -> None:
    if user.role == "admin" and user.active and repository.count_admins(session) <= 1:
        raise Conflict(f"{user.name} is the last admin; make another user admin first")


def change_user(
    session: Session,
    user: User,
    *,
    role: str | None = None,
    active: bool | None = None,
    password: str | None = None,
) -> User:
    """Change role, active flag or password; the last active admin stays an active admin.
    Disabling an account or changing its password signs its browsers out."""
    if role is not None:
        _check_role(role)
        if role != "admin":
            _keep_an_admin(session, user)
        user.role = role
    if active is not None:
        if not active:
            _keep_an_admin(session, user)
            _end_browser_sessions(session, user.id)
        user.active = active
    if password is not None:
        user.password_hash = _checked_password_hash(password)
        user.password_changed_at = utcnow()
        _end_browser_sessions(session, user.id)
    return user


def delete_user(session: Session, user: User) -> None:
    _keep_an_admin(session, user)
    session.delete(user)


def _end_browser_sessions(session: Session, user_id: int) -> None:
    for browser in session.query(BrowserSession).filter(BrowserSession.user_id == user_id):
        session.delete(browser)


# --- tokens ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewToken:
    """A token just created: `token` is shown once and never stored."""

    token: str
    record: ApiToken


def create_token(
    session: Session,
    user_id: int,
    name: str,
    scope: str = "write",
    expires_in_days: float | None = None,
) -> NewToken:
    if not name or len(name) > 100 or "\x00" in name:
        raise InvalidInput(
            "a token name has 1 to 100 characters",
            [{"field": "name", "message": "1 to 100 characters, no NUL"}],
        )
    if scope not in SCOPES:
        raise InvalidInput(
            f"unknown scope {scope!r}; scopes are read (GET only) and write",
            [{"field": "scope", "message": "read or write"}],
        )
    token = credentials.new_api_token()
    record = ApiToken(
        user_id=user_id,
        name=name,
        token_hash=credentials.digest(token),
        prefix=credentials.shown_prefix(token),
        scope=scope,
        expires_at=None if expires_in_days is None else utcnow() + timedelta(days=expires_in_days),
    )
    session.add(record)
    session.flush()
    return NewToken(token=token, record=record)


def token_of(session: Session, principal: Principal, token_id: int) -> ApiToken:
    """A token the caller may see and revoke: their own, or anyone's for an admin."""
    record = session.get(ApiToken, token_id)
    if record is None or not (principal.is_admin or record.user_id == principal.user_id):
        raise NotFound(f"token {token_id} does not exist")
    return record


def revoke_token(record: ApiToken) -> None:
    if record.revoked_at is None:
        record.revoked_at = utcnow()


# --- invites and the first admin ------------------------------------------------------------------


def create_invite(session: Session, role: str, created_by: str | None) -> str:
    """A one-time code that creates an account with `role`; returns the code (stored hashed)."""
    _check_role(role)
    code = credentials.new_secret()
    session.add(
        Invite(
            code_hash=credentials.digest(code),
            role=role,
            created_by=created_by,
            expires_at=utcnow() + INVITE_TTL,
        )
    )
    session.flush()
    return code


def invite_role(session: Session, code: str) -> str:
    invite = repository.live_invite(session, credentials.digest(code))
    if invite is None:
        raise Forbidden("this invite link is unknown, used or expired; ask an admin for a new one")
    return invite.role


def redeem_invite(session: Session, code: str, name: str, password: str) -> User:
    """Create the invited account (once)."""
    invite = repository.live_invite(session, credentials.digest(code), for_update=True)
    if invite is None:
        raise Forbidden("this invite link is unknown, used or expired; ask an admin for a new one")
    user = create_user(session, name, invite.role, password)
    invite.used_at = utcnow()
    audit.record(
        session, None, "user.create", f"user {name}", actor=name, role=invite.role, via="invite"
    )
    return user


def first_admin_invite(session: Session) -> str | None:
    """A set-up code for the first admin when there is no account yet; None otherwise."""
    if repository.has_users(session):
        return None
    return create_invite(session, "admin", created_by=None)


def ensure_local_user(session: Session) -> User:
    """The embedded mode's admin (no password: it signs in with its token)."""
    user = repository.user_by_name(session, LOCAL_USER)
    if user is None:
        return create_user(session, LOCAL_USER, "admin", None)
    if user.role != "admin" or not user.active:
        user.role, user.active = "admin", True
    return user
