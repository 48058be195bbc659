"""Helpers of the run-page and compare-page browser tests: API calls against the app under test,
tiny training runs, external runs with made-up curves, and reads of the page's charts and canvases.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, FloatRect, Page, Response, expect

from tests.e2e.app_api import TINY, api, unique

expect.set_options(timeout=30_000)


def train(app_url: str, name: str, **config: Any) -> dict[str, Any]:
    """Queue a training run of TINY changed by `config`."""
    run: dict[str, Any] = api(
        app_url, "POST", "/api/v1/runs", {"name": name, "config": {**TINY, **config}}
    )
    return run


def external(app_url: str, name: str, **body: Any) -> dict[str, Any]:
    """An external run (status running) that the test logs points into."""
    run: dict[str, Any] = api(
        app_url, "POST", "/api/v1/runs", {"name": name, "external": True, **body}
    )
    return run


def log_points(app_url: str, run_id: int, points: list[dict[str, Any]]) -> None:
    api(app_url, "POST", f"/api/v1/runs/{run_id}/metrics", {"points": points})


def epoch_curve(epochs: Iterable[int], *, rate: float, noise_seed: int) -> list[dict[str, Any]]:
    """val/iou and val/loss per epoch of a made-up run that learns at `rate`."""
    points: list[dict[str, Any]] = []
    for epoch in epochs:
        wobble = 0.03 * math.sin(epoch * 1.7 + noise_seed * 2.3)
        iou = 0.85 * (1 - math.exp(-epoch * rate)) + wobble
        points.append({"key": "val/iou", "step": epoch, "value": iou, "epoch": epoch})
        points.append({"key": "val/loss", "step": epoch, "value": 2.0 - iou, "epoch": epoch})
    return points


def open_run(page: Page, app_url: str, run_id: int) -> None:
    """Open the run page and wait until its first data is loaded."""
    page.goto(f"{app_url}/runs/{run_id}")
    expect(page.locator("#run-page[data-ready]")).to_be_attached()


def chart_points(page: Page, chart_id: str) -> int:
    """Points per series the chart's uPlot instance holds (0 before it is drawn)."""
    count: int = page.evaluate(
        """(id) => { const chart = segtrackCharts.get(id);
                     return chart && chart.plot ? chart.plot.data[0].length : 0; }""",
        chart_id,
    )
    return count


def x_range(page: Page, chart_id: str) -> list[float]:
    """The [min, max] of a chart's x scale, read from its uPlot instance."""
    shown: list[float] = page.evaluate(
        "(id) => { const x = segtrackCharts.get(id).plot.scales.x; return [x.min, x.max]; }",
        chart_id,
    )
    return shown


def plot_box(page: Page, chart_id: str) -> FloatRect:
    """The page box of the chart's plot area (uPlot's `.u-over`, which takes the mouse)."""
    box = page.locator(f"figure[data-chart='{chart_id}'] .u-over").bounding_box()
    assert box is not None
    return box


def drag_zoom(page: Page, chart_id: str, start: float, end: float) -> Response:
    """Drag across the chart's plot from `start` to `end` (fractions of its width); the answer to
    the zoomed range's read (a request with `min_step`) that the drag made."""
    box = plot_box(page, chart_id)
    middle = box["y"] + box["height"] / 2
    with page.expect_response(lambda response: "min_step=" in response.url) as zoom_read:
        page.mouse.move(box["x"] + box["width"] * start, middle)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * end, middle, steps=6)
        page.mouse.up()
    return zoom_read.value


COLOR_COUNTS_JS = """(canvas) => {
    const data = canvas.getContext("2d")
        .getImageData(0, 0, canvas.width, canvas.height).data;
    const counts = {};
    for (let i = 0; i < data.length; i += 4) {
        const hex = "#" + [data[i], data[i + 1], data[i + 2]]
            .map((c) => c.toString(16).padStart(2, "0")).join("");
        counts[hex] = (counts[hex] || 0) + 1;
    }
    return counts;
}"""
"""A page function: pixel count per '#rrggbb' colour of a canvas."""


def canvas_colors(page: Page, selector: str) -> dict[str, int]:
    """Pixel count per '#rrggbb' colour of the first canvas matching `selector`."""
    counts: dict[str, int] = page.locator(selector).first.evaluate(COLOR_COUNTS_JS)
    return counts


@contextmanager
def second_page(page: Page) -> Iterator[Page]:
    """Another page of `page`'s browser context (another tab); its console errors fail the test."""
    other = page.context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    other.on("console", on_console)
    other.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield other
    finally:
        other.close()
    assert not errors, f"the second page logged errors: {errors}"


USER_PASSWORD = "a long enough password"


@contextmanager
def signed_in_user(
    browser: Browser, app_url: str, role: str, *, refusing_pages: Iterable[str] = ()
) -> Iterator[Page]:
    """A page of a new user of `role` ("member", "viewer"), signed in through the sign-in form;
    its console errors fail the test, but for the 403 answers of `refusing_pages` (paths)."""
    name = unique(role)
    api(app_url, "POST", "/api/v1/users", {"name": name, "role": role, "password": USER_PASSWORD})
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    refusing = frozenset(refusing_pages)

    def on_console(message: ConsoleMessage) -> None:
        path = urllib.parse.urlsplit(message.location.get("url", "")).path
        if message.type == "error" and not (path in refusing and "403" in message.text):
            errors.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{app_url}/login")
        page.fill("#login-name", name)
        page.fill("#login-password", USER_PASSWORD)
        page.click("#login-form button[type=submit]")
        expect(page.locator("#who-name")).to_have_text(name)
        yield page
    finally:
        context.close()
    assert not errors, f"{name}'s page logged errors: {errors}"
