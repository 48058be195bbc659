"""The audit log: destructive and security-relevant actions (deleting and cancelling runs, token
and account changes, sign-ins), written in the same unit of work as the action itself."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.auth.principal import Principal
from server.models import AuditEntry


def record(
    session: Session,
    principal: Principal | None,
    action: str,
    target: str,
    *,
    client: str | None = None,
    actor: str | None = None,
    **details: Any,
) -> None:
    """Add an entry; it is committed (or rolled back) with the action."""
    session.add(
        AuditEntry(
            actor_id=principal.user_id if principal is not None else None,
            actor=actor or (principal.name if principal is not None else "anonymous"),
            action=action,
            target=target[:200],
            details=details,
            client=client[:64] if client else None,
        )
    )


def entries(
    session: Session, *, limit: int, before_id: int | None = None, action: str | None = None
) -> list[AuditEntry]:
    """Newest first; `before_id` pages back."""
    query = select(AuditEntry)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    return list(session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)))
