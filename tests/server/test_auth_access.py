"""Every request is someone's: tokens, browser sessions with CSRF tokens, the Host allow-list,
cross-site refusals, JSON-only bodies, roles, ownership of runs, and revocation taking effect at
once. In-process app on the rolled-back PostgreSQL connection."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from server.models import AuditEntry, Run
from tests.server.helpers import ApiClient, create_external, issue_token

STATE_CHANGING = ("POST", "PATCH", "PUT", "DELETE")
SELF_SERVICE = "/api/v1/auth/"


def _client(app: FastAPI, token: str | None) -> ApiClient:
    return ApiClient(app, token).__enter__()


@pytest.fixture
def clients(app: FastAPI, session_factory: sessionmaker[Session]) -> Iterator[dict[str, ApiClient]]:
    """One client per kind of caller."""
    tokens = {
        "admin": issue_token(session_factory, "root", "admin"),
        "owner": issue_token(session_factory, "owner", "member"),
        "member": issue_token(session_factory, "other", "member"),
        "viewer": issue_token(session_factory, "watcher", "viewer"),
        "read_token": issue_token(session_factory, "reader", "member", scope="read"),
    }
    opened = {kind: _client(app, token) for kind, token in tokens.items()}
    opened["nobody"] = _client(app, None)
    yield opened
    for client in opened.values():
        client.__exit__()


def test_requests_without_credentials_get_401_and_browsers_the_sign_in_page(
    anonymous: ApiClient,
) -> None:
    response = anonymous.get("/api/v1/runs")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in response.json()["error"]["message"]
    page = anonymous.get("/runs/7?x=1")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fruns%2F7%3Fx%3D1"
    assert anonymous.get("/healthz").status_code == 200
    assert anonymous.get("/login").status_code == 200
    assert anonymous.get("/static/css/app.css").status_code == 200


def test_a_bad_token_is_refused_and_a_revoked_one_fails_at_once(
    client: ApiClient, app: FastAPI
) -> None:
    assert client.get("/api/v1/runs").status_code == 200
    with ApiClient(app, "st_not-a-real-token") as forged:
        refused = forged.get("/api/v1/runs")
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "this token is unknown, revoked or expired"
    with ApiClient(app) as odd:
        assert odd.get("/api/v1/runs", headers={"Authorization": "Basic abc"}).status_code == 401

    created = client.post("/api/v1/auth/tokens", json={"name": "script", "scope": "write"})
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith("st_")
    listed = client.get("/api/v1/auth/tokens").json()
    assert all("token" not in item for item in listed)
    assert created.json()["prefix"] == token[:10]
    with ApiClient(app, token) as script:
        assert script.get("/api/v1/auth/me").json()["via"] == "token"
        assert client.delete(f"/api/v1/auth/tokens/{created.json()['id']}").status_code == 204
        assert script.get("/api/v1/runs").status_code == 401


def test_static_files_are_served_without_a_credential_look_up(
    client: ApiClient, app: FastAPI, session_factory: sessionmaker[Session]
) -> None:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    engine = session_factory.kw["bind"]
    with ApiClient(app, "st_not-a-real-token") as forged:
        event.listen(engine, "before_cursor_execute", record)
        try:
            assert client.get("/static/css/app.css").status_code == 200
            assert forged.get("/static/css/app.css").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", record)
    assert statements == [], statements
    assert client.get("/api/v1/runs").status_code == 200  # the API still reads the token


def test_read_tokens_and_viewers_cannot_change_anything(clients: dict[str, ApiClient]) -> None:
    for kind in ("viewer", "read_token"):
        response = clients[kind].post("/api/v1/runs", json={"name": "x", "external": True})
        assert response.status_code == 403, kind
        assert response.json()["error"]["code"] == "forbidden"
    assert clients["viewer"].get("/api/v1/runs").status_code == 200
    # A viewer still manages its own read-only tokens.
    assert (
        clients["viewer"]
        .post("/api/v1/auth/tokens", json={"name": "r", "scope": "write"})
        .status_code
        == 403
    )
    assert (
        clients["viewer"]
        .post("/api/v1/auth/tokens", json={"name": "r", "scope": "read"})
        .status_code
        == 201
    )


def _fill(path: str, run_id: int) -> str:
    values = {"run_id": str(run_id), "id_or_name": "no-such-dataset"}
    return re.sub(r"\{(\w+)\}", lambda match: values.get(match.group(1), "999999"), path)


def _state_changing_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every documented (method, path) that changes something."""
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    return sorted(
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if method.upper() in STATE_CHANGING
    )


def test_role_matrix_over_every_state_changing_endpoint(
    app: FastAPI, clients: dict[str, ApiClient]
) -> None:
    """Nobody: 401. Viewers and read tokens: 403 (but for their own account). Members: 403 on
    other users' runs (cloning is allowed) and on admin endpoints. Admins: never 401/403."""
    owned: dict[str, Any] = create_external(clients["owner"], "owned")
    routes = _state_changing_routes(app)
    assert len(routes) >= 15
    for method, path in routes:
        url = _fill(path, owned["id"])
        results = {kind: client.request(method, url, json={}).status_code
                   for kind, client in clients.items()}  # fmt: skip
        where = f"{method} {path}: {results}"
        if path in ("/api/v1/auth/login", "/api/v1/auth/setup"):
            assert results["nobody"] not in (401, 403), where
            continue
        assert results["nobody"] == 401, where
        assert results["read_token"] == 403, where
        assert results["admin"] not in (401, 403), where
        if path.startswith(SELF_SERVICE):
            assert results["viewer"] != 403 or path == "/api/v1/auth/password", where
            continue
        assert results["viewer"] == 403, where
        admin_only = path.startswith(("/api/v1/users", "/api/v1/invites"))
        others_run = "{run_id}" in path and not path.endswith("/clone")
        if admin_only or others_run:
            assert results["member"] == 403, where
        else:
            assert results["member"] != 403, where
        if not admin_only:
            assert results["owner"] != 403, where


def test_runs_record_their_submitter_and_members_manage_only_their_own(
    clients: dict[str, ApiClient], db_session: Session
) -> None:
    run = create_external(clients["owner"], "mine")
    assert run["submitted_by"] == "owner"
    stranger = clients["member"].post(f"/api/v1/runs/{run['id']}/cancel")
    assert stranger.status_code == 403
    assert "submitted by owner" in stranger.json()["error"]["message"]
    assert clients["owner"].post(f"/api/v1/runs/{run['id']}/cancel").status_code == 200
    assert clients["admin"].delete(f"/api/v1/runs/{run['id']}").status_code == 204
    assert db_session.get(Run, run["id"]) is None
    actions = [(entry.actor, entry.action) for entry in db_session.query(AuditEntry)]
    assert ("owner", "run.cancel") in actions
    assert ("root", "run.delete") in actions


def test_the_host_header_must_be_this_server(client: ApiClient) -> None:
    rebound = client.get("/api/v1/runs", headers={"Host": "attacker.example:8000"})
    assert rebound.status_code == 400
    assert rebound.json()["error"]["code"] == "host_not_allowed"
    assert client.get("/api/v1/runs", headers={"Host": "127.0.0.1:8000"}).status_code == 200
    assert client.get("/api/v1/runs", headers={"Host": "localhost"}).status_code == 200


def test_cross_site_and_non_json_writes_are_refused(client: ApiClient) -> None:
    run = create_external(client)
    other_site = client.post(
        f"/api/v1/runs/{run['id']}/cancel", headers={"Origin": "http://evil.example"}
    )
    assert other_site.status_code == 403
    assert other_site.json()["error"]["code"] == "cross_site_refused"
    fetch_site = client.post(
        f"/api/v1/runs/{run['id']}/cancel", headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert fetch_site.status_code == 403
    text_plain = client.post(
        f"/api/v1/runs/{run['id']}/metrics",
        content=b'{"points": [{"key": "a", "step": 1, "value": 1}]}',
        headers={"Content-Type": "text/plain"},
    )
    assert text_plain.status_code == 415
    form = client.post(
        "/api/v1/runs",
        content=b"name=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415
    same_origin = client.post(
        f"/api/v1/runs/{run['id']}/cancel", headers={"Origin": "http://testserver"}
    )
    assert same_origin.status_code == 200


def test_nul_bytes_and_huge_ids_in_account_requests_are_422_not_500(
    client: ApiClient, anonymous: ApiClient
) -> None:
    """PostgreSQL cannot store or compare NUL: every text that reaches it is refused first."""
    refused = [
        anonymous.post("/api/v1/auth/login", json={"name": "a\x00", "password": "x" * 9}),
        anonymous.post("/api/v1/auth/setup", json={"code": "c", "name": "n\x00", "password": "p"}),
        anonymous.get("/api/v1/auth/invite", params={"code": "a\x00b"}),
        client.get("/api/v1/audit", params={"action": "a\x00b"}),
        client.post("/api/v1/users", json={"name": "a\x00b", "role": "member"}),
        client.post("/api/v1/auth/tokens", json={"name": "t\x00"}),
        client.delete("/api/v1/auth/tokens/99999999999999999999"),
        client.patch("/api/v1/users/2147483648", json={"role": "viewer"}),
    ]
    assert [response.status_code for response in refused] == [422] * len(refused), [
        response.text for response in refused
    ]
