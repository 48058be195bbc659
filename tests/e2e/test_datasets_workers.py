"""The datasets page (the demo dataset with classes, report and coloured sample masks; register
by path, with the server's refusal shown) and the workers page (the worker, the queue, queued
runs re-prioritised and moved from it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.e2e.app_api import TINY, api, unique, wait_for_status
from tests.e2e.conftest import screenshot
from tests.e2e.dashboard_helpers import busy_worker, cancel_quietly, create_run, watched_page
from trainer.data.demo import DEMO_CLASS_COLORS

DEMO_COLOURS = {"#{:02x}{:02x}{:02x}".format(*colour) for colour in DEMO_CLASS_COLORS}
"""The colours of the demo's classes.json, which the dataset takes when it is registered."""
MASK_COLOURS_JS = """(canvas) => {
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    const seen = new Set();
    for (let i = 0; i < data.length; i += 4) {
        if (data[i + 3] === 0) continue;
        seen.add('#' + [data[i], data[i + 1], data[i + 2]]
            .map((v) => v.toString(16).padStart(2, '0')).join(''));
    }
    return [...seen];
}"""


def test_datasets_page_shows_the_demo_with_coloured_samples(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/datasets")
    demo = page.locator('article[data-dataset="demo"]')
    expect(demo.get_by_role("heading", name="demo")).to_be_visible()
    expect(demo.locator(".facts")).to_contain_text("48 pairs")
    expect(demo.locator(".classes-table tbody tr")).to_have_count(4)
    expect(demo.locator(".classes-table")).to_contain_text("triangle")
    expect(demo.locator(".report-badge")).to_have_text("no warnings")
    samples = demo.locator("figure.sample")
    expect(samples).to_have_count(6)
    expect(demo.locator('figure.sample[data-ready="true"]')).to_have_count(6)
    colours = set(samples.first.locator("canvas").evaluate(MASK_COLOURS_JS))
    assert colours <= DEMO_COLOURS and len(colours) >= 2, colours
    expect(samples.first.locator("img")).to_have_js_property("complete", True)
    assert samples.first.locator("img").evaluate("(image) => image.naturalWidth") == 64

    demo.get_by_role("button", name="Show more samples").click()
    expect(samples).to_have_count(12)
    demo.get_by_text("Full inspection report").click()
    expect(demo.locator(".full-report pre")).to_contain_text('"num_pairs": 48')
    screenshot(page, "datasets")
    demo.get_by_label("Overlay masks on images").check()
    expect(demo.locator(".sample-grid")).to_have_class("sample-grid overlaid")
    # Over the image the background class is see-through; the shapes keep their colours.
    page.wait_for_function(
        f"(canvas) => !({MASK_COLOURS_JS})(canvas).includes('#000000')",
        arg=samples.first.locator("canvas").element_handle(),
    )
    overlaid = set(samples.first.locator("canvas").evaluate(MASK_COLOURS_JS))
    assert overlaid and overlaid <= DEMO_COLOURS - {"#000000"}, overlaid
    screenshot(page, "datasets-overlay")


def _write_dataset(folder: Path) -> None:
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for index in range(4):
        image = np.full((32, 32, 3), 30 * index, dtype=np.uint8)
        mask = np.zeros((32, 32), dtype=np.uint8)
        mask[4:20, 4 + index : 20 + index] = 1
        Image.fromarray(image).save(folder / "images" / f"tile_{index}.png")
        Image.fromarray(mask).save(folder / "masks" / f"tile_{index}.png")


def test_register_a_dataset_by_path(browser: Browser, app_url: str) -> None:
    with watched_page(browser, api_errors=[403]) as page:
        page.goto(f"{app_url}/datasets")
        root = Path(page.locator(".roots code").first.inner_text())
        page.get_by_label("Name", exact=True).fill(unique("outside"))
        page.get_by_label("Folder on the server").fill("/etc")
        page.get_by_role("button", name="Inspect and register").click()
        error = page.locator('[data-field="path"] .field-error')
        expect(error).to_contain_text("outside the allowed dataset roots")
        expect(error).to_contain_text(str(root))
        expect(page.get_by_label("Folder on the server")).to_be_focused()
        expect(page.locator("#register-errors")).to_be_visible()
        screenshot(page, "datasets-register-error")

        name = unique("tiles")
        _write_dataset(root / name)
        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_label("Folder on the server").fill(name)
        page.get_by_role("button", name="Inspect and register").click()
        card = page.locator(f'article[data-dataset="{name}"]')
        expect(card).to_be_visible()
        expect(card.locator(".facts")).to_contain_text("4 pairs")
        expect(card.locator('figure.sample[data-ready="true"]')).to_have_count(4)
        expect(page.locator("#datasets-message")).to_contain_text(f"Registered {name}")
        expect(error).to_be_hidden()


def test_workers_page_shows_the_worker_and_the_queue(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/workers")
    worker = page.locator("#workers-body tr").first
    expect(worker).to_contain_text("cpu")
    expect(worker).to_contain_text("default")
    with busy_worker(app_url) as blocker:
        waiting = create_run(app_url, unique("waiting"), priority=4)
        try:
            expect(worker.get_by_role("link", name=blocker["name"])).to_be_visible()
            row = page.locator(f'#queue-body tr[data-run-id="{waiting["id"]}"]')
            expect(row).to_contain_text(waiting["name"])
            expect(row.get_by_role("combobox", name="Priority of")).to_have_value("4")
            expect(row.get_by_label("Queue of")).to_have_value("default")
            expect(row.get_by_role("link", name=waiting["name"])).to_have_attribute(
                "href", f"/runs/{waiting['id']}"
            )
            screenshot(page, "workers")
        finally:
            cancel_quietly(app_url, waiting["id"])
        expect(row).to_have_count(0)
    wait_for_status(app_url, waiting["id"], "cancelled")
    expect(worker.get_by_role("link", name=blocker["name"])).to_have_count(0)


def test_queued_runs_are_reprioritised_and_moved_from_the_workers_page(
    page: Page, app_url: str
) -> None:
    # A queue no worker serves keeps both runs queued while the page changes them.
    parked = unique("parked")
    runs = [
        api(
            app_url,
            "POST",
            "/api/v1/runs",
            {"name": unique(name), "config": {**TINY, "epochs": 1}, "queue": parked, "priority": 2},
        )
        for name in ("first", "second")
    ]
    first, second = runs
    try:
        page.goto(f"{app_url}/workers")
        ours = page.locator(
            f'#queue-body tr:is([data-run-id="{first["id"]}"], [data-run-id="{second["id"]}"])'
        )
        expect(ours).to_have_count(2)
        expect(ours.first).to_have_attribute("data-run-id", str(first["id"]))

        priority = page.get_by_label(f"Priority of run #{second['id']} {second['name']}")
        expect(priority).to_have_value("2")
        priority.focus()
        priority.select_option("7")
        expect(ours.first).to_have_attribute("data-run-id", str(second["id"]))
        expect(priority).to_be_focused()
        expect(page.locator("#queue-status")).to_contain_text("now has priority 7")
        assert api(app_url, "GET", f"/api/v1/runs/{second['id']}")["priority"] == 7
        positions = [int(text) for text in ours.locator("td:first-child").all_inner_texts()]
        assert positions == sorted(positions) and len(set(positions)) == 2, positions
        screenshot(page, "workers-reprioritised")

        # Keyboard only: the queue box of the first run, a new queue name, Enter.
        queue = page.get_by_label(f"Queue of run #{first['id']} {first['name']}")
        expect(queue).to_have_value(parked)
        move = page.get_by_role("button", name=f"Move run #{first['id']} {first['name']}")
        expect(move).to_be_disabled()
        queue.focus()
        page.keyboard.press("Control+A")
        page.keyboard.type("default")
        expect(move).to_be_enabled()
        page.keyboard.press("Enter")
        expect(page.locator("#queue-status")).to_contain_text("moved to queue default")
        # The app's worker serves "default": the message sent there trains the moved run.
        trained = wait_for_status(app_url, first["id"], "succeeded", "failed")
        assert (trained["status"], trained["queue"]) == ("succeeded", "default")
        expect(ours).to_have_count(1)
        expect(ours.first).to_have_attribute("data-run-id", str(second["id"]))
    finally:
        for run in runs:
            cancel_quietly(app_url, run["id"])
