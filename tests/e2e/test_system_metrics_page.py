"""System series in Chromium: the run page draws `sys/...` keys in a System group after the
metric charts, against elapsed time, and follows new samples live; the compare page compares
them by time like any metric."""

from __future__ import annotations

import math
import re
from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.app_api import unique
from tests.e2e.conftest import screenshot
from tests.e2e.run_page_helpers import chart_points, epoch_curve, external, log_points, open_run

SAMPLE_EVERY_S = 30
SAMPLES = 200
"""100 minutes of samples, so the time axis reaches past an hour."""
ELAPSED = re.compile(r"^(\d+[dhms])(\d\d[hms])*$")


def _system_points(seconds: range, *, load: float) -> list[dict[str, Any]]:
    """Made-up samples of one GPU and the host, every `SAMPLE_EVERY_S` seconds."""
    points: list[dict[str, Any]] = []
    for second in seconds:
        wave = math.sin(second / 600)
        for key, value in {
            "sys/cpu_percent": 180 * load + 40 * wave,
            "sys/rss_mb": 2400 + 300 * load,
            "sys/host_memory_percent": 41 + 3 * wave,
            "sys/host_memory_used_gb": 26 + 2 * wave,
            "sys/data_wait_percent": 12 + 8 * wave,
            "sys/gpu0/utilization_percent": 85 * load + 10 * wave,
            "sys/gpu0/memory_used_mb": 30_000 * load,
            "sys/gpu0/memory_total_mb": 81_559,
            "sys/gpu0/temperature_c": 60 + 8 * load,
            "sys/gpu0/power_w": 250 + 100 * load * wave,
        }.items():
            points.append({"key": key, "step": second, "value": value})
    return points


def _run_with_system_series(app_url: str, *, load: float) -> dict[str, Any]:
    run = external(app_url, unique("system"))
    log_points(app_url, run["id"], epoch_curve(range(1, 6), rate=0.5, noise_seed=1))
    samples = range(0, SAMPLES * SAMPLE_EVERY_S, SAMPLE_EVERY_S)
    log_points(app_url, run["id"], _system_points(samples, load=load))
    return run


def _titles_as_laid_out(page: Page, grid: str) -> list[str]:
    """The chart titles of `grid` in reading order (top to bottom, left to right)."""
    titles: list[str] = page.evaluate(
        """(grid) => [...document.querySelectorAll(`${grid} .chart-head h3`)]
            .map((title) => ({ text: title.textContent, box: title.getBoundingClientRect() }))
            .sort((a, b) => a.box.top - b.box.top || a.box.left - b.box.left)
            .map((title) => title.text)""",
        grid,
    )
    return titles


def _x_value_under_the_cursor(page: Page, chart_id: str) -> str:
    """Hover the middle of the chart; the legend's x value."""
    chart = page.locator(f'figure[data-chart="{chart_id}"]')
    chart.locator(".u-over").hover()
    text: str = chart.locator(".u-legend .u-series").first.locator(".u-value").inner_text()
    return text


def test_the_system_group_shows_sys_series_against_elapsed_time(page: Page, app_url: str) -> None:
    run = _run_with_system_series(app_url, load=0.8)
    open_run(page, app_url, run["id"])

    system = page.locator("#system-panel")
    expect(system).to_be_visible()
    expect(system.locator("h2")).to_have_text("System")
    expect(system.locator(".chart-head h3")).to_have_count(9)
    assert _titles_as_laid_out(page, "#system-charts") == [
        "GPU utilisation (%)",
        "GPU memory (MiB)",
        "CPU of the run's processes (% of one core)",
        "Step time spent waiting for data (%)",
        "Memory of the run's processes (MiB)",
        "Host memory used (%)",
        "Host memory used (GiB)",
        "GPU temperature (°C)",
        "GPU power (W)",
    ]
    # The epoch charts stay in the metrics group, without system series.
    expect(page.locator("#charts .chart-head h3").filter(has_text="sys/")).to_have_count(0)
    assert page.evaluate(
        "() => document.getElementById('charts').compareDocumentPosition("
        "document.getElementById('system-charts')) & Node.DOCUMENT_POSITION_FOLLOWING"
    ), "the System group comes after the metric charts"
    page.wait_for_function("() => segtrackCharts.get('sys-cpu')?.plot?.data[0]?.length > 0")
    assert chart_points(page, "sys-cpu") == SAMPLES
    assert chart_points(page, "loss") == 5  # epochs, untouched by the samples

    memory = page.locator('figure[data-chart="sys-gpu-memory"] .u-legend')
    expect(memory).to_contain_text("GPU 0 used")
    expect(memory).to_contain_text("GPU 0 total")
    options = page.evaluate(
        "() => { const c = segtrackCharts.get('sys-cpu');"
        " return {xTime: c.options.xTime, xLabel: c.options.xLabel, sync: c.options.syncKey}; }"
    )
    assert options == {"xTime": True, "xLabel": "time since start", "sync": f"run-{run['id']}-time"}
    elapsed = _x_value_under_the_cursor(page, "sys-cpu")
    assert ELAPSED.match(elapsed) and ("h" in elapsed or "m" in elapsed), elapsed
    epoch = _x_value_under_the_cursor(page, "loss")
    assert epoch.isdigit(), f"epoch charts keep their epochs: {epoch}"
    expect(system.locator("#system-csv")).to_have_attribute(
        "href", f"/api/v1/runs/{run['id']}/metrics.csv?table=system"
    )
    page.mouse.move(0, 0)
    system.scroll_into_view_if_needed()
    screenshot(page, "run-system-metrics")

    # New samples arrive live, like any metric.
    later = range(SAMPLES * SAMPLE_EVERY_S, (SAMPLES + 3) * SAMPLE_EVERY_S, SAMPLE_EVERY_S)
    log_points(app_url, run["id"], _system_points(later, load=0.8))
    page.wait_for_function(
        f"() => segtrackCharts.get('sys-cpu')?.plot?.data[0]?.length === {SAMPLES + 3}"
    )


def test_a_run_without_system_series_shows_no_system_group(page: Page, app_url: str) -> None:
    run = external(app_url, unique("no-system"))
    log_points(app_url, run["id"], epoch_curve(range(1, 4), rate=0.5, noise_seed=2))
    open_run(page, app_url, run["id"])
    page.wait_for_function("() => segtrackCharts.get('scores')?.plot?.data[0]?.length === 3")
    expect(page.locator("#system-panel")).to_be_hidden()


def test_the_compare_page_compares_system_series_by_time(page: Page, app_url: str) -> None:
    runs = [_run_with_system_series(app_url, load=load) for load in (0.4, 0.9)]
    ids = ",".join(str(run["id"]) for run in runs)
    page.goto(f"{app_url}/compare?ids={ids}&keys=val/iou,sys/gpu0/utilization_percent")
    expect(page.locator("#compare-page[data-ready]")).to_be_attached()
    chart_id = "cmp:sys/gpu0/utilization_percent"
    page.wait_for_function(
        "(id) => segtrackCharts.get(id)?.plot?.data[0]?.length > 0", arg=chart_id
    )
    assert chart_points(page, chart_id) == SAMPLES
    options = page.evaluate(
        "(id) => [segtrackCharts.get(id).options.xTime, segtrackCharts.get(id).options.syncKey]",
        chart_id,
    )
    assert options == [True, "compare-time"]
    elapsed = _x_value_under_the_cursor(page, chart_id)
    assert ELAPSED.match(elapsed), elapsed
    # System keys come last in the picker and stay out of the values-at-an-epoch tables.
    labels = page.locator("#metric-picker label").all_inner_texts()
    system_labels = [index for index, label in enumerate(labels) if "sys/" in label]
    assert system_labels and system_labels[0] == len(labels) - len(system_labels)
    expect(page.locator("#at-best th").filter(has_text="sys/")).to_have_count(0)
    page.mouse.move(0, 0)
    screenshot(page, "compare-system-metrics")
