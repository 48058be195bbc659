"""The new-run form: generated from the config schema (groups, labels, help, defaults), the
server's validation messages next to their fields, clone prefill and fine-tuning from a run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.e2e.app_api import api, unique, wait_for_status
from tests.e2e.conftest import screenshot
from tests.e2e.dashboard_helpers import cancel_quietly, create_run, watched_page
from tests.e2e.run_page_helpers import open_run, train


def _open_form(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#new-run-form[data-ready]")).to_be_attached()


def _field(page: Page, name: str) -> Any:
    return page.locator(f'[data-field="{name}"]')


def test_form_is_built_from_the_schema(page: Page, app_url: str) -> None:
    _open_form(page, f"{app_url}/runs/new")
    legends = page.locator("#new-run-form fieldset > legend").all_inner_texts()
    assert legends == ["Run", "Data", "Model", "Optimisation", "Augmentation"]
    advanced = page.locator('details[data-group="advanced"]')
    expect(advanced).not_to_have_attribute("open", "")
    expect(page.locator("#cfg-seed")).to_be_hidden()

    schema = api(app_url, "GET", "/api/v1/config/schema")
    assert page.locator("[data-field]").count() == len(schema["properties"]) + 6
    expect(page.locator("#cfg-learning_rate")).to_have_value("0.001")
    expect(page.locator("#cfg-model")).to_have_value("unet")
    expect(page.locator("#cfg-milestones")).to_have_value("30, 60")
    expect(page.locator("#cfg-augment")).to_have_value("light")
    expect(page.locator("#cfg-deep_supervision")).not_to_be_checked()
    expect(page.locator("#run-priority")).to_have_value("0")
    expect(page.locator("#cfg-learning_rate")).to_have_accessible_description(
        re.compile("Peak learning rate")
    )
    expect(page.get_by_role("radio", name=re.compile(r"^demo\b"))).to_be_visible()
    expect(_field(page, "dataset")).to_contain_text("48 pairs")
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('#new-run-form :is(input, select, textarea)')]
            .filter((c) => !c.labels.length && !c.getAttribute('aria-label'))
            .map((c) => c.id)"""
    )
    assert unlabelled == []
    page.get_by_text("Advanced", exact=True).click()
    expect(page.locator("#cfg-seed")).to_be_visible()
    page.locator("#cfg-augment").select_option("__explicit__")
    expect(page.locator("#cfg-augment-json")).to_have_value(re.compile("HorizontalFlip"))
    page.set_viewport_size({"width": 1280, "height": 900})
    screenshot(page, "new-run-form")


def test_server_validation_messages_show_next_to_their_fields(
    browser: Browser, app_url: str
) -> None:
    with watched_page(browser, api_errors=[422]) as page:
        _open_form(page, f"{app_url}/runs/new")
        page.get_by_role("radio", name=re.compile(r"^demo\b")).check()
        page.locator("#cfg-learning_rate").fill("-1")
        page.get_by_role("button", name="Queue run").click()
        error = _field(page, "learning_rate").locator(".field-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("greater than 0")
        expect(page.locator("#cfg-learning_rate")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#cfg-learning_rate")).to_be_focused()
        summary = page.locator("#form-errors")
        expect(summary).to_be_visible()
        expect(summary).to_contain_text("learning_rate")
        screenshot(page, "new-run-errors")

        # Typing mistakes are caught before anything is sent.
        page.locator("#cfg-learning_rate").fill("0.01")
        page.locator("#cfg-milestones").fill("10, ten")
        page.get_by_role("button", name="Queue run").click()
        expect(_field(page, "milestones").locator(".field-error")).to_contain_text(
            '"ten" is not a number'
        )
        expect(_field(page, "learning_rate").locator(".field-error")).to_be_hidden()
        page.locator("#cfg-milestones").fill("10, 20")

        # A folder that does not exist under the dataset roots.
        page.get_by_role("radio", name=re.compile("^Another folder")).check()
        page.get_by_label("Dataset path").fill("no-such-dataset")
        page.get_by_role("button", name="Queue run").click()
        dataset_error = _field(page, "dataset").locator(".field-error")
        expect(dataset_error).to_contain_text("no folder 'no-such-dataset'")
        expect(page.get_by_label("Dataset path")).to_be_focused()
        screenshot(page, "new-run-errors-dataset")

        # A folder that fails inspection: its report's errors show at the dataset.
        roots = page.locator("#new-run-form").get_attribute("data-dataset-roots") or ""
        broken = Path(roots.split(", ")[0]) / unique("unpaired")
        assert broken.is_absolute(), "the form names the dataset roots"
        for folder, stem in (("images", "a"), ("masks", "b")):
            (broken / folder).mkdir(parents=True)
            Image.fromarray(np.zeros((16, 16), dtype=np.uint8)).save(
                broken / folder / f"{stem}.png"
            )
        page.get_by_label("Dataset path").fill(broken.name)
        page.get_by_role("button", name="Queue run").click()
        expect(summary).to_contain_text("The dataset failed inspection")
        expect(dataset_error).to_contain_text("inspection:")
        expect(dataset_error).to_contain_text("mask suffix")
        screenshot(page, "new-run-errors-inspection")

        # A whole-config rule lands on the field its message names.
        page.get_by_role("radio", name=re.compile(r"^demo\b")).check()
        page.locator("#cfg-deep_supervision").check()
        page.get_by_role("button", name="Queue run").click()
        expect(_field(page, "deep_supervision").locator(".field-error")).to_contain_text(
            "only available with model 'unet++'"
        )


def test_clone_prefills_the_form_from_a_run(page: Page, app_url: str) -> None:
    name = unique("clone-source")
    source = create_run(
        app_url,
        name,
        tags=["clone-me", "e2e"],
        learning_rate=0.0042,
        model="unet++",
        milestones=[5, 9],
        image_size=[48, 40],
        seed=7,
    )
    try:
        _open_form(page, f"{app_url}/runs/new?clone={source['id']}")
        expect(page.get_by_label("Name", exact=True)).to_have_value(f"{name} (clone)")
        expect(page.get_by_label("Tags")).to_have_value("clone-me, e2e")
        expect(page.locator("#cfg-learning_rate")).to_have_value("0.0042")
        expect(page.locator("#cfg-model")).to_have_value("unet++")
        expect(page.locator("#cfg-milestones")).to_have_value("5, 9")
        expect(page.locator("#cfg-image_size")).to_have_value("48")
        expect(page.locator("#cfg-image_size-2")).to_have_value("40")
        expect(page.locator("#cfg-augment")).to_have_value("none")
        expect(page.locator("#cfg-seed")).to_have_value("7")
        expect(page.get_by_role("radio", name=re.compile(r"^demo\b"))).to_be_checked()
        expect(page.locator("#clone-note")).to_contain_text(f"run #{source['id']}")
        screenshot(page, "new-run-clone")

        page.route(re.compile(r"/runs/\d+$"), lambda route: route.fulfill(body="run page"))
        page.locator("#cfg-learning_rate").fill("0.003")
        page.get_by_role("button", name="Queue run").click()
        page.wait_for_url(re.compile(r"/runs/\d+$"))
        clone = api(app_url, "GET", f"/api/v1/runs/{page.url.rsplit('/', 1)[1]}")
        try:
            assert clone["name"] == f"{name} (clone)"
            assert clone["tags"] == ["clone-me", "e2e"]
            expected = {**source["config"], "learning_rate": 0.003}
            assert clone["config"] == expected
        finally:
            cancel_quietly(app_url, clone["id"])
            wait_for_status(app_url, clone["id"], "cancelled", "succeeded", "failed")
    finally:
        cancel_quietly(app_url, source["id"])
        wait_for_status(app_url, source["id"], "cancelled", "succeeded", "failed")


def test_fine_tune_starts_a_run_from_another_runs_best_weights(page: Page, app_url: str) -> None:
    name = unique("fine-tune-source")
    source = wait_for_status(app_url, train(app_url, name, epochs=1)["id"], "succeeded")
    open_run(page, app_url, source["id"])
    fine_tune = page.get_by_role("link", name="Fine-tune")
    expect(fine_tune).to_be_visible()
    fine_tune.click()
    expect(page.locator("#new-run-form[data-ready]")).to_be_attached()
    expect(page.get_by_label("Name", exact=True)).to_have_value(f"{name} (fine-tuned)")
    expect(page.locator("#cfg-init_from")).to_have_value(f"run:{source['id']}")
    expect(page.locator("#clone-note")).to_contain_text("Fine-tuning from the best weights of")
    screenshot(page, "new-run-fine-tune")

    page.get_by_role("button", name="Queue run").click()
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    tuned_id = int(page.url.rsplit("/", 1)[1])
    tuned = wait_for_status(app_url, tuned_id, "succeeded", "failed")
    assert tuned["status"] == "succeeded", tuned.get("failure_reason")
    assert tuned["config"]["init_from"].endswith(f"runs/{source['id']}/checkpoints/best.pt")
    logs = api(app_url, "GET", f"/api/v1/runs/{tuned_id}/logs")["lines"]
    assert any("init_from" in line and "loaded" in line for line in logs)
