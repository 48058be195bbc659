"""Members change only their own runs: a dependency of the run routes that, for a state-changing
request naming a run, checks who submitted it. Admins change any run; anyone who may write can
clone any run (the clone is theirs). Runs submitted before accounts existed are the admins'."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy import select

from server.auth.principal import Principal, PrincipalDep
from server.auth.request_checks import SAFE_METHODS
from server.bounds import ascii_id
from server.db import session_scope
from server.errors import Forbidden
from server.models import Run


def may_change_run(principal: Principal, owner_id: int | None) -> bool:
    """Whether `principal` may change a run submitted by user `owner_id`: it can write, and is
    an admin or that user."""
    return principal.can_write and (principal.is_admin or owner_id == principal.user_id)


def require_run_owner(request: Request, principal: PrincipalDep) -> None:
    """Refuse (403) a member's change to another user's run; validation and 404 come later."""
    if request.method in SAFE_METHODS or principal.is_admin:
        return
    raw = request.path_params.get("run_id")
    if raw is None or request.url.path.endswith("/clone"):
        return
    run_id = ascii_id(str(raw))
    if run_id is None:
        return
    with session_scope(request.app.state.session_factory, write=False) as session:
        row = session.execute(
            select(Run.submitted_by_id, Run.submitted_by).where(Run.id == run_id)
        ).one_or_none()
    if row is None:
        return
    owner_id, owner_name = row
    if not may_change_run(principal, owner_id):
        owner = owner_name or "nobody recorded"
        raise Forbidden(
            f"run {run_id} was submitted by {owner}; a {principal.role} may only change the runs "
            "they submitted (admins may change any)"
        )
