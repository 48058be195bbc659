"""Request and response bodies of the account endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from server.bounds import Text

RoleName = Literal["admin", "member", "viewer"]
ScopeName = Literal["read", "write"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_In):
    name: Text = Field(max_length=100)
    password: Text = Field(max_length=1024)


class SetupIn(_In):
    code: Text = Field(max_length=200, description="The code of a one-time invite link")
    name: Text = Field(max_length=100)
    password: Text = Field(max_length=1024)


class PasswordIn(_In):
    current_password: Text = Field(max_length=1024)
    new_password: Text = Field(max_length=1024)


class MeOut(BaseModel):
    id: int | None
    name: str
    role: RoleName
    via: Literal["token", "session", "open"]
    scope: ScopeName


class InviteInfoOut(BaseModel):
    role: RoleName


class TokenIn(_In):
    name: Text = Field(min_length=1, max_length=100, description="What the token is for")
    scope: ScopeName = Field("write", description="`read`: GET requests only")
    expires_in_days: float | None = Field(
        None, gt=0, le=3650, description="Days until it stops working; none: until revoked"
    )


class TokenOut(BaseModel):
    id: int
    name: str
    user: str
    prefix: str
    scope: ScopeName
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewTokenOut(TokenOut):
    token: str = Field(description="Shown this once; only its hash is kept")


class UserIn(_In):
    name: Text = Field(max_length=100)
    role: RoleName = "member"
    password: Text | None = Field(
        None, max_length=1024, description="None: the account signs in by token only"
    )


class UserPatch(_In):
    role: RoleName | None = None
    active: bool | None = None
    password: Text | None = Field(None, max_length=1024)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    role: RoleName
    active: bool
    created_at: datetime
    has_password: bool


class InviteIn(_In):
    role: RoleName = "member"


class InviteOut(BaseModel):
    role: RoleName
    path: str = Field(description="The one-time set-up page, `/setup?code=...`, valid one day")


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, object]
    client: str | None


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_before: int | None
