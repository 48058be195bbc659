"""The run page's previews in Chromium against the real app and worker: each sample says why it
is there (fixed, worst, pinned) beside its scores; an image pinned from the page's pin bar is
previewed from the run's next epochs on, and unpinned from its chip."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.app_api import WAIT_S, api, unique, wait_for_status
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.run_page_helpers import open_run, train

WAIT_MS = WAIT_S * 1000


def latest_previews(app_url: str, run_id: int) -> dict[str, Any]:
    body: dict[str, Any] = api(app_url, "GET", f"/api/v1/runs/{run_id}/previews")
    return body


def test_previews_show_reasons_and_a_pin_from_the_page_is_previewed(
    page: Page, app_url: str
) -> None:
    run = train(
        app_url, unique("pins"), epochs=40, preview_count=2, preview_worst=2, val_fraction=0.25
    )
    run_id = run["id"]
    open_run(page, app_url, run_id)
    area = page.locator("#preview-area")
    expect(area.locator(".sample-row").first).to_be_visible(timeout=WAIT_MS)
    expect(area.locator(".preview-reason.reason-fixed").first).to_be_visible()
    expect(area.locator(".preview-reason.reason-worst").first).to_be_visible()

    # An image the first previews did not show, pinned by its name from the pin bar.
    shown = {sample["sample_index"] for sample in latest_previews(app_url, run_id)["samples"]}
    images = api(app_url, "GET", f"/api/v1/runs/{run_id}/images?sort=name&limit=100")["items"]
    target = next(item for item in images if item["index"] not in shown)
    page.fill("#pin-image", target["name"])
    page.get_by_role("button", name="Pin", exact=True).click()
    chip = page.locator(f"#pinned-list [data-pinned='{target['index']}']")
    expect(chip).to_contain_text(target["name"])

    # The page follows the latest epoch: soon one with the pinned image, badged and scored.
    pinned_row = area.locator(f".sample-row[data-sample='{target['name']}']")
    expect(pinned_row).to_be_visible(timeout=WAIT_MS)
    expect(pinned_row.locator(".preview-reason.reason-pinned")).to_be_visible()
    expect(pinned_row.locator(".pin-toggle")).to_have_text("Unpin")
    expect(pinned_row.locator(".sample-score")).to_contain_text("IoU", timeout=WAIT_MS)
    api(app_url, "POST", f"/api/v1/runs/{run_id}/cancel")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#previews-panel").evaluate("node => node.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(SCREENSHOTS / "previews-worst-pinned.png"))

    chip.get_by_role("button", name=f"Unpin {target['name']}").click()
    expect(chip).to_have_count(0)
    assert api(app_url, "GET", f"/api/v1/runs/{run_id}/pinned-images")["images"] == []
    expect(pinned_row.locator(".pin-toggle")).to_have_text("Pin")
    wait_for_status(app_url, run_id, "cancelled", "succeeded")
