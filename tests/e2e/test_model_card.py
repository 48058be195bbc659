"""The run page's Model card in Chromium: a run trained on the real worker shows its
parameters, FLOPs at the training size, latency, images/s, device and peak training memory; an
external run with no card shows no panel, and one that logs only its peak memory shows that."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.app_api import unique, wait_for_status
from tests.e2e.conftest import SCREENSHOTS, screenshot
from tests.e2e.run_page_helpers import external, log_points, open_run, train


@pytest.fixture(scope="module")
def trained(app_url: str) -> dict[str, Any]:
    run = train(app_url, unique("card"), epochs=2)
    return wait_for_status(app_url, run["id"], "succeeded")


def _fact(page: Page, label: str) -> Any:
    return page.locator(f'#model-card [data-card="{label}"] dd')


def test_a_trained_runs_page_shows_its_model_card(
    page: Page, app_url: str, trained: dict[str, Any]
) -> None:
    card = trained["run_info"]["model_card"]
    open_run(page, app_url, trained["id"])
    panel = page.locator("#model-card-panel")
    expect(panel).to_be_visible()
    expect(panel.locator("h2")).to_have_text("Model card")
    expect(_fact(page, "Parameters")).to_have_text(re.compile(r"^\d+(\.\d)? [kM]$|^\d+$"))
    expect(_fact(page, "Parameters")).to_have_attribute(
        "title", f"{card['parameters']:,} parameters"
    )
    expect(_fact(page, "Trainable parameters")).to_have_text(
        page.locator('#model-card [data-card="Parameters"] dd').inner_text()
    )
    expect(_fact(page, "FLOPs per image at 64 \u00d7 64")).to_have_text(
        re.compile(r"^[\d.,]+ [kMGT]?FLOPs$")
    )
    expect(_fact(page, "Latency, batch 1")).to_have_text(re.compile(r"^[\d.,]+ m?s$"))
    expect(_fact(page, "Latency, batch 8")).to_have_text(re.compile(r"^[\d.,]+ m?s$"))
    expect(_fact(page, "Throughput")).to_have_text(re.compile(r"^[\d.,]+ images/s$"))
    expect(_fact(page, "Measured on")).to_have_text("cpu, float32")
    expect(_fact(page, "Peak training memory")).to_have_text(re.compile(r"^[\d.,]+ (MiB|GiB)$"))
    expect(panel.locator(".model-card-note")).to_be_hidden()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    panel.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "model-card.png"))
    panel.screenshot(path=str(SCREENSHOTS / "model-card-panel.png"))


def test_runs_without_a_card_show_none_or_only_their_peak_memory(page: Page, app_url: str) -> None:
    plain = external(app_url, unique("no-card"))
    log_points(app_url, plain["id"], [{"key": "val/iou", "step": 1, "value": 0.5, "epoch": 1}])
    open_run(page, app_url, plain["id"])
    expect(page.locator("#model-card-panel")).to_be_hidden()

    peaked = external(app_url, unique("peak-only"))
    log_points(
        app_url,
        peaked["id"],
        [
            {"key": "train/peak_memory_mib", "step": step, "value": value, "epoch": step}
            for step, value in ((1, 900.0), (2, 1536.0), (3, 1200.0))
        ],
    )
    open_run(page, app_url, peaked["id"])
    expect(page.locator("#model-card-panel")).to_be_visible()
    expect(page.locator("#model-card .fact")).to_have_count(1)
    expect(_fact(page, "Peak training memory")).to_have_text("1.50 GiB")
    expect(page.locator("#model-card-panel .model-card-note")).to_be_visible()
    screenshot(page, "model-card-peak-only")
