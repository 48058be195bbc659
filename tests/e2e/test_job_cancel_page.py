"""Cancelling a job from the run page in Chromium against the real app and worker (`segtrack
up`: SQLite, the embedded broker, one CPU slot): while a training holds the slot, an export
waits queued with a Cancel button; pressing it ends the job cancelled (its job event updates
the table) and the job never starts once the slot is free. The Workers page shows the slot
busy with the training meanwhile."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.app_api import WAIT_S, api, unique, wait_for_status
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.run_page_helpers import open_run, train

WAIT_MS = WAIT_S * 1000


@pytest.fixture(scope="module")
def finished_run(app_url: str) -> dict[str, Any]:
    run = train(app_url, unique("cancel-jobs"), epochs=1)
    return wait_for_status(app_url, run["id"], "succeeded")


def test_a_queued_job_is_cancelled_from_the_jobs_panel(
    page: Page, app_url: str, finished_run: dict[str, Any]
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
        cancel.click()
        expect(row.locator(".status")).to_have_text("cancelled", timeout=WAIT_MS)
        expect(row).to_contain_text("cancelled by")
        expect(row.locator("button.job-cancel")).to_have_count(0)
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
