"""The embedded mode's access: one admin account (`local`) and a read-write token for it, kept
across restarts while it stays valid (the command line keeps it in a file of the data folder)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from server.auth import credentials, repository, service

TOKEN_NAME = "segtrack up"


def ensure_local_token(session: Session, existing: str | None) -> str:
    """`existing` if it is still a live read-write token of the local admin, else a new one."""
    user = service.ensure_local_user(session)
    if existing is not None:
        found = repository.token_with_user(session, credentials.digest(existing))
        if found is not None and found[1].id == user.id and found[0].scope == "write":
            return existing
    return service.create_token(session, user.id, TOKEN_NAME, "write").token
