"""The new-run form's sweep mode: a sweep switch per field (values or a range), the live count
of a grid's runs, the API's problems next to the field they name, a sweep started from the form
opening its page, and a run page's "Sweep around this run"."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.e2e.app_api import api, unique, wait_for_status
from tests.e2e.conftest import screenshot
from tests.e2e.dashboard_helpers import create_run, watched_page


def _open_sweep_form(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#new-run-form[data-ready]")).to_be_attached()
    expect(page.locator("#sweep-settings")).to_be_visible()


def _fill_tiny(page: Page) -> None:
    page.get_by_role("radio", name=re.compile(r"^demo\b")).check()
    for name, value in {
        "epochs": "1",
        "base_channels": "8",
        "depth": "2",
        "batch_size": "8",
    }.items():
        page.locator(f"#cfg-{name}").fill(value)
    page.get_by_text("Advanced", exact=True).click()
    page.locator("#cfg-num_workers").fill("0")
    page.locator("#cfg-augment").select_option("none")


def test_a_grid_from_the_form_counts_its_runs_and_opens_its_page(page: Page, app_url: str) -> None:
    _open_sweep_form(page, f"{app_url}/runs/new?sweep=1")
    count = page.locator("#grid-count")
    expect(count).to_contain_text("Switch “sweep” on")
    _fill_tiny(page)
    name = unique("form-grid")
    page.locator("#run-name").fill(name)

    page.locator("#sweep-loss").check()
    # A select's values are ticked among its choices; the run's own value starts ticked.
    choices = page.get_by_role("group", name="loss values to try")
    expect(choices).to_be_visible()
    expect(page.locator("#sweep-loss-values")).to_be_hidden()
    ticked = page.locator("#sweep-loss-choice-ce\\+dice")
    expect(ticked).to_be_checked()
    ticked.uncheck()
    choices.get_by_label("ce", exact=True).check()
    choices.get_by_label("dice", exact=True).check()
    expect(count).to_have_text("The grid makes 2 runs: every combination of loss.")
    # An int field takes a typed list.
    page.locator("#sweep-batch_size").check()
    page.locator("#sweep-batch_size-values").fill("4, 8, 16")
    expect(count).to_have_text("The grid makes 6 runs: every combination of batch_size, loss.")
    page.locator("#sweep-batch_size").uncheck()
    page.locator("#sweep-learning_rate").check()
    page.locator("#sweep-learning_rate-mode").select_option("range")
    page.locator("#sweep-learning_rate-min").fill("0.001")
    page.locator("#sweep-learning_rate-max").fill("0.01")
    page.locator("#sweep-learning_rate-log").check()
    expect(count).to_contain_text("give learning_rate steps, or search with random or bayes")
    page.locator("#sweep-learning_rate-steps").fill("2")
    expect(count).to_have_text("The grid makes 4 runs: every combination of learning_rate, loss.")
    expect(count).to_have_attribute("data-count", "4")
    page.locator("#sweep-learning_rate").uncheck()
    expect(count).to_have_attribute("data-count", "2")
    expect(page.locator("#cfg-learning_rate")).to_be_visible()
    page.locator("#sweep-parallel").fill("2")
    screenshot(page, "sweep-form-grid")

    page.get_by_role("button", name="Start sweep").click()
    expect(page).to_have_url(re.compile(r"/sweeps/\d+$"))
    sweep_id = int(page.url.rsplit("/", 1)[1])
    sweep = api(app_url, "GET", f"/api/v1/sweeps/{sweep_id}")
    assert sweep["name"] == name
    assert sweep["method"] == "grid" and sweep["max_runs"] == 2
    assert sweep["spec"]["parameters"] == {"loss": {"values": ["ce", "dice"]}}
    assert "loss" not in sweep["spec"]["config"]
    assert sweep["spec"]["config"]["epochs"] == 1
    expect(page.locator("#sweep-page[data-ready]")).to_be_attached()
    expect(page.locator("#trials-table tbody tr")).to_have_count(2, timeout=60_000)
    api(app_url, "POST", f"/api/v1/sweeps/{sweep_id}/cancel")


def test_the_apis_problem_shows_next_to_the_swept_field(browser: Browser, app_url: str) -> None:
    with watched_page(browser, api_errors=[422]) as page:
        _open_sweep_form(page, f"{app_url}/runs/new?sweep=1")
        _fill_tiny(page)
        # The form checks what it can itself...
        page.locator("#sweep-batch_size").check()
        page.locator("#sweep-batch_size-values").fill("4, 4")
        page.get_by_role("button", name="Start sweep").click()
        error = page.locator('[data-field="batch_size"] .field-error')
        expect(error).to_have_text("each value once: remove the repeated one")
        expect(page.locator("#sweep-batch_size-values")).to_be_focused()
        # ... and the server the rest: a batch size of 0 is no valid config.
        page.locator("#sweep-batch_size-values").fill("0, 4")
        page.get_by_role("button", name="Start sweep").click()
        expect(error).to_contain_text("greater than or equal to 1")
        expect(page.locator("#form-errors")).to_contain_text("The sweep was not started")
        screenshot(page, "sweep-form-error")


def test_sweep_around_a_run_prefills_its_config(page: Page, app_url: str) -> None:
    run = create_run(app_url, unique("around"), epochs=1, learning_rate=0.002)
    wait_for_status(app_url, run["id"], "succeeded", "failed")
    page.goto(f"{app_url}/runs/{run['id']}")
    page.get_by_role("link", name="Sweep around this run").click()
    expect(page).to_have_url(re.compile(rf"/runs/new\?clone={run['id']}&sweep=1$"))
    expect(page.locator("#new-run-form[data-ready]")).to_be_attached()
    expect(page.locator("#sweep-mode")).to_be_checked()
    expect(page.locator("#clone-note")).to_contain_text(f"Sweeping around run #{run['id']}")
    expect(page.locator("#sweep-learning_rate")).to_be_checked()
    expect(page.locator("#sweep-learning_rate-min")).to_have_value("0.0002")
    expect(page.locator("#sweep-learning_rate-max")).to_have_value("0.02")
    expect(page.locator("#sweep-learning_rate-log")).to_be_checked()
    # Its batch size and weight decay are searched around its values too.
    expect(page.locator("#sweep-batch_size")).to_be_checked()
    expect(page.locator("#sweep-batch_size-values")).to_have_value("4, 8, 16")
    expect(page.locator("#sweep-weight_decay")).to_be_checked()
    expect(page.locator("#clone-note")).to_contain_text("learning_rate, batch_size, weight_decay")
    expect(page.locator("#sweep-method")).to_have_value("bayes")
    expect(page.locator("#cfg-epochs")).to_have_value("1")
    expect(page.get_by_role("button", name="Start sweep")).to_be_visible()
    screenshot(page, "sweep-around-run")
    page.locator("#sweep-mode").uncheck()
    expect(page.get_by_role("button", name="Queue run")).to_be_visible()
    expect(page.locator("#cfg-learning_rate")).to_have_value("0.002")


def test_the_sweep_settings_go_into_the_spec(browser: Browser, app_url: str) -> None:
    """Seed, metric target and early termination (with its type's options) are part of the
    form, and the spec the sweep starts from carries them."""
    with watched_page(browser, api_errors=[422]) as page:
        _settings_into_the_spec(page, app_url)


def _settings_into_the_spec(page: Page, app_url: str) -> None:
    _open_sweep_form(page, f"{app_url}/runs/new?sweep=1")
    _fill_tiny(page)
    name = unique("form-settings")
    page.locator("#run-name").fill(name)
    expect(page.locator('label[for="run-name"]')).to_have_text("Sweep name")
    page.locator("#sweep-learning_rate").check()
    page.locator("#sweep-learning_rate-mode").select_option("range")
    page.locator("#sweep-learning_rate-min").fill("0.0001")
    page.locator("#sweep-learning_rate-max").fill("0.01")
    page.locator("#sweep-learning_rate-log").check()
    page.locator("#sweep-method").select_option("random")
    page.locator("#sweep-target").fill("0.99")
    page.locator("#sweep-max-runs").fill("3")
    page.locator("#sweep-parallel").fill("1")
    page.locator("#sweep-setting-seed").fill("7")
    expect(page.locator("#sweep-et-min-iter")).to_be_hidden()
    page.locator("#sweep-early-terminate").select_option("median")
    expect(page.locator("#sweep-et-n-startup-trials")).to_be_visible()
    expect(page.locator("#sweep-et-eta")).to_be_hidden()
    page.locator("#sweep-early-terminate").select_option("hyperband")
    expect(page.locator("#sweep-et-eta")).to_be_visible()
    expect(page.locator("#sweep-et-n-startup-trials")).to_be_hidden()
    page.locator("#sweep-et-min-iter").fill("0")
    page.get_by_role("button", name="Start sweep").click()
    error = page.locator('[data-field="et_min_iter"] .field-error')
    expect(error).to_contain_text("a whole number from 1")
    page.locator("#sweep-et-min-iter").fill("1")
    page.locator("#sweep-et-eta").fill("2")
    screenshot(page, "sweep-form-settings")
    page.get_by_role("button", name="Start sweep").click()
    expect(page).to_have_url(re.compile(r"/sweeps/\d+$"))
    sweep_id = int(page.url.rsplit("/", 1)[1])
    sweep = api(app_url, "GET", f"/api/v1/sweeps/{sweep_id}")
    api(app_url, "POST", f"/api/v1/sweeps/{sweep_id}/cancel")
    spec = sweep["spec"]
    assert sweep["name"] == name and sweep["seed"] == 7
    assert spec["metric"] == {"name": "val/iou", "goal": "maximize", "target": 0.99}
    assert spec["early_terminate"] == {"type": "hyperband", "min_iter": 1, "eta": 2}
    assert (spec["method"], spec["max_runs"], spec["parallel"]) == ("random", 3, 1)
    assert spec["parameters"] == {
        "learning_rate": {"distribution": "log_uniform_values", "min": 0.0001, "max": 0.01}
    }
