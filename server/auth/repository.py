"""Queries over users, tokens, browser sessions and invites. Never commits."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from server.models import ApiToken, BrowserSession, Invite, User, utcnow

LAST_USED_RESOLUTION = timedelta(minutes=1)
"""A token's `last_used_at` is rewritten at most this often, so busy scripts cost no writes."""


def user_by_name(session: Session, name: str) -> User | None:
    return session.scalars(select(User).where(User.name == name)).one_or_none()


def count_admins(session: Session) -> int:
    query = select(func.count()).where(User.role == "admin", User.active.is_(True))
    return session.scalar(query) or 0


def has_users(session: Session) -> bool:
    return session.scalars(select(User.id).limit(1)).first() is not None


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)))


def token_with_user(session: Session, token_hash: str) -> tuple[ApiToken, User] | None:
    """A live token (not revoked, not expired) of an active user."""
    now = utcnow()
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(
            ApiToken.token_hash == token_hash,
            ApiToken.revoked_at.is_(None),
            or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now),
            User.active.is_(True),
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])


def last_use_is_stale(token: ApiToken) -> bool:
    """Whether `last_used_at` should be rewritten (it is kept to the minute, not per request)."""
    return token.last_used_at is None or utcnow() - token.last_used_at >= LAST_USED_RESOLUTION


def touch_token(session: Session, token_id: int) -> None:
    """Record that the token was just used; a no-op when another request just did."""
    now = utcnow()
    session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            or_(
                ApiToken.last_used_at.is_(None),
                ApiToken.last_used_at < now - LAST_USED_RESOLUTION,
            ),
        )
        .values(last_used_at=now)
    )


def tokens_of(session: Session, user_id: int | None) -> list[tuple[ApiToken, str]]:
    """Tokens with their owner's name, newest first; every user's when `user_id` is None."""
    query = select(ApiToken, User.name).join(User, User.id == ApiToken.user_id)
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    rows = session.execute(query.order_by(ApiToken.id.desc()))
    return [(token, name) for token, name in rows]


def session_with_user(session: Session, session_hash: str) -> tuple[BrowserSession, User] | None:
    row = session.execute(
        select(BrowserSession, User)
        .join(User, User.id == BrowserSession.user_id)
        .where(
            BrowserSession.session_hash == session_hash,
            BrowserSession.expires_at > utcnow(),
            User.active.is_(True),
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])


def live_invite(session: Session, code_hash: str, *, for_update: bool = False) -> Invite | None:
    query = select(Invite).where(
        Invite.code_hash == code_hash, Invite.used_at.is_(None), Invite.expires_at > utcnow()
    )
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def delete_expired_access(session: Session, now: datetime) -> int:
    """Forget expired browser sessions and invites that expired or were used; returns how many
    sessions went."""
    gone = session.execute(delete(BrowserSession).where(BrowserSession.expires_at < now))
    session.execute(delete(Invite).where(or_(Invite.expires_at < now, Invite.used_at.is_not(None))))
    return int(gone.rowcount)  # type: ignore[attr-defined]
