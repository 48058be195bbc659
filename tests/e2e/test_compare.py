"""The compare page in Chromium against the real app and worker: overlaid curves, the config diff,
metrics at an epoch and at best, predictions side by side, mean ± std groups, and a dozen runs
on two datasets with their tags as columns."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.app_api import api, unique, wait_for_status
from tests.e2e.conftest import screenshot
from tests.e2e.dashboard_helpers import watched_page
from tests.e2e.run_page_helpers import (
    chart_points,
    drag_zoom,
    epoch_curve,
    external,
    log_points,
    plot_box,
    train,
    x_range,
)


@pytest.fixture(scope="module")
def two_runs(app_url: str) -> list[dict[str, Any]]:
    """Two finished 3-epoch runs that differ only by learning rate (same validation split)."""
    runs = [
        train(app_url, unique("slow"), learning_rate=0.001),
        train(app_url, unique("fast"), learning_rate=0.004),
    ]
    return [wait_for_status(app_url, run["id"], "succeeded") for run in runs]


def _open(page: Page, app_url: str, query: str) -> None:
    page.goto(f"{app_url}/compare?{query}")
    expect(page.locator("#compare-page[data-ready]")).to_be_attached()


def test_compare_two_finished_runs(
    page: Page, app_url: str, two_runs: list[dict[str, Any]]
) -> None:
    ids = ",".join(str(run["id"]) for run in two_runs)
    _open(page, app_url, f"ids={ids}")

    legend = page.locator("#run-legend li")
    expect(legend).to_have_count(2)
    for run in two_runs:
        expect(page.locator(f"#run-legend a[href='/runs/{run['id']}']")).to_have_text(run["name"])

    for key in ("val/iou", "val/loss", "train/loss", "lr"):
        page.wait_for_function(
            "(id) => segtrackCharts.get(id)?.plot?.data[0]?.length === 3",
            arg=f"cmp:{key}",
        )
    lengths = page.evaluate(
        """() => segtrackCharts.get("cmp:val/iou").plot.data.slice(1)
            .map((column) => column.filter((value) => value !== null).length)"""
    )
    assert lengths == [3, 3], "one curve per run, each with its 3 epochs"

    diff = page.locator("#config-diff tbody tr")
    expect(diff).to_have_count(1)
    expect(diff.first).to_have_attribute("data-key", "learning_rate")
    expect(diff.first.locator("td")).to_have_text(["0.001", "0.004"])
    page.check("#show-all-keys")
    expect(page.locator("#config-diff tbody tr[data-key='epochs']")).to_be_visible()
    page.uncheck("#show-all-keys")
    expect(diff).to_have_count(1)

    expect(page.locator("#compare-epoch")).to_have_value("3")
    expect(page.locator("#at-epoch tbody tr")).to_have_count(2)
    expect(page.locator("#at-best tbody tr")).to_have_count(2)
    values = api(app_url, "GET", f"/api/v1/metrics/at?run_ids={ids}&epoch=2&keys=val/iou")
    page.fill("#compare-epoch", "2")
    page.press("#compare-epoch", "Enter")
    first_row = page.locator(f"#at-epoch tbody tr[data-run-id='{two_runs[0]['id']}'] td")
    expect(first_row.first).to_have_text("2")
    expected_iou = values["items"][0]["values"]["val/iou"]
    iou_cell = first_row.nth(1)
    assert abs(float(iou_cell.inner_text()) - expected_iou) < 1e-3

    samples = page.locator("#compare-samples .sample-grid[data-sample]")
    expect(page.locator("#compare-samples")).to_have_attribute("data-epoch", "2")
    expect(samples.first).to_be_visible()
    row = samples.first
    expect(row.locator("canvas.kind-truth")).to_have_count(1)
    predictions = row.locator("canvas.kind-prediction")
    expect(predictions).to_have_count(2)
    sources = [predictions.nth(index).get_attribute("data-src") or "" for index in range(2)]
    assert [
        f"/runs/{run['id']}/previews/2/" in source
        for run, source in zip(two_runs, sources, strict=True)
    ] == [True, True]

    page.select_option("#preview-mode", "errors")
    expect(samples.first.locator("canvas.kind-errors")).to_have_count(2)
    page.select_option("#preview-mode", "overlay")
    expect(samples.first.locator("canvas.kind-overlay")).to_have_count(2)
    screenshot(page, "compare")


def test_grouping_by_a_config_key_draws_mean_and_std_bands(page: Page, app_url: str) -> None:
    runs: list[dict[str, Any]] = []
    for rate in (0.15, 0.5):
        for seed in (0, 1, 2):
            run = external(
                app_url, unique(f"rate{rate}-seed{seed}"), params={"rate": rate, "seed": seed}
            )
            # One run stopped early and one skipped epoch 4: groups still draw where data exists.
            last = 8 if (rate, seed) == (0.5, 2) else 12
            epochs = [epoch for epoch in range(1, last + 1) if (rate, seed, epoch) != (0.15, 1, 4)]
            log_points(app_url, run["id"], epoch_curve(epochs, rate=rate, noise_seed=seed))
            api(app_url, "PATCH", f"/api/v1/runs/{run['id']}", {"status": "succeeded"})
            runs.append(run)
    ids = ",".join(str(run["id"]) for run in runs)
    _open(page, app_url, f"ids={ids}")
    page.wait_for_function("() => segtrackCharts.get('cmp:val/iou')?.plot?.data[0]?.length === 12")
    expect(page.locator("#group-key option")).to_have_text(["none", "rate", "seed"])

    page.select_option("#group-key", "rate")
    expect(page.locator("#group-note")).to_contain_text("2 groups")
    page.wait_for_function("() => segtrackCharts.get('cmp:val/iou').series.length === 6")
    page.wait_for_function("() => segtrackCharts.get('cmp:val/iou')?.plot?.bands?.length === 2")
    chart = page.evaluate(
        """() => { const chart = segtrackCharts.get("cmp:val/iou");
                   return { labels: chart.series.filter((s) => !s.faint).map((s) => s.label),
                            bands: chart.plot.bands.length,
                            points: chart.plot.data[0].length }; }"""
    )
    assert chart["labels"] == ["rate=0.15 (n=3)", "rate=0.5 (n=3)"]
    assert chart["bands"] == 2
    assert chart["points"] == 12
    spread = page.evaluate(
        """() => { const chart = segtrackCharts.get("cmp:val/iou");
                   const hi = chart.points.get("group-1-hi").values;
                   const lo = chart.points.get("group-1-lo").values;
                   return hi.map((value, i) => value - lo[i]); }"""
    )
    assert len(spread) == 12 and all(width >= 0 for width in spread)
    last_mean = page.evaluate(
        "() => segtrackCharts.get('cmp:val/iou').points.get('group-1-mean').values.at(-1)"
    )
    reached = [
        point["value"]
        for seed in (0, 1)
        for point in epoch_curve(range(12, 13), rate=0.5, noise_seed=seed)
        if point["key"] == "val/iou"
    ]
    assert last_mean == pytest.approx(sum(reached) / 2), "epoch 12: the mean of the runs there"
    assert chart_points(page, "cmp:val/loss") == 12

    page.select_option("#group-key", "seed")
    page.select_option("#group-mode", "others")
    expect(page.locator("#group-note")).to_contain_text("rate=0.15 (3); rate=0.5 (3)")

    page.fill("#compare-epoch", "12")
    page.press("#compare-epoch", "Enter")
    short = page.locator(f"#at-epoch tbody tr[data-run-id='{runs[-1]['id']}'] td")
    missing = "\N{EN DASH}"
    expect(short).to_have_text(["12", missing, missing])
    expect(page.locator("#compare-samples")).to_contain_text("None of these runs has mask previews")
    screenshot(page, "compare-grouped")


def test_zoom_and_reset_apply_to_every_chart_on_the_same_axis(page: Page, app_url: str) -> None:
    runs: list[dict[str, Any]] = []
    for seed in (0, 1):
        run = external(app_url, unique(f"zoom-seed{seed}"), params={"seed": seed})
        steps = [
            {"key": "train/loss_step", "step": step, "value": 2.0 / (1 + step)}
            for step in range(1, 121)
        ]
        log_points(app_url, run["id"], epoch_curve(range(1, 13), rate=0.3, noise_seed=seed))
        log_points(app_url, run["id"], steps)
        api(app_url, "PATCH", f"/api/v1/runs/{run['id']}", {"status": "succeeded"})
        runs.append(run)
    ids = ",".join(str(run["id"]) for run in runs)
    _open(page, app_url, f"ids={ids}&keys=val/iou,val/loss,train/loss_step")
    for chart_id, count in (
        ("cmp:val/iou", 12),
        ("cmp:val/loss", 12),
        ("cmp:train/loss_step", 120),
    ):
        page.wait_for_function(
            "([id, n]) => segtrackCharts.get(id)?.plot?.data[0]?.length === n",
            arg=[chart_id, count],
        )
    assert x_range(page, "cmp:val/iou") == [1, 12]
    assert x_range(page, "cmp:val/loss") == [1, 12]
    assert x_range(page, "cmp:train/loss_step") == [1, 120]
    reset_buttons = page.get_by_role("button", name="Reset zoom")
    expect(reset_buttons).to_have_count(0)

    box = plot_box(page, "cmp:val/iou")
    middle = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.25, middle)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, middle, steps=8)
    page.mouse.up()
    page.wait_for_function(
        "(id) => segtrackCharts.get(id).plot.scales.x.min > 1", arg="cmp:val/loss"
    )
    zoomed = x_range(page, "cmp:val/iou")
    assert 1 < zoomed[0] < zoomed[1] < 12, "a quarter to 60% of epochs 1..12"
    assert x_range(page, "cmp:val/loss") == zoomed, "the other epoch chart shows the same range"
    assert x_range(page, "cmp:train/loss_step") == [1, 120], "steps are another axis"
    expect(reset_buttons).to_have_count(2)
    screenshot(page, "compare-zoomed")

    other = plot_box(page, "cmp:val/loss")
    page.mouse.dblclick(other["x"] + other["width"] / 2, other["y"] + other["height"] / 2)
    page.wait_for_function(
        "(id) => segtrackCharts.get(id).plot.scales.x.min === 1", arg="cmp:val/iou"
    )
    assert x_range(page, "cmp:val/iou") == [1, 12]
    assert x_range(page, "cmp:val/loss") == [1, 12]
    expect(reset_buttons).to_have_count(0)

    # A chart shown while zoomed starts at the same range; the button resets from the keyboard.
    page.mouse.move(box["x"] + box["width"] * 0.5, middle)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.9, middle, steps=8)
    page.mouse.up()
    expect(reset_buttons).to_have_count(2)
    zoomed = x_range(page, "cmp:val/iou")
    assert 1 < zoomed[0] < zoomed[1] < 12
    picker = page.locator("#metric-picker input[value='val/loss']")
    picker.uncheck()
    expect(reset_buttons).to_have_count(1)
    picker.check()
    page.wait_for_function(
        "(id) => segtrackCharts.get(id)?.plot?.data[0]?.length === 12", arg="cmp:val/loss"
    )
    assert x_range(page, "cmp:val/loss") == zoomed
    expect(reset_buttons).to_have_count(2)
    reset_buttons.last.focus()
    page.keyboard.press("Enter")
    expect(reset_buttons).to_have_count(0)
    page.wait_for_function(
        "(id) => segtrackCharts.get(id).plot.scales.x.max === 12", arg="cmp:val/iou"
    )
    assert x_range(page, "cmp:val/loss") == [1, 12]


def test_compare_asks_for_at_least_two_runs(page: Page, app_url: str) -> None:
    run = external(app_url, unique("alone"))
    page.goto(f"{app_url}/compare?ids={run['id']}")
    expect(page.locator("#page-message")).to_contain_text("Choose 2 to 50 runs")
    api(app_url, "PATCH", f"/api/v1/runs/{run['id']}", {"status": "succeeded"})


def test_a_dozen_runs_on_two_datasets_diff_first_and_warn(page: Page, app_url: str) -> None:
    runs: list[dict[str, Any]] = []
    for index in range(12):
        roads = index >= 8
        rate = [1e-4, 3e-4, 1e-3, 3e-3][index % 4]
        config = {
            "dataset": "roads" if roads else "demo",
            "num_classes": 3 if roads else 4,
            "learning_rate": rate,
            "seed": index,
        }
        run = external(
            app_url, unique(f"dozen{index}"), config=config, tags=[f"lr={rate:g}", "dozen"]
        )
        log_points(
            app_url, run["id"], epoch_curve(range(1, 13), rate=0.1 + index / 20, noise_seed=index)
        )
        api(app_url, "PATCH", f"/api/v1/runs/{run['id']}", {"status": "succeeded"})
        runs.append(run)
    ids = ",".join(str(run["id"]) for run in runs)
    _open(page, app_url, f"ids={ids}")
    expect(page.locator("#compare-page[data-charts-drawn]")).to_be_attached()
    expect(page.locator("#run-legend li")).to_have_count(12)

    warnings = page.locator("#data-warnings")
    expect(warnings).to_be_visible()
    expect(warnings).to_contain_text("different datasets: demo (")
    expect(warnings).to_contain_text(f"roads (#{runs[8]['id']}")
    expect(warnings).to_contain_text("different class sets: 4 classes")

    diff_box = page.locator("#config-diff").bounding_box()
    curves_box = page.locator("#compare-charts").bounding_box()
    assert diff_box is not None and curves_box is not None
    assert diff_box["y"] < curves_box["y"], "the config diff comes before the curves"
    keys = page.locator("#config-diff tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.key)"
    )
    assert keys == ["dataset", "learning_rate", "num_classes", "seed"]
    expect(page.locator("#config-diff thead th")).to_have_count(13)

    lengths = page.evaluate(
        """() => segtrackCharts.get("cmp:val/iou").plot.data.slice(1)
            .map((column) => column.filter((value) => value !== null).length)"""
    )
    assert lengths == [12] * 12, "one curve per run, each with its 12 epochs"
    colors = page.evaluate(
        "() => segtrackCharts.get('cmp:val/iou').series.map((series) => series.color)"
    )
    assert len(set(colors)) == 12, "every run its own colour"

    page.get_by_role("checkbox", name="lr").check()
    expect(page.locator("#at-epoch thead th[data-tag='lr']")).to_have_text("tag lr")
    page.fill("#compare-epoch", "5")
    page.press("#compare-epoch", "Enter")
    first = page.locator(f"#at-epoch tbody tr[data-run-id='{runs[1]['id']}'] td")
    expect(first.first).to_have_text("5")
    expect(first.nth(1)).to_have_text("0.0003")
    expect(page.locator("#at-epoch tbody tr")).to_have_count(12)
    assert "tags=lr" in page.url
    screenshot(page, "compare-dozen")


def test_a_run_that_is_gone_is_named_and_the_others_compared(
    browser: Browser, app_url: str
) -> None:
    runs = []
    for seed in (0, 1):
        run = external(app_url, unique(f"kept{seed}"), params={"seed": seed})
        log_points(app_url, run["id"], epoch_curve(range(1, 6), rate=0.3, noise_seed=seed))
        api(app_url, "PATCH", f"/api/v1/runs/{run['id']}", {"status": "succeeded"})
        runs.append(run)
    with watched_page(browser, api_errors=[404]) as page:
        _open(page, app_url, f"ids={runs[0]['id']},999999,{runs[1]['id']}")
        expect(page.locator("#page-message")).to_have_text("Not found: run 999999.")
        expect(page.locator("#compare-page[data-charts-drawn]")).to_be_attached()
        lengths = page.evaluate(
            """() => segtrackCharts.get("cmp:val/iou").plot.data.slice(1)
                .map((column) => column.filter((value) => value !== null).length)"""
        )
        assert lengths == [5, 5]


def test_fifty_long_runs_drawn_from_one_runs_read_and_one_series_read_per_chart(
    page: Page, app_url: str
) -> None:
    runs = []
    for index in range(50):
        run = external(app_url, unique(f"fifty{index}"), params={"seed": index})
        points = [
            {"key": "val/iou", "step": step, "value": (step % (50 + index)) / 100, "epoch": step}
            for step in range(1, 1_501)
        ]
        log_points(app_url, run["id"], points)
        runs.append(run)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    _open(page, app_url, f"ids={','.join(str(run['id']) for run in runs)}")
    expect(page.locator("#compare-page[data-charts-drawn]")).to_be_attached()
    expect(page.locator("#run-legend li")).to_have_count(50)
    drawn = page.evaluate(
        """() => segtrackCharts.get("cmp:val/iou").plot.data.slice(1)
            .map((column) => column.filter((value) => value !== null).length)"""
    )
    assert len(drawn) == 50 and min(drawn) > 20, "every run has its (downsampled) curve"
    width = page.evaluate("""() => segtrackCharts.get("cmp:val/iou").pixelWidth()""")
    assert max(drawn) <= width, "at most a point per pixel of the plot"
    paths = [url.split("?")[0].removeprefix(app_url) for url in asked]
    assert paths.count("/api/v1/compare/runs") == 1
    assert not [path for path in paths if re.fullmatch(r"/api/v1/runs/\d+", path)], "one per run"
    assert paths.count("/api/v1/metrics/series") == 1, "one chart, one read of every run's series"
    screenshot(page, "compare-fifty")


def test_zooming_a_long_curve_reads_the_zoomed_steps_at_full_resolution(
    page: Page, app_url: str
) -> None:
    runs = []
    for seed in (0, 1):
        run = external(app_url, unique(f"long-zoom{seed}"), params={"seed": seed})
        points = [
            {
                "key": "val/iou",
                "step": step,
                "value": ((step * (7 + seed)) % 97) / 97,
                "epoch": step,
            }
            for step in range(1, 4_001)
        ]
        for start in range(0, len(points), 2_000):
            log_points(app_url, run["id"], points[start : start + 2_000])
        runs.append(run)
    ids = ",".join(str(run["id"]) for run in runs)
    _open(page, app_url, f"ids={ids}&keys=val/iou")
    chart = "cmp:val/iou"
    note = page.locator(f"figure[data-chart='{chart}'] .chart-note")
    expect(note).to_contain_text("downsampled")
    overview = page.evaluate("(id) => segtrackCharts.get(id).plot.data[0].length", chart)

    zoom_read = drag_zoom(page, chart, 0.45, 0.55)
    assert zoom_read.ok and "/api/v1/metrics/series" in zoom_read.url
    low, high = x_range(page, chart)
    assert 1_500 < low < high < 2_500
    query = parse_qs(urlsplit(zoom_read.url).query)
    first, last = int(query["min_step"][0]), int(query["max_step"][0])
    assert first <= low and high <= last <= high + 1, "every step shown, no more"
    page.wait_for_function(
        "([id, n]) => segtrackCharts.get(id).plot.data[0][0] === n", arg=[chart, first]
    )
    xs: list[float] = page.evaluate("(id) => segtrackCharts.get(id).plot.data[0]", chart)
    # A tenth of 4,000 epochs fits the plot's width: every point of the range, no other.
    assert xs == list(range(first, last + 1))
    expect(note).to_be_hidden()
    assert x_range(page, chart) == [low, high], "the new points keep the zoomed range"
    screenshot(page, "compare-zoomed-long")

    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.get_by_role("button", name="Reset zoom").click()
    page.wait_for_function(
        "([id, n]) => segtrackCharts.get(id).plot.data[0].length === n", arg=[chart, overview]
    )
    assert x_range(page, chart) == [1, 4_000]
    assert not [url for url in asked if "/api/v1/metrics/series" in url], "the overview is kept"
