"""The sweep pages: the list, and a sweep's page filling as a real worker trains its grid's
runs (progress, best run, best-so-far, importance, parallel coordinates brushed to filter the
runs table, the scatter, the top runs' curves) and its controls."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.app_api import TINY, WAIT_S, api, auth_headers, unique, wait_for_status
from tests.e2e.conftest import screenshot


def create_sweep(app_url: str, **spec: Any) -> dict[str, Any]:
    """A grid sweep of 1-epoch TINY runs over two learning rates and two losses (4 runs)."""
    body = {
        "name": unique("grid"),
        "config": {**TINY, "epochs": 1},
        "method": "grid",
        "metric": {"name": "val/iou", "goal": "maximize"},
        "parameters": {
            "learning_rate": {"values": [0.001, 0.01]},
            "loss": {"values": ["ce", "dice"]},
        },
        "parallel": 2,
        **spec,
    }
    sweep: dict[str, Any] = api(app_url, "POST", "/api/v1/sweeps", body)
    return sweep


def wait_for_sweep(app_url: str, sweep_id: int, *statuses: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S * 2
    while True:
        sweep: dict[str, Any] = api(app_url, "GET", f"/api/v1/sweeps/{sweep_id}")
        if sweep["status"] in statuses:
            return sweep
        if time.monotonic() > deadline:
            raise AssertionError(f"sweep {sweep_id} is {sweep['status']}, not one of {statuses}")
        time.sleep(0.5)


def brush(page: Page, axis: str, top_share: float, bottom_share: float) -> None:
    """Drag along an axis of the parallel-coordinates plot from `top_share` to `bottom_share`
    of its height (0: top)."""
    hit = page.locator(f'#parallel [data-axis-hit="{axis}"]')
    hit.scroll_into_view_if_needed()
    box = hit.bounding_box()
    assert box is not None
    x = box["x"] + box["width"] / 2
    page.mouse.move(x, box["y"] + box["height"] * top_share)
    page.mouse.down()
    page.mouse.move(x, box["y"] + box["height"] * (top_share + bottom_share) / 2, steps=3)
    page.mouse.move(x, box["y"] + box["height"] * bottom_share, steps=3)
    page.mouse.up()


def test_sweep_page_fills_and_its_brushes_filter_the_table(page: Page, app_url: str) -> None:
    sweep = create_sweep(app_url)
    page.goto(f"{app_url}/sweeps/{sweep['id']}")
    expect(page.locator("#sweep-page[data-ready]")).to_be_attached()
    expect(page.locator("#sweep-name")).to_have_text(sweep["name"])
    expect(page.locator("#sweep-facts")).to_contain_text("grid · maximize val/iou")
    expect(page.locator("#sweep-pause")).to_be_visible()
    screenshot(page, "sweep-page-starting")

    # The runs arrive and end without a reload (the event stream says when to read the sweep).
    expect(page.locator("#trials-table tbody tr")).to_have_count(4, timeout=WAIT_S * 2000)
    expect(page.locator('#progress-legend [data-part="done"] strong')).to_have_text(
        "4", timeout=WAIT_S * 2000
    )
    expect(page.locator("#sweep-status")).to_have_text("finished")
    finished = api(app_url, "GET", f"/api/v1/sweeps/{sweep['id']}")
    best = finished["best_run"]
    expect(page.locator("#best-run-link")).to_have_attribute("href", f"/runs/{best['id']}")
    expect(page.locator("#best-run")).to_contain_text("learning_rate (swept)")
    expect(page.locator("#trials-table tbody tr").first).to_have_attribute(
        "data-run-id", str(best["id"])
    )
    expect(page.locator("#importance .importance-bars li")).to_have_count(2)
    lines = page.locator("#parallel canvas")
    expect(lines).to_have_attribute("data-lines", "4")
    expect(lines).to_have_attribute("data-selected", "4")
    expect(page.locator("#parallel [data-axis]")).to_have_count(3)
    expect(page.locator("#parallel [data-axis='learning_rate'] .axis-title")).to_have_text(
        "learning_rate"
    )
    expect(page.locator("#scatter circle.dot")).to_have_count(4)
    expect(page.locator("#sweep-pause")).to_be_hidden()
    expect(page.locator("#sweep-cancel")).to_be_hidden()
    page.wait_for_function("() => document.querySelectorAll('#top-curves .u-over').length === 1")

    # Brush the loss axis's top point (dice), then also the learning rate's top (0.01).
    brush(page, "loss", 0.01, 0.2)
    dice = {run["id"] for run in finished["runs"] if run["params"]["loss"] == "dice"}
    visible = page.locator("#trials-table tbody tr:not(.filtered-out)")
    expect(visible).to_have_count(2)
    assert {int(v) for v in visible.evaluate_all("rows => rows.map(r => r.dataset.runId)")} == dice
    expect(page.locator("#trials-count")).to_have_text("2 of 4 inside the brushes")
    expect(lines).to_have_attribute("data-selected", "2")
    brush(page, "learning_rate", 0.01, 0.2)
    expect(visible).to_have_count(1)
    expect(lines).to_have_attribute("data-selected", "1")
    shown = visible.first.locator('[data-key="learning_rate"]')
    expect(shown).to_have_text("0.01")
    expect(visible.first.locator('[data-key="loss"]')).to_have_text("dice")
    expect(page.locator("#scatter circle.dot[r='3.5']")).to_have_count(1)
    screenshot(page, "sweep-page-brushed")

    # A click on an axis clears its brush; the button clears them all.
    page.locator('#parallel [data-axis-hit="learning_rate"]').click()
    expect(visible).to_have_count(2)
    page.get_by_role("button", name="Clear brushes").click()
    expect(visible).to_have_count(4)


def test_sweep_controls_pause_resume_raise_and_cancel(page: Page, app_url: str) -> None:
    sweep = create_sweep(
        app_url,
        method="random",
        parameters={
            "learning_rate": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2}
        },
        max_runs=3,
        parallel=1,
        config={**TINY, "epochs": 30},
    )
    page.goto(f"{app_url}/sweeps/{sweep['id']}")
    expect(page.locator("#sweep-page[data-ready]")).to_be_attached()
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#sweep-status")).to_have_text("paused")
    expect(page.locator("#sweep-message")).to_have_text("Sweep paused.")
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#sweep-status")).to_have_text("running")
    page.locator("#max-runs-input").fill("5")
    page.get_by_role("button", name="Set").click()
    expect(page.locator("#sweep-message")).to_have_text("The sweep makes up to 5 runs.")
    assert api(app_url, "GET", f"/api/v1/sweeps/{sweep['id']}")["max_runs"] == 5
    expect(page.locator("#progress-legend")).to_contain_text(re.compile(r"/ 5 ended"))
    page.get_by_role("button", name="Cancel sweep").click()
    page.locator("dialog.confirm").get_by_role("button", name="Cancel sweep").click()
    expect(page.locator("#sweep-status")).to_have_text("cancelled")
    expect(page.locator("#max-runs-form")).to_be_hidden()
    wait_for_sweep(app_url, sweep["id"], "cancelled")


def test_sweeps_list_links_each_sweep(page: Page, app_url: str) -> None:
    sweep = create_sweep(app_url, max_runs=1, config={**TINY, "epochs": 1})
    page.goto(f"{app_url}/sweeps")
    expect(page.locator("#sweeps-table[data-ready]")).to_be_attached()
    row = page.locator(f'#sweeps-body tr[data-sweep-id="{sweep["id"]}"]')
    expect(row).to_contain_text(sweep["name"])
    expect(row).to_contain_text("grid")
    expect(row).to_contain_text(re.compile(r"\d / 1 ended"))
    expect(page.get_by_role("link", name="Sweeps")).to_have_attribute("aria-current", "page")
    screenshot(page, "sweeps-list")
    row.get_by_role("link", name=sweep["name"]).click()
    expect(page).to_have_url(f"{app_url}/sweeps/{sweep['id']}")
    expect(page.locator("#sweep-page[data-ready]")).to_be_attached()


def test_a_missing_sweep_is_a_404_page(app_url: str) -> None:
    request = urllib.request.Request(
        f"{app_url}/sweeps/99999999", headers={**auth_headers(app_url), "Accept": "text/html"}
    )
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(request, timeout=30)
    assert missing.value.code == 404
    assert "sweep 99999999 does not exist" in missing.value.read().decode()


def test_a_sweep_page_follows_its_sweep_on_the_event_stream(page: Page, app_url: str) -> None:
    """A paused sweep with nothing in flight cannot change by itself, so its page reads nothing
    until the stream's sweep events say it changed: its parallel changed and its cancel (both
    from outside the page) show without a reload."""
    sweep = create_sweep(app_url, parallel=1, max_runs=1)
    api(app_url, "POST", f"/api/v1/sweeps/{sweep['id']}/pause")
    for run in api(app_url, "GET", f"/api/v1/sweeps/{sweep['id']}")["runs"]:
        if run["status"] in ("queued", "running"):
            api(app_url, "POST", f"/api/v1/runs/{run['id']}/cancel")
        wait_for_status(app_url, run["id"], "cancelled", "succeeded", "failed")
    reads: list[str] = []
    page.on(
        "request",
        lambda request: (
            reads.append(request.url)
            if request.url.endswith(f"/api/v1/sweeps/{sweep['id']}")
            else None
        ),
    )
    page.goto(f"{app_url}/sweeps/{sweep['id']}")
    expect(page.locator("#sweep-page[data-ready]")).to_be_attached()
    expect(page.locator("#sweep-status")).to_have_text("paused")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    assert reads == [], "a paused sweep with nothing in flight is not read again"

    api(app_url, "PATCH", f"/api/v1/sweeps/{sweep['id']}", {"parallel": 3})
    expect(page.locator("#sweep-facts")).to_contain_text("3 at once")
    api(app_url, "POST", f"/api/v1/sweeps/{sweep['id']}/cancel")
    expect(page.locator("#sweep-status")).to_have_text("cancelled")
    assert reads, "the page read the sweep when its events came"
    screenshot(page, "sweep-page-live")
