"""The compare page's Test results in Chromium: two runs trained on a dataset with a test split
and evaluated on it by the real worker, and a run that logged its own test metrics, each get a
row of test/* metrics (per-class IoU too) with the best of each column marked; the evaluated runs
link to their evaluation's confusion matrix and per-image scores and to the run page's jobs."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.app_api import WAIT_S, api, unique, wait_for_status
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.run_page_helpers import external, log_points, train

TEST_IMAGES = 8


def _dataset_with_a_test_split(app_url: str) -> str:
    """A copy of the demo dataset whose last images are its test split, registered."""
    demo = Path(api(app_url, "GET", "/api/v1/datasets/demo")["path"])
    name = unique("with-test")
    root = demo.parent / name
    for part in ("images", "masks"):
        (root / part / "test").mkdir(parents=True)
        files = sorted((demo / part).glob("*.png"))
        for index, path in enumerate(files):
            held_out = index >= len(files) - TEST_IMAGES
            shutil.copy(path, root / part / ("test" if held_out else "") / path.name)
    for extra in demo.glob("*.json"):
        shutil.copy(extra, root / extra.name)
    api(app_url, "POST", "/api/v1/datasets", {"name": name, "path": str(root)})
    return name


def _evaluate_on_test(app_url: str, run_id: int) -> dict[str, Any]:
    body = {"kind": "evaluate", "checkpoint": "best", "split": "test"}
    job: dict[str, Any] = api(app_url, "POST", f"/api/v1/runs/{run_id}/jobs", body)
    deadline = time.monotonic() + WAIT_S
    while True:
        jobs = api(app_url, "GET", f"/api/v1/runs/{run_id}/jobs")["items"]
        current = next(item for item in jobs if item["id"] == job["id"])
        if current["status"] in ("succeeded", "failed"):
            assert current["status"] == "succeeded", current
            return dict(current)
        assert time.monotonic() < deadline, f"job {job['id']} is {current['status']}"
        time.sleep(0.5)


def test_compare_shows_test_metrics_and_links_to_each_evaluation(page: Page, app_url: str) -> None:
    dataset = _dataset_with_a_test_split(app_url)
    trained = [train(app_url, unique(f"tested-{epochs}"), dataset=dataset, epochs=epochs)
               for epochs in (1, 2)]  # fmt: skip
    evaluated = []
    for run in trained:
        wait_for_status(app_url, run["id"], "succeeded")
        job = _evaluate_on_test(app_url, run["id"])
        assert job["result"]["num_images"] == TEST_IMAGES
        evaluated.append((run, job))
    logged = external(app_url, unique("logged-test"))
    log_points(
        app_url,
        logged["id"],
        [
            {"key": "val/iou", "step": 3, "value": 0.5, "epoch": 3},
            {"key": "test/iou", "step": 3, "value": 0.99, "epoch": 3},
            {"key": "test/iou/circle", "step": 3, "value": 0.98, "epoch": 3},
        ],
    )
    untested = external(app_url, unique("untested"))
    log_points(app_url, untested["id"], [{"key": "val/iou", "step": 1, "value": 0.4, "epoch": 1}])

    ids = [run["id"] for run, _ in evaluated] + [logged["id"], untested["id"]]
    page.goto(f"{app_url}/compare?ids={','.join(map(str, ids))}")
    expect(page.locator("#compare-page[data-ready]")).to_be_attached()
    panel = page.locator("#test-panel")
    expect(panel).to_be_visible()
    heads = panel.locator("thead th")
    expect(heads).to_contain_text(
        ["Run", "Epoch", "Evaluation", "test/iou", "test/dice", "test/miou"]
    )
    expect(panel.locator("thead")).to_contain_text("test/iou/circle")
    expect(panel.locator("thead")).to_contain_text("test/iou/triangle")
    rows = panel.locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(panel.locator(f'tbody tr[data-run-id="{untested["id"]}"]')).to_have_count(0)

    for run, job in evaluated:
        row = panel.locator(f'tbody tr[data-run-id="{run["id"]}"]')
        expect(row.locator("td").first).to_have_text(str(job["result"]["epoch"]))
        iou = job["result"]["metrics"]["test/iou"]
        expect(row.locator('td[data-key="test/iou"]')).to_have_text(f"{float(f'{iou:.4g}')}")
        confusion = row.locator('a[data-file="confusion_matrix.csv"]')
        expect(confusion).to_be_visible()
        response = page.request.get(f"{app_url}{confusion.get_attribute('href')}")
        assert response.ok and response.text().startswith("truth")
        per_image = row.locator('a[data-file="per_image.csv"]')
        assert page.request.get(f"{app_url}{per_image.get_attribute('href')}").ok
        expect(row.get_by_role("link", name=f"job #{job['id']}")).to_have_attribute(
            "href", f"/runs/{run['id']}#job-{job['id']}"
        )

    logged_row = panel.locator(f'tbody tr[data-run-id="{logged["id"]}"]')
    expect(logged_row.locator('td[data-key="test/iou"]')).to_have_class("num best-value")
    expect(logged_row.locator('td[data-key="test/dice"]')).to_have_text("\u2013")
    expect(logged_row).to_contain_text("no evaluate job left")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    panel.scroll_into_view_if_needed()
    panel.screenshot(path=str(SCREENSHOTS / "compare-test.png"))
    page.screenshot(path=str(SCREENSHOTS / "compare-test-page.png"), full_page=True)
