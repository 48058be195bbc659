"""The run page in Chromium against the real app and worker: live charts, the epoch slider over
mask previews, the error view, editable class colours (followed by other open pages), cancel, a
failed run, a 10,000-point series (zoomed in at full resolution) and user text that must stay
text."""

from __future__ import annotations

import json
import math
import re
import urllib.error
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from playwright.sync_api import Dialog, Page, expect

from tests.e2e.app_api import WAIT_S, api, unique, wait_for_status
from tests.e2e.conftest import SCREENSHOTS, screenshot
from tests.e2e.run_page_helpers import (
    COLOR_COUNTS_JS,
    canvas_colors,
    chart_points,
    drag_zoom,
    external,
    log_points,
    open_run,
    second_page,
    train,
    x_range,
)
from trainer.data.demo import DEMO_CLASS_COLORS

WAIT_MS = WAIT_S * 1000
PREVIEW_EPOCHS = "segtrackRunPage.previews.epochs.length"
MARKUP = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def finished_run(app_url: str) -> dict[str, Any]:
    """A 4-epoch run of the demo dataset that has succeeded, with previews every epoch."""
    run = train(app_url, unique("previews"), epochs=4)
    return wait_for_status(app_url, run["id"], "succeeded")


@pytest.fixture
def demo_colors(app_url: str) -> Iterator[list[str]]:
    """The demo dataset's class colours, put back after the test."""
    colors: list[str] = api(app_url, "GET", "/api/v1/datasets/demo")["class_colors"]
    yield colors
    api(app_url, "PATCH", "/api/v1/datasets/demo", {"class_colors": colors})


def _cancel_if_active(app_url: str, run_id: int) -> None:
    if api(app_url, "GET", f"/api/v1/runs/{run_id}")["status"] in ("queued", "running"):
        api(app_url, "POST", f"/api/v1/runs/{run_id}/cancel")


def test_charts_and_previews_follow_a_running_run_without_a_reload(
    page: Page, app_url: str
) -> None:
    run = train(app_url, unique("live"), epochs=30)
    try:
        open_run(page, app_url, run["id"])
        page.evaluate("window.__marker = 'still here'")
        page.wait_for_function(
            "() => segtrackCharts.get('loss')?.plot?.data[0]?.length >= 1", timeout=WAIT_MS
        )
        before = chart_points(page, "loss")
        page.wait_for_function(
            "(n) => segtrackCharts.get('loss')?.plot?.data[0]?.length >= n + 2",
            arg=before,
            timeout=WAIT_MS,
        )
        assert chart_points(page, "scores") >= before + 2
        expect(page.locator("#run-status")).to_have_text("running")
        expect(page.locator("#epochs-text")).not_to_have_text("0 / 30")
        screenshot(page, "run-live")

        # Looking at an old epoch: new epochs extend the slider but leave the view alone.
        area = page.locator("#preview-area")
        page.wait_for_function(f"() => {PREVIEW_EPOCHS} >= 2", timeout=WAIT_MS)
        page.locator("#epoch-slider").focus()
        page.keyboard.press("Home")
        expect(area).to_have_attribute("data-epoch", "1")
        known = page.evaluate(PREVIEW_EPOCHS)
        page.wait_for_function(f"(n) => {PREVIEW_EPOCHS} > n", arg=known, timeout=WAIT_MS)
        expect(area).to_have_attribute("data-epoch", "1")
        # Back on the latest epoch: the view follows the new ones.
        page.keyboard.press("End")
        known = page.evaluate(PREVIEW_EPOCHS)
        page.wait_for_function(
            """(n) => { const epochs = segtrackRunPage.previews.epochs;
                        return epochs.length > n && document.getElementById("preview-area")
                            .dataset.epoch === String(epochs[epochs.length - 1]); }""",
            arg=known,
            timeout=WAIT_MS,
        )
        assert page.evaluate("window.__marker") == "still here", "the page was reloaded"
    finally:
        _cancel_if_active(app_url, run["id"])


def test_epoch_slider_keys_and_go_to_box_change_the_prediction(
    page: Page, app_url: str, finished_run: dict[str, Any]
) -> None:
    open_run(page, app_url, finished_run["id"])
    area = page.locator("#preview-area")
    expect(area).to_have_attribute("data-epoch", "4")
    prediction = page.locator("#preview-area .sample-row").first.locator("canvas.kind-prediction")

    def shown() -> tuple[str | None, str]:
        return prediction.get_attribute("data-src"), prediction.evaluate("c => c.toDataURL()")

    last_src, last_pixels = shown()
    assert last_src is not None and "/previews/4/" in last_src

    page.locator("#epoch-slider").focus()
    page.keyboard.press("Home")
    expect(area).to_have_attribute("data-epoch", "1")
    first_src, first_pixels = shown()
    assert first_src is not None and "/previews/1/" in first_src
    assert first_pixels != last_pixels, "epoch 1 and epoch 4 predict differently"

    page.keyboard.press("ArrowRight")
    expect(area).to_have_attribute("data-epoch", "2")
    expect(page.locator("#epoch-value")).to_contain_text("2 (2 of 4")

    page.fill("#epoch-goto", "3")
    page.press("#epoch-goto", "Enter")
    expect(area).to_have_attribute("data-epoch", "3")
    expect(page.locator("#epoch-slider")).to_have_value("2")

    area.focus()
    page.keyboard.press("End")
    expect(area).to_have_attribute("data-epoch", "4")
    page.keyboard.press("ArrowLeft")
    expect(area).to_have_attribute("data-epoch", "3")
    assert prediction.get_attribute("data-src") != last_src
    expect(page.locator("#log")).to_contain_text("epoch 1")
    screenshot(page, "run-previews")


def test_error_view_marks_exactly_the_wrong_pixels(
    page: Page, app_url: str, finished_run: dict[str, Any]
) -> None:
    open_run(page, app_url, finished_run["id"])
    expect(page.locator("#preview-area")).to_have_attribute("data-epoch", "4")
    # Truth and prediction are painted with one colour per class, so comparing their pixels
    # classifies every pixel; the error view must agree with it everywhere.
    checked = page.evaluate(
        """() => {
            const row = document.querySelector("#preview-area .sample-row");
            const pixels = (kind) => {
                const canvas = row.querySelector(`canvas.kind-${kind}`);
                const context = canvas.getContext("2d");
                return context.getImageData(0, 0, canvas.width, canvas.height).data;
            };
            const [truth, predicted, errors] = ["truth", "prediction", "errors"].map(pixels);
            const colours = { fp: "255,0,255", fn: "0,220,255", both: "255,200,0" };
            const rgb = (a, i) => `${a[i]},${a[i + 1]},${a[i + 2]}`;
            const background = "0,0,0";
            const expected = { fp: 0, fn: 0, both: 0 };
            const found = { fp: 0, fn: 0, both: 0 };
            let mismatches = 0;
            for (let i = 0; i < truth.length; i += 4) {
                let kind = null;
                const ignored = rgb(truth, i) === "150,150,150";
                if (!ignored && rgb(truth, i) !== rgb(predicted, i)) {
                    kind = rgb(truth, i) === background ? "fp"
                        : rgb(predicted, i) === background ? "fn" : "both";
                    expected[kind] += 1;
                }
                const painted = Object.keys(colours)
                    .find((key) => colours[key] === rgb(errors, i)) || null;
                if (painted) found[painted] += 1;
                if (painted !== kind) mismatches += 1;
            }
            return { expected, found, mismatches };
        }"""
    )
    assert checked["mismatches"] == 0, checked
    assert sum(checked["found"].values()) > 0, "a 4-epoch model still makes mistakes"

    page.locator("#overlay-opacity").focus()
    page.keyboard.press("End")
    expect(page.locator("#opacity-value")).to_have_text("1.00")
    overlay = canvas_colors(page, "#preview-area .sample-row canvas.kind-overlay")
    prediction = canvas_colors(page, "#preview-area .sample-row canvas.kind-prediction")
    foreground = {color for color in prediction if color != "#000000"}
    assert foreground and foreground <= set(overlay), "at opacity 1 classes show their colour"

    row = page.locator("#preview-area .sample-row").first
    row.scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#previews-panel").screenshot(path=str(SCREENSHOTS / "run-error-view.png"))


def _largest_truth_class(page: Page, colors: list[str]) -> int:
    """The foreground class covering most truth pixels in the previews shown."""
    truths = page.locator("#preview-area canvas.kind-truth")
    totals: dict[str, int] = {}
    for index in range(truths.count()):
        selector = f"#preview-area .sample-row:nth-child({index + 1}) canvas.kind-truth"
        for color, count in canvas_colors(page, selector).items():
            totals[color] = totals.get(color, 0) + count
    return max(
        (index for index in range(1, len(colors)) if colors[index] in totals),
        key=lambda index: totals[colors[index]],
    )


def _wait_recoloured(page: Page, canvases: str, old: str, new: str) -> None:
    """Wait until some canvas matching `canvases` shows `new` and none shows `old`."""
    page.wait_for_function(
        f"""([selector, old, next]) => {{
            const counts = [...document.querySelectorAll(selector)]
                .map((canvas) => ({COLOR_COUNTS_JS})(canvas));
            return counts.some((count) => count[next] > 0) && counts.every((count) => !count[old]);
        }}""",
        arg=[canvases, old, new],
    )


def test_the_page_starts_from_the_open_stream_in_the_datasets_own_colours(
    page: Page, app_url: str, finished_run: dict[str, Any]
) -> None:
    open_run(page, app_url, finished_run["id"])
    # It went on when its event stream opened, not when the fallback timeout ran out.
    expect(page.locator("#run-page")).to_have_attribute("data-stream", "open")

    # The demo dataset's classes.json colours, not the default palette.
    demo_hex = [f"#{red:02x}{green:02x}{blue:02x}" for red, green, blue in DEMO_CLASS_COLORS]
    assert api(app_url, "GET", "/api/v1/datasets/demo")["class_colors"] == demo_hex
    for index, color in enumerate(demo_hex):
        expect(page.locator(f"#class-color-{index}")).to_have_value(color)
    # Next to the colour inputs: a change here is a change for every run of the dataset.
    scope = page.locator("#class-legend .legend-scope")
    expect(scope).to_be_visible()
    expect(scope).to_contain_text("Colours belong to dataset demo")
    expect(scope).to_contain_text("changing one here changes it for every run of demo")
    expect(page.locator("#class-color-1")).to_have_attribute(
        "aria-describedby", "class-colors-scope"
    )
    screenshot(page, "run-colour-scope")


def test_class_colour_change_recolours_and_is_saved_on_the_dataset(
    page: Page, app_url: str, finished_run: dict[str, Any], demo_colors: list[str]
) -> None:
    open_run(page, app_url, finished_run["id"])
    expect(page.locator("#preview-area")).to_have_attribute("data-epoch", "4")
    names: list[str] = api(app_url, "GET", "/api/v1/datasets/demo")["class_names"]
    target = _largest_truth_class(page, demo_colors)
    old, new = demo_colors[target], "#7b2ff7"
    swatch = page.locator(f"#class-color-{target}")
    expect(swatch).to_have_value(old)
    swatch.fill(new)

    expect(swatch).to_have_value(new)
    page.wait_for_function(
        f"""([old, next]) => [...document.querySelectorAll("#preview-area canvas.kind-truth")]
            .some((canvas) => {{
                const counts = ({COLOR_COUNTS_JS})(canvas);
                return counts[next] > 0 && !counts[old];
            }})""",
        arg=[old, new],
    )
    per_class = page.evaluate(
        "(key) => segtrackCharts.get('per-class').series.find((s) => s.key === key).color",
        f"val/iou/{names[target]}",
    )
    assert per_class == new
    expect(page.locator(".legend-status")).to_contain_text("saved for dataset demo")
    assert api(app_url, "GET", "/api/v1/datasets/demo")["class_colors"][target] == new
    screenshot(page, "run-colour-changed")

    page.reload()
    expect(page.locator("#run-page[data-ready]")).to_be_attached()
    expect(page.locator(f"#class-color-{target}")).to_have_value(new)
    expect(page.locator("#preview-area")).to_have_attribute("data-epoch", "4")
    swatch_style = page.locator(f"#class-table tbody tr:nth-child({target + 1}) .swatch")
    expect(swatch_style).to_have_attribute("style", "background: #7b2ff7")


def test_colours_follow_between_the_run_page_and_the_datasets_page(
    page: Page, app_url: str, finished_run: dict[str, Any], demo_colors: list[str]
) -> None:
    """Two tabs of one browser: a colour picked on one shows on the other without a reload."""
    demo = api(app_url, "GET", "/api/v1/datasets/demo")
    open_run(page, app_url, finished_run["id"])
    expect(page.locator("#preview-area")).to_have_attribute("data-epoch", "4")
    target = _largest_truth_class(page, demo_colors)
    name = demo["class_names"][target]
    old, picked_on_run, picked_on_datasets = demo_colors[target], "#7b2ff7", "#0fb5a8"
    with second_page(page) as datasets:
        datasets.goto(f"{app_url}/datasets")
        card = datasets.locator('article[data-dataset="demo"]')
        expect(card.locator('figure.sample[data-ready="true"]')).to_have_count(6)
        for each in (page, datasets):
            expect(each.locator("#live-status")).to_have_attribute("data-state", "live")
            each.evaluate("window.__marker = 1")
        masks = 'article[data-dataset="demo"] canvas.mask'
        # The class's colour is a labelled colour input: found by its class name.
        picker = card.get_by_label(name, exact=True)
        expect(picker).to_have_value(old)
        expect(picker).to_have_attribute("type", "color")

        page.locator(f"#class-color-{target}").fill(picked_on_run)
        expect(picker).to_have_value(picked_on_run)
        _wait_recoloured(datasets, masks, old, picked_on_run)
        expect(card.locator(".legend-status")).to_have_text("colours changed on another page")
        screenshot(datasets, "datasets-colour-followed")

        picker.focus()
        expect(picker).to_be_focused()
        picker.fill(picked_on_datasets)
        expect(card.locator(".legend-status")).to_have_text("colours saved for dataset demo")
        _wait_recoloured(datasets, masks, picked_on_run, picked_on_datasets)
        expect(page.locator(f"#class-color-{target}")).to_have_value(picked_on_datasets)
        _wait_recoloured(page, "#preview-area canvas.kind-truth", picked_on_run, picked_on_datasets)
        expect(page.locator(".legend-status")).to_have_text("colours changed on another page")
        swatch = page.locator(f"#class-table tbody tr:nth-child({target + 1}) .swatch")
        expect(swatch).to_have_attribute("style", f"background: {picked_on_datasets}")
        assert api(app_url, "GET", "/api/v1/datasets/demo")["class_colors"][target] == (
            picked_on_datasets
        )
        screenshot(page, "run-colour-followed")
        for each in (page, datasets):
            assert each.evaluate("window.__marker") == 1, "a page was reloaded"

        # While a colour is being picked (its save pending), colours from elsewhere wait.
        kept = page.evaluate(
            """(index) => { const palette = segtrackRunPage.palette;
                            const elsewhere = palette.colors.slice();
                            elsewhere[index] = "#222222";
                            palette.setColor(index, "#111111");
                            return [palette.applySaved(elsewhere), palette.colors[index]]; }""",
            target,
        )
        assert kept == [False, "#111111"]
        expect(picker).to_have_value("#111111")


def test_colours_of_a_run_without_a_dataset_follow_other_tabs(page: Page, app_url: str) -> None:
    """Without a registered dataset the colours live in localStorage; other tabs follow them."""
    run = external(app_url, unique("tabs"))
    classes = ["background", "road", "car"]
    log_points(
        app_url,
        run["id"],
        [{"key": f"val/iou/{name}", "step": 1, "value": 0.5, "epoch": 1} for name in classes],
    )
    open_run(page, app_url, run["id"])
    with second_page(page) as other:
        open_run(other, app_url, run["id"])
        swatch = "#class-table tbody tr:nth-child(2) .swatch"
        before = other.locator(swatch).get_attribute("style")
        # The legend sits in the previews panel, hidden for an external run without previews.
        page.locator("#class-color-1").evaluate(
            """(input) => { input.value = "#123456";
                            input.dispatchEvent(new Event("input", { bubbles: true })); }"""
        )
        expect(page.locator(".legend-status")).to_have_text("colours saved in this browser")
        expect(page.locator(".legend-scope")).to_contain_text("kept in this browser only")
        expect(other.locator("#class-color-1")).to_have_value("#123456")
        expect(other.locator(swatch)).to_have_attribute("style", "background: #123456")
        assert before != "background: #123456"
        screenshot(other, "run-colour-followed-other-tab")
    api(app_url, "PATCH", f"/api/v1/runs/{run['id']}", {"status": "succeeded"})


def test_cancel_a_running_run_from_its_page(page: Page, app_url: str) -> None:
    run = train(app_url, unique("cancel-me"), epochs=500)
    try:
        open_run(page, app_url, run["id"])
        expect(page.locator("#run-status")).to_have_text("running", timeout=WAIT_MS)
        cancel = page.locator("#cancel-run")
        cancel.click()
        expect(cancel).to_have_text("Confirm cancel")
        cancel.click()
        expect(page.locator("#run-status")).to_have_text("cancelled", timeout=60_000)
        expect(cancel).to_be_hidden()
        # The note that the cancel was requested gives way to its outcome, live...
        expect(page.locator("#action-status")).to_have_text("cancelled: the worker stopped the run")
        assert api(app_url, "GET", f"/api/v1/runs/{run['id']}")["status"] == "cancelled"
        # ...and after a reload nothing says the cancel is still on its way.
        page.reload()
        expect(page.locator("#run-page[data-ready]")).to_be_attached()
        expect(page.locator("#run-status")).to_have_text("cancelled")
        expect(page.locator("#run-page")).not_to_contain_text("cancel requested")
        expect(cancel).to_be_hidden()
        checkpoints = api(app_url, "GET", f"/api/v1/runs/{run['id']}/checkpoints")["checkpoints"]
        if any(checkpoint["kind"] == "last" for checkpoint in checkpoints):
            page.click("#resume-run")
            expect(page.locator("#run-status")).to_have_text(re.compile("queued|running"))
            expect(cancel).to_be_visible()
        else:
            expect(page.locator("#resume-run")).to_be_hidden()
    finally:
        _cancel_if_active(app_url, run["id"])


def test_a_failed_run_shows_its_reason_and_traceback(page: Page, app_url: str) -> None:
    run = train(
        app_url,
        unique("fails"),
        model="vgg16-unet",
        # Inside a dataset root, so the server takes it; not a weights file, so training fails.
        encoder_weights="demo/images/demo_0000.png",
        epochs=2,
    )
    wait_for_status(app_url, run["id"], "failed")
    open_run(page, app_url, run["id"])
    failure = page.locator("#failure")
    expect(failure).to_be_visible()
    expect(page.locator("#failure-reason")).to_contain_text("demo_0000.png")
    expect(page.locator("#failure-traceback")).to_be_hidden()
    page.locator("#failure-details summary").click()
    expect(page.locator("#failure-traceback")).to_contain_text("Traceback")
    expect(page.locator("#run-status")).to_have_text("failed")
    expect(page.locator("#resume-run")).to_be_hidden()
    expect(page.locator("#cancel-run")).to_be_hidden()
    screenshot(page, "run-failed")


def test_a_10000_point_series_is_downsampled_to_the_chart_width(page: Page, app_url: str) -> None:
    run = external(app_url, unique("ten-thousand"), params={"learning_rate": 0.01})
    log_points(
        app_url,
        run["id"],
        [
            {
                "key": "train/loss",
                "step": step,
                "value": math.exp(-step / 3000) + 0.05 * math.sin(step),
            }
            for step in range(10_000)
        ],
    )
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    open_run(page, app_url, run["id"])
    page.wait_for_function("() => segtrackCharts.get('loss')?.plot?.data[0]?.length > 0")
    points = chart_points(page, "loss")
    width = page.locator("#chart-loss .chart-area").evaluate("area => area.clientWidth")
    assert 50 < points <= width, (points, width)
    asked = [url for url in requests if "/metrics?" in url]
    assert asked and all("max_points=" in url for url in asked)
    expect(page.locator("#chart-loss .chart-note")).to_contain_text("of 10000 points")
    assert page.locator("#chart-loss canvas").first.evaluate("c => c.width") > 0

    log_points(app_url, run["id"], [{"key": "train/loss", "step": 10_000, "value": 0.01}])
    page.wait_for_function("() => segtrackCharts.get('loss').lastStep('train/loss') === 10000")
    screenshot(page, "run-10k-points")

    # A batch too big to travel in its event is fetched from the API (incrementally, or in full
    # when it lands during a reload the previous point triggered).
    before = len(requests)
    log_points(
        app_url,
        run["id"],
        [{"key": "train/loss", "step": step, "value": 0.02} for step in range(10_001, 10_601)],
    )
    page.wait_for_function("() => segtrackCharts.get('loss').lastStep('train/loss') === 10600")
    assert any("/metrics?" in url for url in requests[before:])

    # A narrower window: the chart shrinks and asks again at its new width.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.wait_for_function(
        """() => { const chart = segtrackCharts.get("loss");
                   return !!chart?.plot && chart.plot.data[0].length <= chart.area.clientWidth - 60
                       && chart.plot.width <= chart.area.clientWidth; }"""
    )
    api(app_url, "PATCH", f"/api/v1/runs/{run['id']}", {"status": "succeeded"})


def test_a_zoomed_range_of_a_10000_point_series_shows_its_every_point(
    page: Page, app_url: str
) -> None:
    run = external(app_url, unique("zoom-ten-thousand"))
    log_points(
        app_url,
        run["id"],
        [
            {"key": "train/loss", "step": step, "value": 1 + math.sin(step)}
            for step in range(10_000)
        ],
    )
    open_run(page, app_url, run["id"])
    note = page.locator("#chart-loss .chart-note")
    expect(note).to_contain_text("of 10000 points")
    overview = chart_points(page, "loss")

    zoom_read = drag_zoom(page, "loss", 0.48, 0.51)
    assert zoom_read.ok and f"/api/v1/runs/{run['id']}/metrics?" in zoom_read.url
    low, high = x_range(page, "loss")
    assert 4_000 < low < high < 6_000
    query = parse_qs(urlsplit(zoom_read.url).query)
    first, last = int(query["min_step"][0]), int(query["max_step"][0])
    assert first <= low and high <= last <= high + 1, "every step shown, no more"
    page.wait_for_function(
        "(n) => segtrackCharts.get('loss').plot.data[0][0] === n", arg=first, timeout=WAIT_MS
    )
    zoomed: list[float] = page.evaluate("() => segtrackCharts.get('loss').plot.data[0]")
    # Three hundredths of 10,000 steps fit the plot's width: every point of the range, no other.
    assert zoomed == list(range(first, last + 1))
    expect(note).to_be_hidden()
    assert x_range(page, "loss") == [low, high], "the range's points keep the zoomed range"
    screenshot(page, "run-zoomed-10k")

    # A live point past the range: the zoomed view stays put, the overview takes it.
    log_points(app_url, run["id"], [{"key": "train/loss", "step": 10_000, "value": 0.5}])
    page.wait_for_function(
        "() => segtrackCharts.get('loss').lastStep('train/loss') === 10000", timeout=WAIT_MS
    )
    assert x_range(page, "loss") == [low, high]
    assert page.evaluate("() => segtrackCharts.get('loss').plot.data[0]") == zoomed

    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.get_by_role("button", name="Reset zoom").first.click()
    page.wait_for_function(
        "(n) => segtrackCharts.get('loss').plot.data[0].length === n", arg=overview + 1
    )
    assert x_range(page, "loss") == [0, 10_000], "the overview, with the new point"
    expect(note).to_contain_text("of 10001 points")
    assert not [url for url in asked if "/metrics?" in url], "the overview is kept"
    api(app_url, "PATCH", f"/api/v1/runs/{run['id']}", {"status": "succeeded"})


def test_names_tags_and_notes_stay_text_and_save(page: Page, app_url: str) -> None:
    run = external(app_url, MARKUP, tags=[MARKUP], notes=MARKUP)
    dialogs: list[str] = []

    def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", refuse)
    open_run(page, app_url, run["id"])
    expect(page.locator("#run-name")).to_have_value(MARKUP)
    expect(page.locator("#tags .tag span")).to_have_text(MARKUP)
    expect(page.locator("#notes")).to_have_value(MARKUP)
    assert page.locator("img[src='x']").count() == 0

    renamed = f"{MARKUP} renamed"
    page.fill("#run-name", renamed)
    page.press("#run-name", "Enter")
    expect(page.locator("#name-status")).to_have_text("renamed")
    page.fill("#tag-input", "<b>bold</b>")
    page.press("#tag-input", "Enter")
    expect(page.locator("#tags .tag")).to_have_count(2)
    page.locator(f"#tags button[aria-label='Remove tag {MARKUP}']").click()
    expect(page.locator("#tags .tag")).to_have_count(1)
    page.fill("#notes", "<script>alert(2)</script> notes")
    page.click("#save-notes")
    expect(page.locator("#notes-status")).to_have_text("saved")

    stored = api(app_url, "GET", f"/api/v1/runs/{run['id']}")
    assert stored["name"] == renamed
    assert stored["tags"] == ["<b>bold</b>"]
    assert stored["notes"] == "<script>alert(2)</script> notes"
    page.reload()
    expect(page.locator("#run-name")).to_have_value(renamed)
    expect(page.locator("#tags .tag span")).to_have_text("<b>bold</b>")
    assert page.locator("img[src='x'], #tags b, script:not([src])").count() == 0
    assert dialogs == []
    api(app_url, "PATCH", f"/api/v1/runs/{run['id']}", {"status": "succeeded"})


def test_the_header_shows_what_the_trainer_resolved_about_the_data(
    page: Page, app_url: str, finished_run: dict[str, Any]
) -> None:
    info = finished_run["run_info"]
    open_run(page, app_url, finished_run["id"])
    facts = page.locator("#run-facts")

    def fact(label: str) -> Any:
        return facts.locator(f'.fact[data-fact="{label}"] dd')

    expect(fact("Images")).to_have_text(f"{info['num_train']} train / {info['num_val']} val")
    assert info["num_train"] + info["num_val"] == 48
    expect(fact("Input channels")).to_have_text("3")
    expect(fact("Classes")).to_have_text("4")
    expect(fact("Steps per epoch")).to_have_text(str(info["steps_per_epoch"]))
    expect(fact("Parameters")).to_have_text(re.compile(r"^\d+(\.\d)? [kMB]$|^\d+$"))
    expect(fact("Parameters")).to_have_attribute("title", f"{info['parameters']:,} parameters")
    expect(fact("Mask value → class")).to_have_text(
        "0 → background, 1 → circle, 2 → square, 3 → triangle (grey values)"
    )
    expect(page.locator("#data-warnings")).to_be_hidden()  # the demo data raises none
    page.locator(".run-header").screenshot(path=str(SCREENSHOTS / "run-data-facts.png"))

    # Warnings, class names and colours from user files stay text.
    page.evaluate(
        """(markup) => {
            const run = { class_names: [markup, "road"], run_info: {
                num_train: 80, num_val: 20, in_channels: 1, start_epoch: 4, steps_per_epoch: 10,
                parameters: 7812345, warnings: [markup, "3 masks hold only background"],
                mask_encoding: { mode: "rgb", values: [[0, 0, 0], [128, 0, 0]],
                                 ignore_values: [[255, 255, 255]] } } };
            document.getElementById("run-facts").replaceChildren();
            segtrackRunInfo.show(run, document.getElementById("run-facts"),
                                 document.getElementById("data-warnings"));
        }""",
        MARKUP,
    )
    expect(page.locator("#data-warnings")).to_be_visible()
    expect(page.locator("#data-warnings h3")).to_have_text("2 data warnings")
    expect(page.locator("#data-warnings li").first).to_have_text(MARKUP)
    expect(fact("Parameters")).to_have_text("7.8 M")
    expect(fact("Resumed at")).to_have_text("epoch 4")
    expect(fact("Mask value → class")).to_have_text(
        f"(0, 0, 0) → {MARKUP}, (128, 0, 0) → road; ignored: (255, 255, 255) (RGB colours)"
    )
    assert page.locator("img[src='x']").count() == 0
    page.locator(".run-header").screenshot(path=str(SCREENSHOTS / "run-data-warnings.png"))


def test_config_copies_as_yaml_and_json(
    page: Page, app_url: str, finished_run: dict[str, Any]
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_run(page, app_url, finished_run["id"])
    config = finished_run["config"]
    expect(page.locator("#config .config-table caption").first).to_have_text("data")
    expect(page.locator("#config tr.changed-value th", has_text="base_channels")).to_be_visible()
    page.click("#copy-yaml")
    expect(page.locator("#copy-status")).to_have_text("copied as YAML")
    assert yaml.safe_load(page.evaluate("navigator.clipboard.readText()")) == config
    page.click("#copy-json")
    expect(page.locator("#copy-status")).to_have_text("copied as JSON")
    assert json.loads(page.evaluate("navigator.clipboard.readText()")) == config


def test_chart_log_scale_smoothing_and_per_class_table(
    page: Page, app_url: str, finished_run: dict[str, Any]
) -> None:
    open_run(page, app_url, finished_run["id"])
    page.wait_for_function("() => segtrackCharts.get('loss')?.plot?.data[0]?.length === 4")
    page.check("#chart-loss-log")
    page.wait_for_function("() => segtrackCharts.get('loss')?.plot?.scales.y.distr === 3")
    page.locator("#chart-loss-smooth").focus()
    page.keyboard.press("End")
    expect(page.locator("#chart-loss .smooth-value")).to_have_text("0.99")
    page.wait_for_function("() => segtrackCharts.get('loss')?.plot?.series.length === 5")
    raw, smoothed = page.evaluate(
        "() => { const d = segtrackCharts.get('loss').plot.data; return [d[1], d[2]]; }"
    )
    series = api(app_url, "GET", f"/api/v1/runs/{finished_run['id']}/metrics?keys=train/loss")
    assert raw == pytest.approx(series["series"]["train/loss"]["value"]), "raw line kept (faint)"
    assert smoothed[0] == pytest.approx(raw[0]) and smoothed != pytest.approx(raw)
    expect(page.locator("#chart-loss .u-legend tr.raw").first).to_be_hidden()

    best = finished_run["best_epoch"]
    expect(page.locator("#class-table thead")).to_contain_text(f"Best (epoch {best})")
    expect(page.locator("#class-table thead")).to_contain_text("Last (epoch 4)")
    rows = page.locator("#class-table tbody tr")
    expect(rows).to_have_count(4)
    at_best = api(app_url, "GET", f"/api/v1/metrics/at?run_ids={finished_run['id']}&epoch=best")
    circle = at_best["items"][0]["values"]["val/iou/circle"]
    expect(rows.nth(1).locator("td").first).to_have_text(f"{circle:.4f}")


def test_delete_from_the_run_page(page: Page, app_url: str) -> None:
    run = external(app_url, unique("delete-me"))
    open_run(page, app_url, run["id"])
    delete = page.locator("#delete-run")
    delete.click()
    expect(delete).to_have_text("Confirm delete")
    delete.click()
    page.wait_for_url(f"{app_url}/")
    with pytest.raises(urllib.error.HTTPError) as missing:
        api(app_url, "GET", f"/api/v1/runs/{run['id']}")
    assert missing.value.code == 404
