"""Pages offer only the controls the API accepts from their user: a viewer signed in walks every
page and finds nothing that would end in a 403 (and the new-run and sweep forms say they may only
read), and a member on an admin's run, sweep and dataset finds only what a member may do there
(clone, yes; cancel, delete, the sweep's controls, no). Any refused request the pages made
would show in the console, which fails the test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.app_api import TINY, api, unique
from tests.e2e.conftest import screenshot
from tests.e2e.dashboard_helpers import cancel_quietly, create_run
from tests.e2e.run_page_helpers import signed_in_user
from tests.e2e.test_sweep_page import create_sweep


@pytest.fixture(scope="module")
def admins(app_url: str) -> Iterator[dict[str, Any]]:
    """An admin's queued run (on a queue no worker serves, so it stays queued), a second run to
    compare it with, and a paused sweep."""
    body = {
        "name": unique("admins-run"),
        "config": {**TINY, "epochs": 1},
        "queue": unique("parked"),
    }
    run = api(app_url, "POST", "/api/v1/runs", body)
    other = create_run(app_url, unique("admins-other"), external=True)
    sweep = create_sweep(app_url, max_runs=1, parallel=1, config={**TINY, "epochs": 1})
    api(app_url, "POST", f"/api/v1/sweeps/{sweep['id']}/pause")
    yield {"run": run, "other": other, "sweep": sweep}
    cancel_quietly(app_url, run["id"])
    cancel_quietly(app_url, other["id"])


def test_a_viewer_is_offered_no_control_the_api_would_refuse(
    browser: Browser, app_url: str, admins: dict[str, Any]
) -> None:
    run, sweep = admins["run"], admins["sweep"]
    with signed_in_user(browser, app_url, "viewer", refusing_pages=["/runs/new"]) as page:
        expect(page.locator("nav[aria-label=Main]")).not_to_contain_text("New run")
        page.goto(f"{app_url}/?q={run['name']}")
        row = page.locator(f'#runs-body tr[data-run-id="{run["id"]}"]')
        expect(row).to_be_visible()
        expect(page.get_by_role("link", name="New run")).to_have_count(0)
        row.locator("input[type=checkbox]").check()
        expect(page.locator("#selection-count")).to_have_text("1 run selected")
        expect(page.locator("#cancel-selected")).to_be_hidden()
        expect(page.locator("#delete-selected")).to_be_hidden()
        screenshot(page, "viewer-runs")

        page.goto(f"{app_url}/runs/{run['id']}")
        expect(page.locator("#run-status")).to_have_text("queued")
        for control in (
            "#cancel-run",
            "#delete-run",
            "#clone-run",
            "#sweep-around-run",
            "#fine-tune-run",
            "#resume-group",
            "#tag-form",
        ):
            expect(page.locator(control)).to_be_hidden()
        expect(page.locator("#run-name")).to_have_attribute("readonly", "")
        colors = page.locator("#class-legend input[type=color]")
        expect(colors.first).to_be_attached()
        for index in range(colors.count()):
            expect(colors.nth(index)).to_be_disabled()
        expect(page.locator("#class-legend")).to_contain_text("you may only read them")
        screenshot(page, "viewer-run")

        for path, title in (("/runs/new", "New run"), ("/runs/new?sweep=1", "New sweep")):
            page.goto(f"{app_url}{path}")
            expect(page.locator("#read-only h1")).to_have_text(title)
            expect(page.locator("#read-only")).to_contain_text("is a viewer and may only read")
            expect(page.locator("#new-run-form")).to_have_count(0)
        screenshot(page, "viewer-new-sweep")

        page.goto(f"{app_url}/sweeps")
        expect(page.locator(f'#sweeps-body a[href="/sweeps/{sweep["id"]}"]')).to_be_visible()
        expect(page.get_by_role("link", name="New sweep")).to_have_count(0)
        page.goto(f"{app_url}/sweeps/{sweep['id']}")
        expect(page.locator("#sweep-page[data-ready]")).to_be_attached()
        expect(page.locator("#sweep-status")).to_have_text("paused")
        expect(page.locator("#sweep-actions > *:visible")).to_have_count(0)
        screenshot(page, "viewer-sweep")

        page.goto(f"{app_url}/datasets")
        demo = page.locator('article[data-dataset="demo"]')
        expect(demo.locator("input.class-color").first).to_be_disabled()
        expect(demo.get_by_role("link", name="New run")).to_have_count(0)
        expect(page.locator("#register-form")).to_have_count(0)
        expect(page.locator("#register-read-only")).to_contain_text("may only read")
        screenshot(page, "viewer-datasets")

        page.goto(f"{app_url}/workers")
        queued = page.locator(f'#queue-body tr[data-run-id="{run["id"]}"]')
        expect(queued.locator("select")).to_be_disabled()
        expect(queued.locator("input")).to_be_disabled()
        expect(queued.get_by_role("button", name="Move")).to_be_hidden()
        screenshot(page, "viewer-workers")

        page.goto(f"{app_url}/compare?ids={run['id']},{admins['other']['id']}")
        expect(page.locator("#class-legend input[type=color]:enabled")).to_have_count(0)
        page.goto(f"{app_url}/account")
        expect(page.locator("#token-scope option")).to_have_text(["read only"])


def test_a_member_is_offered_only_what_a_member_may_do_with_an_admins_things(
    browser: Browser, app_url: str, admins: dict[str, Any]
) -> None:
    run, sweep = admins["run"], admins["sweep"]
    with signed_in_user(browser, app_url, "member") as page:
        page.goto(f"{app_url}/?q={run['name']}")
        row = page.locator(f'#runs-body tr[data-run-id="{run["id"]}"]')
        row.locator("input[type=checkbox]").check()
        expect(page.locator("#cancel-selected")).to_be_disabled()
        expect(page.locator("#delete-selected")).to_be_disabled()
        expect(page.locator("#delete-selected")).to_have_attribute(
            "title",
            "1 selected run submitted by others is left alone: a member changes only their own",
        )
        expect(page.get_by_role("link", name="New run").first).to_be_visible()

        page.goto(f"{app_url}/runs/{run['id']}")
        expect(page.locator("#run-status")).to_have_text("queued")
        for control in ("#cancel-run", "#delete-run", "#tag-form"):
            expect(page.locator(control)).to_be_hidden()
        expect(page.locator("#clone-run")).to_be_visible()
        expect(page.locator("#sweep-around-run")).to_be_visible()
        expect(page.locator("#class-legend input[type=color]").first).to_be_enabled()
        screenshot(page, "member-admins-run")

        page.goto(f"{app_url}/sweeps/{sweep['id']}")
        expect(page.locator("#sweep-page[data-ready]")).to_be_attached()
        expect(page.locator("#sweep-actions > *:visible")).to_have_count(0)
        page.goto(f"{app_url}/workers")
        queued = page.locator(f'#queue-body tr[data-run-id="{run["id"]}"]')
        expect(queued.locator("select")).to_be_disabled()
        expect(queued.locator("select")).to_have_attribute(
            "title", "Submitted by local: a member changes only their own runs"
        )
        expect(queued.get_by_role("button", name="Move")).to_be_hidden()
        screenshot(page, "member-workers")
        page.goto(f"{app_url}/datasets")
        demo = page.locator('article[data-dataset="demo"]')
        expect(demo.locator("input.class-color").first).to_be_enabled()
        expect(page.locator("#register-form")).to_be_visible()
        page.goto(f"{app_url}/runs/new?sweep=1")
        expect(page.locator("#new-run-form")).to_be_visible()
