"""Cancelling a job from the run page in Chromium against the real app and worker (`segtrack
up`: SQLite, the embedded broker, one CPU slot): while a training holds the slot, an export
waits queued with a Cancel button (a viewer sees it queued, with no Cancel); pressing it ends
the job cancelled (its job event updates the table, the reason in plain grey, not a failure's
red) and the job never starts once the slot is free. A link to `#job-<id>` opens the page on
that job, marked. The Workers page shows the slot busy with the training meanwhile."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.app_api import WAIT_S, api, unique, wait_for_status
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.run_page_helpers import open_run, signed_in_user, train

WAIT_MS = WAIT_S * 1000
COLORS_JS = """(node) => {
    const probe = document.createElement("span");
    probe.style.color = "var(--bad)";
    document.body.append(probe);
    const colors = [getComputedStyle(node).color, getComputedStyle(probe).color];
    probe.remove();
    return colors;
}"""
"""A page function: the colour of a node and the colour failures are drawn in."""


@pytest.fixture(scope="module")
def finished_run(app_url: str) -> dict[str, Any]:
    run = train(app_url, unique("cancel-jobs"), epochs=1)
    return wait_for_status(app_url, run["id"], "succeeded")


def test_a_queued_job_is_cancelled_from_the_jobs_panel(
    page: Page, browser: Browser, app_url: str, finished_run: dict[str, Any]
) -> None:
    holder = train(app_url, unique("holds-the-slot"), epochs=300)
    try:
        wait_for_status(app_url, holder["id"], "running")
        page.goto(f"{app_url}/workers")
        slot = page.locator(".slot[data-busy=true]").first
        expect(slot).to_contain_text(holder["name"], timeout=WAIT_MS)

        open_run(page, app_url, finished_run["id"])
        page.click("#export-button")
        row = page.locator("#jobs-table tbody tr", has_text="export").first
        expect(row.locator(".status")).to_have_text("queued")
        job_id = row.get_attribute("data-job-id")
        cancel = row.locator("button.job-cancel")
        expect(cancel).to_have_text("Cancel")
        # A viewer sees the queued job, but no control the API would refuse them.
        with signed_in_user(browser, app_url, "viewer") as viewer:
            open_run(viewer, app_url, finished_run["id"])
            seen = viewer.locator(f'#jobs-table tr[data-job-id="{job_id}"]')
            expect(seen.locator(".status")).to_have_text("queued")
            expect(viewer.locator("#jobs-table button.job-cancel")).to_have_count(0)
            expect(viewer.locator("#export-button")).to_have_count(0)
            expect(viewer.locator("#delete-run")).to_be_hidden()
        cancel.click()
        expect(row.locator(".status")).to_have_text("cancelled", timeout=WAIT_MS)
        expect(row).to_contain_text("cancelled by")
        expect(row.locator("button.job-cancel")).to_have_count(0)
        reason = row.locator(".job-reason")
        expect(reason).to_have_class("job-reason job-reason-cancelled")
        color, failure_color = reason.evaluate(COLORS_JS)
        assert color != failure_color, "a cancel's reason is drawn like a failure"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.locator("#jobs-panel").screenshot(path=str(SCREENSHOTS / "run-jobs-cancelled.png"))
    finally:
        api(app_url, "POST", f"/api/v1/runs/{holder['id']}/cancel")
    wait_for_status(app_url, holder["id"], "cancelled")
    # The slot is free: a new job runs, the cancelled one stays unstarted.
    page.click("#export-button")
    newer = page.locator("#jobs-table tbody tr", has_text="export").first
    expect(newer.locator(".status")).to_have_text("succeeded", timeout=WAIT_MS)
    job = api(app_url, "GET", f"/api/v1/jobs/{job_id}")
    assert (job["status"], job["started_at"]) == ("cancelled", None)

    # A link to the cancelled job, from another page, opens the run page on it, marked.
    page.goto(f"{app_url}/workers")
    page.goto(f"{app_url}/runs/{finished_run['id']}#job-{job_id}")
    linked = page.locator(f"#job-{job_id}")
    expect(linked).to_have_class(re.compile(r"\blinked\b"))
    expect(page.locator("#run-page[data-ready]")).to_be_attached()
    expect(linked).to_be_in_viewport()
    page.screenshot(path=str(SCREENSHOTS / "run-job-linked.png"))
