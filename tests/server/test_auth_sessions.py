"""Browsers: password sign-in with a session cookie, CSRF tokens on state-changing requests,
sign-out, rate-limited guessing, the `?token=` link of `segtrack up`, invite links and the first
admin's set-up link, password changes and the last admin."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from server.auth import service
from server.auth.first_admin import announce_first_admin
from server.db import session_scope
from server.reaper import reap_once
from server.settings import Settings
from tests.server.helpers import ApiClient, RecordingTaskQueue, issue_token

PASSWORD = "correct horse battery"


@pytest.fixture
def alice(session_factory: sessionmaker[Session]) -> str:
    with session_scope(session_factory) as session:
        service.create_user(session, "alice", "member", PASSWORD)
    return "alice"


def _csrf(page_html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page_html)
    assert found is not None, "the page carries no CSRF token"
    return found.group(1)


def test_password_sign_in_sets_a_session_cookie_that_needs_csrf_to_write(
    anonymous: ApiClient, alice: str
) -> None:
    signed_in = anonymous.post("/api/v1/auth/login", json={"name": alice, "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    cookie = signed_in.headers["set-cookie"]
    assert cookie.startswith("segtrack_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert anonymous.get("/api/v1/auth/me").json() == {
        "id": signed_in.json()["id"], "name": "alice", "role": "member", "via": "session",
        "scope": "write",
    }  # fmt: skip
    body = {"name": "from the browser", "external": True}
    refused = anonymous.post("/api/v1/runs", json=body)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    assert (
        anonymous.post("/api/v1/runs", json=body, headers={"X-CSRF-Token": "guess"}).status_code
        == 403
    )
    page = anonymous.get("/")
    assert "alice" in page.text
    token = _csrf(page.text)
    created = anonymous.post("/api/v1/runs", json=body, headers={"X-CSRF-Token": token})
    assert created.status_code == 201
    assert created.json()["submitted_by"] == "alice"
    out = anonymous.post("/api/v1/auth/logout", headers={"X-CSRF-Token": token})
    assert out.status_code == 204
    assert "Max-Age=0" in out.headers["set-cookie"]
    assert anonymous.get("/api/v1/auth/me").status_code == 401


def test_wrong_passwords_look_alike_and_are_rate_limited(
    app: FastAPI, anonymous: ApiClient, alice: str
) -> None:
    wrong = anonymous.post("/api/v1/auth/login", json={"name": alice, "password": "nope-nope"})
    unknown = anonymous.post("/api/v1/auth/login", json={"name": "mallory", "password": "x" * 9})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]
    limit = app.state.settings.login_attempts
    for _ in range(limit):
        anonymous.post("/api/v1/auth/login", json={"name": alice, "password": "nope-nope"})
    blocked = anonymous.post("/api/v1/auth/login", json={"name": alice, "password": PASSWORD})
    assert blocked.status_code == 429
    assert blocked.json()["details"]["retry_after_s"] > 0 if "details" in blocked.json() else True
    assert "try again in" in blocked.json()["error"]["message"]


def test_a_token_link_signs_the_browser_in_and_drops_the_token_from_the_address(
    anonymous: ApiClient, session_factory: sessionmaker[Session]
) -> None:
    token = issue_token(session_factory, "local", "admin")
    opened = anonymous.get(f"/runs/new?token={token}&x=1")
    assert opened.status_code == 303
    assert opened.headers["location"] == "/runs/new?x=1"
    assert "HttpOnly" in opened.headers["set-cookie"]
    assert anonymous.get("/api/v1/auth/me").json()["name"] == "local"
    reader = issue_token(session_factory, "reader", "viewer", scope="read")
    with ApiClient(anonymous.app) as fresh:
        refused = fresh.get(f"/?token={reader}")
        assert refused.headers["location"] == "/login?problem=token"
        assert fresh.get("/?token=st_forged").headers["location"] == "/login?problem=token"
        assert fresh.get("/api/v1/auth/me").status_code == 401


def test_cookie_names_follow_the_port(anonymous: ApiClient, alice: str) -> None:
    signed_in = anonymous.post(
        "/api/v1/auth/login",
        json={"name": alice, "password": PASSWORD},
        headers={"Host": "127.0.0.1:8123"},
    )
    assert signed_in.headers["set-cookie"].startswith("segtrack_session_8123=")


def test_invite_links_create_accounts_once(client: ApiClient, anonymous: ApiClient) -> None:
    invite = client.post("/api/v1/invites", json={"role": "viewer"}).json()
    code = invite["path"].split("code=", 1)[1]
    assert anonymous.get(f"/api/v1/auth/invite?code={code}").json() == {"role": "viewer"}
    body = {"code": code, "name": "vera", "password": PASSWORD}
    created = anonymous.post("/api/v1/auth/setup", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["role"] == "viewer"
    again = anonymous.post("/api/v1/auth/setup", json={**body, "name": "vera2"})
    assert again.status_code == 403
    assert "ask an admin for a new one" in again.json()["error"]["message"]
    short = client.post("/api/v1/invites", json={"role": "member"}).json()["path"].split("=")[1]
    weak = anonymous.post("/api/v1/auth/setup", json={"code": short, "name": "w", "password": "1"})
    assert weak.status_code == 422
    assert "at least 8 characters" in weak.json()["error"]["message"]


def test_a_server_without_accounts_prints_a_set_up_link_for_the_first_admin(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    link = announce_first_admin(
        session_factory, settings.model_copy(update={"public_url": "http://h:1"})
    )
    assert link is not None and link.startswith("http://h:1/setup?code=")
    with session_scope(session_factory) as session:
        user = service.redeem_invite(session, link.split("code=")[1], "first", PASSWORD)
        assert user.role == "admin"
    assert announce_first_admin(session_factory, settings) is None


def test_changing_a_password_signs_browsers_out_and_the_last_admin_stays(
    client: ApiClient, anonymous: ApiClient, alice: str
) -> None:
    anonymous.post("/api/v1/auth/login", json={"name": alice, "password": PASSWORD})
    users = {user["name"]: user for user in client.get("/api/v1/users").json()}
    new = {"password": "another good one"}
    assert client.patch(f"/api/v1/users/{users['alice']['id']}", json=new).status_code == 200
    assert anonymous.get("/api/v1/auth/me").status_code == 401
    demoted = client.patch(f"/api/v1/users/{users['admin']['id']}", json={"role": "member"})
    assert demoted.status_code == 409
    assert "last admin" in demoted.json()["error"]["message"]
    audit = client.get("/api/v1/audit").json()["items"]
    assert [entry["action"] for entry in audit][:2] == ["user.change", "auth.login"]


def test_the_reaper_forgets_expired_sessions_and_spent_invites(
    db_session: Session, settings: Settings, alice: str
) -> None:
    user = service.check_password(db_session, alice, PASSWORD)
    expired = service.open_browser_session(db_session, user.id, ttl_s=-1)
    live = service.open_browser_session(db_session, user.id, ttl_s=3600)
    service.create_invite(db_session, "viewer", None)
    report = reap_once(db_session, settings, RecordingTaskQueue())
    assert report.expired_sessions == 1
    assert service.principal_from_session(db_session, expired) is None
    assert service.principal_from_session(db_session, live) is not None
