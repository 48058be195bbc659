"""The roles and token scopes, with no dependency (the command line reads them at start-up)."""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["admin", "member", "viewer"]
Scope = Literal["read", "write"]
ROLES: tuple[str, ...] = get_args(Role)
SCOPES: tuple[str, ...] = get_args(Scope)
