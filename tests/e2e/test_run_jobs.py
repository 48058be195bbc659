"""The run page's Evaluate, Predict and Export forms in Chromium against the real app and worker
(`segtrack up`: SQLite, the embedded broker): each queues a job, the jobs table follows it to
its end, and its results show: the metrics tables, the overlays of uploaded images, downloads.
A viewer sees the jobs and the pins without the controls the API would refuse them; a member
gets them on their own run only."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.e2e.app_api import TINY, WAIT_S, unique, wait_for_status
from tests.e2e.conftest import SCREENSHOTS, screenshot
from tests.e2e.run_page_helpers import open_run, signed_in_user, train

WAIT_MS = WAIT_S * 1000


@pytest.fixture(scope="module")
def finished_run(app_url: str) -> dict[str, Any]:
    run = train(app_url, unique("jobs"), epochs=1)
    return wait_for_status(app_url, run["id"], "succeeded")


def _job_row(page: Page, kind: str) -> Any:
    return page.locator("#jobs-table tbody tr", has_text=kind).first


def test_evaluate_predict_and_export_from_the_run_page(
    page: Page, app_url: str, finished_run: dict[str, Any], tmp_path: Path
) -> None:
    open_run(page, app_url, finished_run["id"])
    expect(page.locator("#jobs-empty")).to_be_visible()

    # The form's defaults: the best checkpoint on the test split, which `segtrack up`'s demo
    # dataset holds out.
    page.click("#evaluate-button")
    expect(page.locator("#jobs-message")).to_contain_text(re.compile(r"Job #\d+ \(evaluate\)"))
    row = _job_row(page, "evaluate")
    expect(row.locator(".status")).to_have_text("succeeded", timeout=WAIT_MS)
    # The line that said it was queued says how it ended.
    expect(page.locator("#jobs-message")).to_contain_text(re.compile(r"\(evaluate\) succeeded\."))
    expect(row).to_contain_text("test/iou")
    expect(page.locator("#job-result table[aria-label='Per class'] tbody tr")).to_have_count(4)
    expect(page.locator("#job-result")).to_contain_text("test/iou")

    page.click("#export-button")
    expect(_job_row(page, "export").locator(".status")).to_have_text("succeeded", timeout=WAIT_MS)
    expect(page.locator("#job-result a", has_text="model.onnx")).to_be_visible()
    # The export's summary is said once, under the title.
    expect(page.locator("#job-result p", has_text="matches PyTorch")).to_have_count(1)

    images = []
    rng = np.random.default_rng(0)
    for index in range(2):
        images.append(tmp_path / f"new_{index}.png")
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(images[-1])
    page.set_input_files("#predict-files", [str(path) for path in images])
    page.check("#predict-form input[name=tta]")
    page.click("#predict-button")
    expect(_job_row(page, "predict").locator(".status")).to_have_text("succeeded", timeout=WAIT_MS)
    overlays = page.locator("#job-result .overlay-grid img")
    expect(overlays).to_have_count(2)
    expect(overlays.first).to_have_js_property("complete", True)
    assert overlays.first.evaluate("image => image.naturalWidth") == 64
    expect(page.locator("#job-result a", has_text="masks.zip")).to_be_visible()
    screenshot(page, "run_jobs")
    page.locator("#jobs-panel").screenshot(path=str(SCREENSHOTS / "run_jobs_panel.png"))

    page.click("#predict-form button[type=submit]")
    expect(page.locator("#jobs-message")).to_contain_text("choose images to upload")


SUBMIT_JS = """(body) => import("/static/js/http.js")
    .then((http) => http.api("/api/v1/runs", {method: "POST", json: body}))"""
"""A page function: submit a run as the page's user."""


def _offers_changes(page: Page, offered: bool) -> None:
    """Whether the run page shows the job forms, the pin form and the rows' Pin buttons, and
    lets the run be renamed, tagged and deleted."""
    count = 1 if offered else 0
    for control in ("#tag-form", "#delete-run", "#save-notes"):
        if offered:
            expect(page.locator(control)).to_be_visible()
        else:
            expect(page.locator(control)).to_be_hidden()
    expect(page.locator("#run-name")).to_be_editable(editable=offered)
    expect(page.locator("#images-table tbody tr").first).to_be_visible()
    expect(page.locator("#pin-bar")).to_be_visible()
    expect(page.locator("#evaluate-form")).to_have_count(count)
    expect(page.locator("#pin-image")).to_have_count(count)
    toggles = page.locator("#images-table button.pin-toggle")
    if offered:
        expect(toggles.first).to_be_visible()
    else:
        expect(toggles).to_have_count(0)
        expect(page.locator(".pin-toggle, .chip-remove, button.job-cancel")).to_have_count(0)


def test_viewers_see_no_pin_or_job_controls_and_members_get_them_on_their_own_runs(
    browser: Browser, app_url: str, finished_run: dict[str, Any]
) -> None:
    with signed_in_user(browser, app_url, "viewer") as viewer:
        open_run(viewer, app_url, finished_run["id"])
        _offers_changes(viewer, offered=False)
        expect(viewer.locator("#jobs-title")).to_have_text("Jobs")
        unsaved = viewer.locator(
            "#images-table tbody tr", has_not=viewer.locator("td.preview-mark", has_text="saved")
        ).first
        unsaved.locator("th button").click()
        expect(viewer.locator("#image-viewer .viewer-predict")).to_contain_text(
            "Only the run's owner"
        )
        expect(viewer.locator("#image-predict")).to_have_count(0)
        viewer.locator("#previews-panel").evaluate("node => node.scrollIntoView({block: 'start'})")
        viewer.screenshot(path=str(SCREENSHOTS / "run-page-viewer-pins.png"))
        viewer.locator("#images-panel").screenshot(
            path=str(SCREENSHOTS / "run-page-viewer-images.png")
        )
        viewer.locator("#jobs-panel").screenshot(path=str(SCREENSHOTS / "run-page-viewer-jobs.png"))

    with signed_in_user(browser, app_url, "member") as member:
        open_run(member, app_url, finished_run["id"])  # an admin's run
        _offers_changes(member, offered=False)
        own = member.evaluate(
            SUBMIT_JS, {"name": unique("members"), "config": {**TINY, "epochs": 1}}
        )
        wait_for_status(app_url, own["id"], "succeeded")
        open_run(member, app_url, own["id"])
        _offers_changes(member, offered=True)
        expect(member.locator("#jobs-title")).to_have_text("Evaluate, predict, export")
