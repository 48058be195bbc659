"""The new-run form offers the ResNet UNets and every encoder option, and places the rule that
refuses encoder options on a model without an encoder next to the field it names."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import screenshot
from tests.e2e.dashboard_helpers import watched_page


def _open_form(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#new-run-form[data-ready]")).to_be_attached()


def test_encoder_models_and_options_are_in_the_form(page: Page, app_url: str) -> None:
    _open_form(page, f"{app_url}/runs/new")

    models = page.locator("#cfg-model option").all_inner_texts()
    for name in ("vgg16-unet", "resnet18-unet", "resnet34-unet", "resnet50-unet"):
        assert any(name in text for text in models), models
    page.locator("#cfg-model").select_option("resnet34-unet")
    expect(page.locator("#cfg-freeze_encoder_epochs")).to_have_value("0")
    expect(page.locator("#cfg-encoder_lr_multiplier")).to_have_value("1")
    expect(page.locator("#cfg-freeze_encoder_epochs")).to_have_accessible_description(
        re.compile("train only the decoder for the first N epochs")
    )
    expect(page.locator("#cfg-encoder_weights")).to_have_accessible_description(
        re.compile("timm's resnet18/34/50")
    )
    page.locator("#cfg-freeze_encoder_epochs").fill("3")
    page.locator("#cfg-encoder_lr_multiplier").fill("0.1")
    page.locator('[data-field="freeze_encoder_epochs"]').scroll_into_view_if_needed()
    screenshot(page, "new-run-encoder-options")


def test_encoder_options_on_a_plain_unet_are_refused_at_the_field(
    browser: Browser, app_url: str
) -> None:
    with watched_page(browser, api_errors=[422]) as page:
        _open_form(page, f"{app_url}/runs/new")
        page.get_by_role("radio", name=re.compile(r"^demo\b")).check()
        page.locator("#cfg-model").select_option("unet")
        page.locator("#cfg-freeze_encoder_epochs").fill("2")
        page.get_by_role("button", name="Queue run").click()
        error = page.locator('[data-field="freeze_encoder_epochs"] .field-error')
        expect(error).to_contain_text("only applies to models with an encoder")
        expect(error).to_contain_text("model 'unet' has none")
        screenshot(page, "new-run-encoder-options-refused")
