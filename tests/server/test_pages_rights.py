"""What the pages are told about their user: every page says who they are and whether they may
write, pages about one run or sweep say whether they may change it, and a viewer asking for the
new-run or sweep form gets a page saying they may only read, not a form whose submit fails."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from tests.server.helpers import ApiClient, create_external, issue_token, valid_config
from tests.server.test_sweep_api import grid_spec

HTML = {"accept": "text/html"}
PAGES = ("/", "/runs/new", "/sweeps", "/datasets", "/workers", "/compare?ids=1,2", "/account")


@pytest.fixture
def callers(
    app: FastAPI, client: ApiClient, session_factory: sessionmaker[Session]
) -> Iterator[dict[str, ApiClient]]:
    """The admin (`client`), a member and a viewer."""
    tokens = {
        "member": issue_token(session_factory, "maria", "member"),
        "viewer": issue_token(session_factory, "vera", "viewer"),
    }
    with ApiClient(app, tokens["member"]) as member, ApiClient(app, tokens["viewer"]) as viewer:
        yield {"admin": client, "member": member, "viewer": viewer}


def _page(caller: ApiClient, path: str, status: int = 200) -> str:
    response = caller.get(path, headers=HTML)
    assert response.status_code == status, (path, response.text[:300])
    return response.text


def _body_rights(html: str) -> tuple[str, str, str]:
    found = re.search(
        r'<body [^>]*data-user="([^"]*)" data-role="([^"]*)" data-can-write="(\w+)"', html
    )
    assert found, html[:500]
    return found.group(1), found.group(2), found.group(3)


def test_every_page_tells_its_scripts_the_user_role_and_write_right(
    callers: dict[str, ApiClient],
) -> None:
    expected = {"member": ("maria", "member", "true"), "viewer": ("vera", "viewer", "false")}
    for kind, rights in expected.items():
        for path in PAGES:
            status = 403 if (kind, path) == ("viewer", "/runs/new") else 200
            assert _body_rights(_page(callers[kind], path, status)) == rights, (kind, path)
    assert _body_rights(_page(callers["admin"], "/"))[1:] == ("admin", "true")


def test_viewers_are_not_offered_writing_controls_on_the_server_rendered_pages(
    callers: dict[str, ApiClient],
) -> None:
    viewer, member = callers["viewer"], callers["member"]
    runs = _page(viewer, "/")
    assert 'href="/runs/new"' not in runs, "neither the New run link nor the top bar's"
    assert re.search(r'id="cancel-selected"[^>]*hidden', runs)
    assert re.search(r'id="delete-selected"[^>]*hidden', runs)
    assert 'href="/runs/new?sweep=1"' not in _page(viewer, "/sweeps")
    datasets = _page(viewer, "/datasets")
    assert 'id="register-form"' not in datasets and 'id="register-read-only"' in datasets
    assert "Queue a run" not in _page(viewer, "/workers")
    assert '<option value="write">' not in _page(viewer, "/account")
    # The same pages offer members all of it.
    member_runs = _page(member, "/")
    assert 'href="/runs/new"' in member_runs
    assert not re.search(r'id="cancel-selected"[^>]*hidden', member_runs)
    assert 'id="register-form"' in _page(member, "/datasets")
    assert 'href="/runs/new?sweep=1"' in _page(member, "/sweeps")


def test_a_viewer_asking_for_the_new_run_or_sweep_form_is_told_they_may_only_read(
    callers: dict[str, ApiClient],
) -> None:
    for path, title in (("/runs/new", "New run"), ("/runs/new?sweep=1", "New sweep")):
        page = _page(callers["viewer"], path, 403)
        assert 'id="read-only"' in page and 'id="new-run-form"' not in page
        assert f"<h1>{title}</h1>" in page
        assert "vera is a viewer and may only read" in page
    assert 'id="new-run-form"' in _page(callers["member"], "/runs/new?sweep=1")


def test_run_and_sweep_pages_say_whether_their_user_may_change_them(
    callers: dict[str, ApiClient], shapes_dataset: Path
) -> None:
    admin, member, viewer = callers["admin"], callers["member"], callers["viewer"]
    admins_run = create_external(admin, "admins")["id"]
    members_run = create_external(member, "marias")["id"]
    admins_sweep = admin.post("/api/v1/sweeps", json=grid_spec()).json()["id"]
    members_sweep = member.post(
        "/api/v1/sweeps", json=grid_spec(name="marias", config=valid_config())
    ).json()["id"]
    for path, offered in (
        (f"/runs/{admins_run}", {"admin": True, "member": False, "viewer": False}),
        (f"/runs/{members_run}", {"admin": True, "member": True, "viewer": False}),
        (f"/sweeps/{admins_sweep}", {"admin": True, "member": False, "viewer": False}),
        (f"/sweeps/{members_sweep}", {"admin": True, "member": True, "viewer": False}),
    ):
        for kind, may in offered.items():
            page = _page(callers[kind], path)
            assert f'data-can-change="{str(may).lower()}"' in page, (kind, path)
    # The workers page's queue says whose each run is, so it offers its controls the same way.
    queued = member.post("/api/v1/runs", json={"name": "q", "config": valid_config()}).json()
    queue = {
        run["id"]: run["submitted_by"] for run in viewer.get("/api/v1/workers").json()["queue"]
    }
    assert queue[queued["id"]] == "maria"
    # Clone, sweep-around and fine-tune make the user's own run: any writer is offered them.
    assert re.search(r'id="clone-run"[^>]*hidden', _page(viewer, f"/runs/{admins_run}"))
    assert not re.search(r'id="clone-run"[^>]*hidden', _page(member, f"/runs/{admins_run}"))
