"""The run page's validation views in Chromium against the real app and worker: every
validation image of a trained run listed by score (sorted, filtered, paged, with trends), the
worst one opened, images pinned from their rows in step with the pin bar, previews with their
scores and the truth outline, the confusion heatmap following the epoch slider, precision and
recall per class, the best epoch on the charts, the epoch list growing while a run trains, and
an image predicted from a checkpoint (marked in the list, drawn in the jobs panel)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.app_api import WAIT_S, api, unique, wait_for_status
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.run_page_helpers import external, open_run, train

WAIT_MS = WAIT_S * 1000
EPOCHS = 4
NO_VALUE = "\u2013"
"""An en dash: an empty cell, and between the first and last row of a page."""
PREDICTION = "#preview-area .sample-row canvas.kind-prediction"

SORTED_WRONG_JS = """(order) => {
    const cells = [...document.querySelectorAll("#images-table tbody tr td:nth-child(5)")]
        .map((cell) => Number(cell.textContent.split(" ")[0].replace(/,/g, "")));
    const inOrder = (v, i) => i === 0 || (order === "asc" ? cells[i - 1] <= v : cells[i - 1] >= v);
    return cells.length > 1 && cells.every(inOrder);
}"""
"""Whether the Images table's pixels-wrong column is in `order`."""

WHITE_PIXELS_JS = """(canvas) => {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
        if (data[i] === 255 && data[i + 1] === 255 && data[i + 2] === 255) n++;
    }
    return n;
}"""
"""White pixels of a canvas (the truth outline's colour)."""


@pytest.fixture(scope="module")
def scored_run(app_url: str) -> dict[str, Any]:
    """A 4-epoch run of the demo dataset that has succeeded: every validation image scored and
    a confusion matrix stored each epoch, previews every epoch."""
    run = train(app_url, unique("scored"), epochs=EPOCHS)
    return wait_for_status(app_url, run["id"], "succeeded")


def view_screenshot(page: Page, name: str, target: Locator) -> Path:
    """A 1440x900 screenshot with `target` scrolled to the top of the view."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target.evaluate("node => node.scrollIntoView({block: 'start'})")
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def column(page: Page, index: int) -> list[str]:
    """The texts of one column of the Images table's rows."""
    texts: list[str] = page.locator(
        f"#images-table tbody tr td:nth-child({index})"
    ).all_inner_texts()
    return texts


def scores(page: Page, index: int) -> list[float]:
    return [float(text.split(" ")[0].replace(",", "")) for text in column(page, index)]


def test_images_sort_worst_first_and_open_the_worst(
    page: Page, app_url: str, scored_run: dict[str, Any]
) -> None:
    run_id = scored_run["id"]
    listed = api(app_url, "GET", f"/api/v1/runs/{run_id}/images?limit=1000")
    open_run(page, app_url, run_id)
    panel = page.locator("#images-panel")
    expect(panel).to_be_visible()
    table = page.locator("#images-table")
    expect(table).to_have_attribute("data-epoch", str(EPOCHS))
    rows = page.locator("#images-table tbody tr")
    expect(rows).to_have_count(min(25, listed["total"]))
    expect(page.locator("#images-page")).to_contain_text(f"of {listed['total']} image")

    # Worst first by IoU: ascending, as the API sorts them.
    ious = scores(page, 3)
    assert ious == sorted(ious)
    assert page.locator("#images-table tbody th").first.inner_text() == listed["items"][0]["name"]
    # Sparklines load once their rows are on screen.
    table.scroll_into_view_if_needed()
    expect(
        page.locator("#images-table tbody tr").first.locator("svg.sparkline path")
    ).to_have_count(1)

    # Pixels wrong, worst first: the most wrong on top; then best first.
    page.select_option("#images-sort", "pixels_wrong")
    expect(page.locator("#images-order")).to_have_value("desc")
    page.wait_for_function(SORTED_WRONG_JS, arg="desc")
    page.select_option("#images-order", "asc")
    page.wait_for_function(SORTED_WRONG_JS, arg="asc")
    page.select_option("#images-sort", "name")
    names = page.locator("#images-table tbody th")
    expect(names.first).to_have_text(sorted(item["name"] for item in listed["items"])[0])

    # A class filter keeps only images whose truth has it.
    class_name = listed["class_names"][-1]
    page.select_option("#images-class", class_name)
    expect(page.locator("#images-page")).not_to_contain_text(f"of {listed['total']} image")
    for text in column(page, 6):
        assert class_name in text.split(", ")
    page.select_option("#images-class", "")

    # Back to IoU, worst first, and open the worst image.
    page.select_option("#images-sort", "iou")
    expect(page.locator("#images-order")).to_have_value("asc")
    worst = listed["items"][0]
    expect(names.first).to_have_text(worst["name"])
    names.first.locator("button").click()
    viewer = page.locator("#image-viewer")
    expect(viewer).to_be_visible()
    expect(viewer).to_have_attribute("data-image", worst["name"])
    expect(viewer).to_contain_text(f"{worst['name']} at epoch {EPOCHS}")
    preview_names = {
        sample["name"]
        for sample in api(app_url, "GET", f"/api/v1/runs/{run_id}/previews")["samples"]
    }
    if worst["name"] in preview_names:
        expect(viewer.locator(".mask-tile.loaded")).to_have_count(5)
    else:
        expect(viewer.locator(".viewer-none")).to_contain_text(
            f"No prediction of {worst['name']} was saved at epoch {EPOCHS}"
        )
    view_screenshot(page, "run-images-worst", panel)

    # An image with a saved preview opens all five views.
    saved = page.locator(
        "#images-table tbody tr", has=page.locator("td.preview-mark", has_text="saved")
    )
    saved.first.locator("th button").click()
    expect(viewer).to_have_attribute("data-preview", "shown")
    expect(viewer.locator(".mask-tile.loaded")).to_have_count(5)
    view_screenshot(page, "run-images", panel)

    # At another epoch the marks are that epoch's previews (its worst images differ), and the
    # image that has none there says which did.
    at_first = api(app_url, "GET", f"/api/v1/runs/{run_id}/previews?epoch=1")["samples"]
    first_names = sorted(sample["name"] for sample in at_first)
    page.select_option("#images-epoch", "1")
    expect(table).to_have_attribute("data-epoch", "1")
    shown = set(page.locator("#images-table tbody th").all_inner_texts())
    marked = page.locator(
        "#images-table tbody tr", has=page.locator("td.preview-mark", has_text="saved")
    )
    expect(marked).to_have_count(len(shown & set(first_names)))
    assert sorted(marked.locator("th").all_inner_texts()) == sorted(shown & set(first_names))
    unsaved = page.locator(
        "#images-table tbody tr", has_not=page.locator("td.preview-mark", has_text="saved")
    )
    unsaved.first.locator("th button").click()
    expect(viewer.locator(".viewer-none")).to_contain_text(
        "Previews saved at epoch 1 (the fixed set, and that epoch's worst and pinned images): "
    )
    for name in first_names:
        expect(viewer.locator(".viewer-none")).to_contain_text(name)


def test_images_are_pinned_from_their_rows_in_step_with_the_pin_bar(
    page: Page, app_url: str, scored_run: dict[str, Any]
) -> None:
    run_id = scored_run["id"]
    open_run(page, app_url, run_id)
    index = page.locator("#images-table tbody tr").nth(1).get_attribute("data-index")
    row = page.locator(f'#images-table tbody tr[data-index="{index}"]')
    name = row.get_attribute("data-image")
    assert index is not None and name
    toggle = row.locator("button.pin-toggle")
    expect(toggle).to_have_text("Pin")
    toggle.click()
    chip = page.locator(f"#pinned-list [data-pinned='{index}']")
    expect(chip).to_contain_text(name)
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(toggle).to_have_text("Unpin")
    expect(row.locator(".pinned-mark")).to_have_text("pinned")
    pins = api(app_url, "GET", f"/api/v1/runs/{run_id}/pinned-images")["images"]
    assert [pin["index"] for pin in pins] == [int(index)]
    view_screenshot(page, "run-images-pinned", page.locator("#images-panel"))
    # The run has finished: its pins are previewed only if it is resumed, and Images predicts
    # them now.
    expect(page.locator("#pin-help")).to_contain_text("a finished run's once it is resumed")

    # Unpinned from the pin bar's chip, the row follows; pinned there by name, too.
    chip.get_by_role("button", name=f"Unpin {name}").click()
    expect(toggle).to_have_text("Pin")
    expect(row.locator(".pinned-mark")).to_have_text("")
    page.fill("#pin-image", name)
    page.get_by_role("button", name="Pin", exact=True).click()
    expect(toggle).to_have_text("Unpin")
    # Unpinned from the row, the chip goes.
    toggle.click()
    expect(chip).to_have_count(0)
    expect(toggle).to_have_text("Pin")
    assert api(app_url, "GET", f"/api/v1/runs/{run_id}/pinned-images")["images"] == []


def test_previews_show_scores_and_the_truth_outline(
    page: Page, app_url: str, scored_run: dict[str, Any]
) -> None:
    run_id = scored_run["id"]
    open_run(page, app_url, run_id)
    row = page.locator("#preview-area .sample-row").first
    name = row.get_attribute("data-sample")
    sample = next(
        item
        for item in api(app_url, "GET", f"/api/v1/runs/{run_id}/previews")["samples"]
        if item["name"] == name
    )
    trend = api(app_url, "GET", f"/api/v1/runs/{run_id}/images/{sample['sample_index']}/trend")
    last = trend["points"][-1]
    expect(row.locator(".sample-score")).to_contain_text(f"IoU {last['iou']:.4f}")

    prediction = row.locator("canvas.kind-prediction")
    expect(row.locator(".mask-tile.loaded")).to_have_count(5)
    before = prediction.evaluate(WHITE_PIXELS_JS)
    page.check("#truth-outline")
    page.wait_for_function(
        f"(n) => ({WHITE_PIXELS_JS})(document.querySelector({PREDICTION!r})) > n", arg=before
    )
    view_screenshot(page, "run-previews-outline", page.locator("#previews-panel"))
    page.uncheck("#truth-outline")
    page.wait_for_function(
        f"(n) => ({WHITE_PIXELS_JS})(document.querySelector({PREDICTION!r})) === n", arg=before
    )


def test_confusion_heatmap_follows_the_epoch_slider(
    page: Page, app_url: str, scored_run: dict[str, Any]
) -> None:
    run_id = scored_run["id"]
    open_run(page, app_url, run_id)
    heatmap = page.locator("#confusion-table")
    expect(heatmap).to_have_attribute("data-epoch", str(EPOCHS))
    classes = len(api(app_url, "GET", f"/api/v1/runs/{run_id}/confusion")["class_names"])
    expect(heatmap.locator("td.confusion-cell")).to_have_count(classes * classes)
    expect(page.locator("#confusion-csv")).to_have_attribute(
        "href", f"/api/v1/runs/{run_id}/confusion.csv?epoch={EPOCHS}"
    )

    page.locator("#epoch-slider").focus()
    page.keyboard.press("Home")
    expect(page.locator("#preview-area")).to_have_attribute("data-epoch", "1")
    expect(heatmap).to_have_attribute("data-epoch", "1")
    expect(page.locator("#images-table")).to_have_attribute("data-epoch", "1")
    first = api(app_url, "GET", f"/api/v1/runs/{run_id}/confusion?epoch=1")["matrix"]
    assert heatmap.locator('td[data-row="0"][data-column="0"]').get_attribute("data-count") == str(
        first[0][0]
    )
    page.keyboard.press("ArrowRight")
    expect(heatmap).to_have_attribute("data-epoch", "2")
    expect(page.locator("#confusion-csv")).to_have_attribute(
        "href", f"/api/v1/runs/{run_id}/confusion.csv?epoch=2"
    )

    # Shares of the true class by default; counts on the toggle.
    expect(heatmap).to_have_attribute("data-mode", "true")
    page.check("#confusion-mode-counts")
    expect(heatmap).to_have_attribute("data-mode", "counts")
    page.check("#confusion-mode-true")

    # The heatmap's own selector moves the slider too.
    page.select_option("#confusion-epoch", "3")
    expect(page.locator("#preview-area")).to_have_attribute("data-epoch", "3")
    expect(heatmap).to_have_attribute("data-epoch", "3")
    view_screenshot(page, "run-confusion", page.locator("#confusion-panel"))

    csv = page.request.get(f"{app_url}/api/v1/runs/{run_id}/confusion.csv?epoch=3")
    assert csv.ok and csv.text().startswith("truth \\ prediction,")


def test_per_class_precision_recall_and_the_best_epoch_marker(
    page: Page, app_url: str, scored_run: dict[str, Any]
) -> None:
    run_id = scored_run["id"]
    open_run(page, app_url, run_id)
    table = page.locator("#class-table")
    expect(table.locator("thead")).to_contain_text("Precision")
    expect(table.locator("thead")).to_contain_text("Recall")
    first_row = table.locator("tbody tr").first.locator("td")
    expect(first_row).to_have_count(8)
    assert all(text != NO_VALUE for text in first_row.all_inner_texts())
    best = api(app_url, "GET", f"/api/v1/runs/{run_id}")["best_epoch"]
    assert best is not None
    expect(page.locator('figure.chart[data-chart="scores"]')).to_have_attribute(
        "data-marker", str(best)
    )
    view_screenshot(page, "run-best-epoch", page.locator("#charts-title"))
    view_screenshot(page, "run-per-class", page.locator("#classes-panel"))


def test_the_epoch_list_grows_while_the_run_trains(page: Page, app_url: str) -> None:
    run = train(app_url, unique("growing"), epochs=12)
    try:
        open_run(page, app_url, run["id"])
        page.wait_for_function(
            "() => document.querySelectorAll('#images-epoch option').length >= 1", timeout=WAIT_MS
        )
        page.evaluate("window.__marker = 'still here'")
        known = page.locator("#images-epoch option").count()
        page.wait_for_function(
            "(n) => document.querySelectorAll('#images-epoch option').length > n"
            " && document.querySelectorAll('#confusion-epoch option').length > n",
            arg=known,
            timeout=WAIT_MS,
        )
        assert page.evaluate("window.__marker") == "still here", "the page was reloaded"
    finally:
        if api(app_url, "GET", f"/api/v1/runs/{run['id']}")["status"] in ("queued", "running"):
            api(app_url, "POST", f"/api/v1/runs/{run['id']}/cancel")


def _scored_set(
    classes: int, images: int, seed: int
) -> tuple[list[list[int]], dict[str, list[list[int]]]]:
    """A consistent epoch of `images` images over `classes` classes: each image's confusion
    matrix made up, its TP/FP/FN read from it, the set's matrix their sum."""
    rng = np.random.default_rng(seed)
    total = np.zeros((classes, classes), dtype=np.int64)
    tp, fp, fn = [], [], []
    for _ in range(images):
        present = rng.choice(classes, size=3, replace=False)
        matrix = np.zeros((classes, classes), dtype=np.int64)
        for truth in present:
            matrix[truth, truth] = rng.integers(50, 400)
            matrix[truth, rng.choice(present)] += rng.integers(0, 120)
        total += matrix
        diagonal = np.diag(matrix)
        tp.append(diagonal.tolist())
        fp.append((matrix.sum(axis=0) - diagonal).tolist())
        fn.append((matrix.sum(axis=1) - diagonal).tolist())
    return total.tolist(), {"true_positive": tp, "false_positive": fp, "false_negative": fn}


def test_thirty_classes_and_sixty_images_page_and_read(page: Page, app_url: str) -> None:
    """A run trained elsewhere logs two epochs of 60 images over 30 classes: the list pages
    through them, "worse than" compares epochs, and the 30 x 30 heatmap stays readable."""
    classes = [f"class_{i:02d}" for i in range(30)]
    names = [f"tile_{i:03d}" for i in range(60)]
    run = external(app_url, unique("thirty"))
    api(app_url, "PUT", f"/api/v1/runs/{run['id']}/info", {"class_names": classes})
    for epoch in (1, 2):
        matrix, counts = _scored_set(len(classes), len(names), seed=epoch)
        detail = {"class_names": classes, "confusion": matrix, "images": {"names": names, **counts}}
        api(app_url, "PUT", f"/api/v1/runs/{run['id']}/validation/{epoch}", detail)

    open_run(page, app_url, run["id"])
    expect(page.locator("#images-table")).to_have_attribute("data-epoch", "2")
    pager = page.locator("#images-page")
    expect(pager).to_have_text(f"1{NO_VALUE}25 of 60 images (page 1 of 3)")
    page.click("#images-next")
    expect(pager).to_have_text(f"26{NO_VALUE}50 of 60 images (page 2 of 3)")
    expect(page.locator("#images-table tbody tr").first.locator("td").first).to_have_text("26")
    page.click("#images-last")
    expect(pager).to_have_text(f"51{NO_VALUE}60 of 60 images (page 3 of 3)")
    expect(page.locator("#images-table tbody tr")).to_have_count(10)
    expect(page.locator("#images-next")).to_be_disabled()
    page.click("#images-first")
    expect(pager).to_contain_text("page 1 of 3")

    page.select_option("#images-worse", "1")
    expect(page.locator("#images-table thead")).to_contain_text("IoU at epoch 1")
    worse = api(app_url, "GET", f"/api/v1/runs/{run['id']}/images?worse_than=1&limit=1")
    expect(pager).to_contain_text(f"of {worse['total']} image")
    for row in page.locator("#images-table tbody tr").all()[:5]:
        now, then = (float(row.locator("td").nth(i).inner_text()) for i in (1, 7))
        assert now < then
    page.select_option("#images-worse", "")

    # No previews for this run: the viewer says so.
    page.locator("#images-table tbody th button").first.click()
    expect(page.locator("#image-viewer .viewer-none")).to_contain_text("This run saved no previews")

    heatmap = page.locator("#confusion-table")
    expect(heatmap.locator("td.confusion-cell")).to_have_count(900)
    expect(heatmap).to_have_attribute("data-epoch", "2")
    page.select_option("#confusion-epoch", "1")
    expect(heatmap).to_have_attribute("data-epoch", "1")
    expect(page.locator("#images-table")).to_have_attribute("data-epoch", "1")
    view_screenshot(page, "run-confusion-30-classes", page.locator("#confusion-panel"))
    page.check("#confusion-mode-counts")
    expect(heatmap).to_have_attribute("data-mode", "counts")
    view_screenshot(page, "run-confusion-30-classes-counts", page.locator("#confusion-panel"))
    view_screenshot(page, "run-images-paged", page.locator("#images-panel"))


def test_an_image_without_a_preview_is_predicted_from_the_nearest_checkpoint(
    page: Page, app_url: str, scored_run: dict[str, Any]
) -> None:
    """Opening an image no preview was saved of offers "Predict from checkpoint (epoch N)";
    pressing it queues a predict_image job on the worker, shows its progress and then the five
    views of its prediction, naming the epoch whose weights made it."""
    run_id = scored_run["id"]
    checkpoints = api(app_url, "GET", f"/api/v1/runs/{run_id}/checkpoints")["checkpoints"]
    last = next(item for item in checkpoints if item["kind"] == "last")
    assert last["epoch"] == EPOCHS
    open_run(page, app_url, run_id)
    expect(page.locator("#images-table")).to_have_attribute("data-epoch", str(EPOCHS))
    unsaved = page.locator(
        "#images-table tbody tr", has_not=page.locator("td.preview-mark", has_text="saved")
    ).first
    name = unsaved.get_attribute("data-image")
    assert name
    unsaved.locator("th button").click()
    viewer = page.locator("#image-viewer")
    expect(viewer).to_have_attribute("data-preview", "none")
    button = viewer.locator("#image-predict")
    expect(button).to_have_text(f"Predict from checkpoint (epoch {EPOCHS})")
    button.click()
    # Progress first (queued or running), then the prediction's five views.
    expect(viewer).to_have_attribute("data-preview", "predicted", timeout=WAIT_MS)
    expect(viewer.locator(".mask-tile.loaded")).to_have_count(5)
    expect(viewer.locator("#image-predict-note")).to_contain_text(f"the weights of epoch {EPOCHS}")
    jobs = api(app_url, "GET", f"/api/v1/runs/{run_id}/jobs")["items"]
    predicted = next(job for job in jobs if job["kind"] == "predict_image")
    assert predicted["status"] == "succeeded"
    assert predicted["result"]["name"] == name and predicted["result"]["epoch"] == EPOCHS
    # The list marks the image predicted; the jobs panel learnt of the job from its events and
    # draws the prediction: an overlay in its row, the five views as its results.
    expect(unsaved.locator("td.preview-mark")).to_have_text(f"predicted (epoch {EPOCHS})")
    job_row = page.locator(f'#jobs-table tr[data-job-id="{predicted["id"]}"]')
    expect(job_row).to_contain_text("succeeded")
    expect(job_row.locator(".job-thumbnail .mask-tile.loaded canvas.kind-overlay")).to_have_count(1)
    view_screenshot(page, "run-images-predict", page.locator("#images-panel"))
    job_row.get_by_role("button", name="Results").click()
    expect(page.locator("#job-result .mask-tile.loaded")).to_have_count(5)
    view_screenshot(page, "run-jobs-predicted-image", page.locator("#jobs-panel"))

    # Opened again, the job done is shown without asking the worker again.
    page.locator("#image-viewer .viewer-close").click()
    unsaved.locator("th button").click()
    expect(viewer).to_have_attribute("data-preview", "predicted")
    expect(viewer.locator(".mask-tile.loaded")).to_have_count(5)
    again = api(app_url, "GET", f"/api/v1/runs/{run_id}/jobs")["items"]
    assert len([job for job in again if job["kind"] == "predict_image"]) == 1
    # A fresh page learns from the images list which images were predicted.
    open_run(page, app_url, run_id)
    marked = page.locator(f'#images-table tbody tr[data-image="{name}"] td.preview-mark')
    expect(marked).to_have_text(f"predicted (epoch {EPOCHS})")
