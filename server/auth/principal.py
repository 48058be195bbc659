"""Who a request is: the user, their role, and how they proved it (token, browser session, or an
open server). Resolved once per request by `server.auth.middleware` and read by endpoints through
`PrincipalDep`, without touching the database again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request

from server.auth.roles import Role, Scope
from server.errors import Forbidden

Via = Literal["token", "session", "open"]
PRINCIPAL_KEY = "principal"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    user_id: int | None
    name: str
    role: Role
    scope: Scope
    via: Via
    token_id: int | None = None
    session_id: int | None = None
    csrf_token: str | None = None

    @property
    def can_write(self) -> bool:
        """Submits, edits, cancels and deletes (its own runs, or any for admins)."""
        return self.scope == "write" and self.role in ("admin", "member")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


OPEN_PRINCIPAL = Principal(user_id=None, name="anonymous", role="admin", scope="write", via="open")
"""Everyone, on a server started with `--insecure-no-auth`."""


def get_principal(request: Request) -> Principal:
    """The request's principal (the middleware refuses requests that have none)."""
    principal: Principal | None = getattr(request.state, PRINCIPAL_KEY, None)
    if principal is None:
        raise Forbidden("this endpoint needs a signed-in user or a token")
    return principal


def require_admin(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if not principal.is_admin:
        raise Forbidden(f"only admins may do this; {principal.name} is a {principal.role}")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
AdminDep = Annotated[Principal, Depends(require_admin)]
