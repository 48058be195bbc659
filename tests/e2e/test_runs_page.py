"""The runs page: live rows (a run submitted from the form goes queued -> running -> succeeded
without a reload), names shown as text, filters and sort in the URL, paging, and the compare,
cancel and delete actions on selected runs."""

from __future__ import annotations

import re
import urllib.error
from typing import Any

import pytest
from playwright.sync_api import Browser, Dialog, Page, Route, expect

from tests.e2e.app_api import api, unique, wait_for_status
from tests.e2e.conftest import screenshot
from tests.e2e.dashboard_helpers import (
    busy_worker,
    cancel_quietly,
    create_run,
    marker_survived,
    set_marker,
    watched_page,
)

XSS = "<img src=x onerror=alert(1)>"


def _row(page: Page, run_id: int) -> Any:
    return page.locator(f'#runs-body tr[data-run-id="{run_id}"]')


def _status(page: Page, run_id: int) -> Any:
    return _row(page, run_id).locator(".status")


def _fill_tiny_form(form: Page, name: str) -> None:
    expect(form.locator("#new-run-form[data-ready]")).to_be_attached()
    form.get_by_label("Name", exact=True).fill(name)
    form.get_by_label("Tags").fill("live, e2e")
    form.get_by_role("radio", name=re.compile(r"^demo\b")).check()
    for field, value in (
        ("epochs", "3"),
        ("batch_size", "8"),
        ("base_channels", "8"),
        ("depth", "2"),
    ):
        form.locator(f"#cfg-{field}").fill(value)
    form.locator("#cfg-augment").select_option("none")
    form.get_by_text("Advanced", exact=True).click()
    form.locator("#cfg-num_workers").fill("0")


def test_a_run_submitted_from_the_form_goes_live_on_the_runs_page(page: Page, app_url: str) -> None:
    name = unique("from-form")
    page.goto(app_url)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    set_marker(page)
    with busy_worker(app_url) as blocker:
        form = page.context.new_page()
        # The run page belongs to another part of the dashboard; this test stops at the link.
        form.route(re.compile(r"/runs/\d+$"), lambda route: route.fulfill(body="run page"))
        form.goto(f"{app_url}/runs/new")
        _fill_tiny_form(form, name)
        form.get_by_role("button", name="Queue run").click()
        form.wait_for_url(re.compile(r"/runs/\d+$"))
        run_id = int(form.url.rsplit("/", 1)[1])
        form.close()

        expect(_row(page, run_id)).to_be_visible()
        expect(_status(page, run_id)).to_have_text("queued")
        expect(page.locator("#runs-body tr").first).to_have_attribute("data-run-id", str(run_id))
        expect(_row(page, run_id).locator(".run-link")).to_have_text(name)
        expect(_row(page, run_id).locator(".run-link")).to_have_attribute("href", f"/runs/{run_id}")
        expect(_status(page, blocker["id"])).to_have_text("running")
        screenshot(page, "runs-live-queued")
    # The blocker is cancelled: the worker takes the new run.
    expect(_status(page, blocker["id"])).to_have_text("cancelled")
    expect(_status(page, run_id)).to_have_text(re.compile("running|succeeded"))
    expect(_status(page, run_id)).to_have_text("succeeded", timeout=90_000)
    expect(_row(page, run_id).locator('[data-col="epochs"]')).to_contain_text("3 / 3")
    expect(_row(page, run_id).locator('[data-col="best"]')).to_have_text(re.compile(r"^\d\.\d{4}$"))
    assert marker_survived(page), "the page reloaded or navigated"
    stored = api(app_url, "GET", f"/api/v1/runs/{run_id}")
    assert stored["tags"] == ["e2e", "live"]
    assert stored["config"]["epochs"] == 3 and stored["config"]["augment"] == "none"
    screenshot(page, "runs-live")


def test_names_and_tags_are_text_not_markup(page: Page, app_url: str) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    before = create_run(app_url, XSS, tags=[XSS, "xss"], external=True)
    page.goto(f"{app_url}/?tag=xss")
    expect(_row(page, before["id"]).locator(".run-link")).to_have_text(XSS)
    set_marker(page)
    after = create_run(app_url, XSS, tags=[XSS, "xss"], external=True)  # arrives live
    expect(_row(page, after["id"]).locator(".run-link")).to_have_text(XSS)
    expect(_row(page, after["id"]).locator(".tag").first).to_have_text(XSS)
    assert page.locator("#runs-body img").count() == 0
    assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert dialogs == []
    assert marker_survived(page)
    screenshot(page, "runs-xss")
    for run in (before, after):
        api(app_url, "PATCH", f"/api/v1/runs/{run['id']}", {"status": "succeeded"})


def _external_runs(app_url: str, tag: str, ious: list[float]) -> list[dict[str, Any]]:
    runs = []
    for index, iou in enumerate(ious):
        run = create_run(app_url, f"{tag}-{index}", tags=[tag], external=True)
        api(
            app_url,
            "POST",
            f"/api/v1/runs/{run['id']}/metrics",
            {"points": [{"key": "val/iou", "step": 1, "value": iou, "epoch": 1}]},
        )
        runs.append(run)
    return runs


def _shown_ids(page: Page) -> list[int]:
    ids = page.locator("#runs-body tr").evaluate_all("rows => rows.map(r => r.dataset.runId)")
    return [int(value) for value in ids]


def test_filters_and_sort_live_in_the_url(browser: Browser, app_url: str) -> None:
    tag = unique("filters")
    low, mid, high = _external_runs(app_url, tag, [0.3, 0.6, 0.9])
    api(app_url, "PATCH", f"/api/v1/runs/{mid['id']}", {"status": "succeeded"})
    with watched_page(browser, api_errors=[422]) as page:
        page.goto(f"{app_url}/?tag={tag}")
        expect(page.locator("#runs-body tr")).to_have_count(3)
        set_marker(page)

        metric = page.get_by_label("Metric condition")
        metric.fill("val/iou>0.5")
        metric.press("Enter")
        expect(page.locator("#runs-body tr")).to_have_count(2)
        assert "metric=val%2Fiou%3E0.5" in page.url
        page.get_by_role("checkbox", name="succeeded").check()
        expect(page.locator("#runs-body tr")).to_have_count(1)
        expect(_row(page, mid["id"])).to_be_visible()
        assert "status=succeeded" in page.url
        csv = page.get_by_role("link", name="Export CSV").get_attribute("href") or ""
        assert csv.startswith("/api/v1/runs.csv?")
        assert all(part in csv for part in (f"tag={tag}", "status=succeeded", "metric="))

        metric.fill("val/iou>>0.5")
        metric.press("Enter")
        error = page.locator("#filter-metric-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("invalid metric condition")
        expect(metric).to_have_attribute("aria-invalid", "true")
        screenshot(page, "runs-metric-error")

        metric.fill("")
        metric.press("Enter")
        page.get_by_role("checkbox", name="succeeded").uncheck()
        expect(page.locator("#runs-body tr")).to_have_count(3)
        header = page.locator('th[data-sort="best_val_iou"]')
        header.get_by_role("button").click()
        expect(header).to_have_attribute("aria-sort", "descending")
        expect(page.locator("#runs-body tr").first).to_have_attribute(
            "data-run-id", str(high["id"])
        )
        assert _shown_ids(page) == [high["id"], mid["id"], low["id"]]
        header.get_by_role("button").click()
        expect(header).to_have_attribute("aria-sort", "ascending")
        expect(page.locator("#runs-body tr").first).to_have_attribute("data-run-id", str(low["id"]))
        assert "sort=best_val_iou" in page.url
        assert marker_survived(page), "filtering and sorting must not reload the page"
        screenshot(page, "runs-filtered-sorted")

        bookmarked = page.url
        page.goto(app_url)
        page.goto(bookmarked)
        expect(page.locator('th[data-sort="best_val_iou"]')).to_have_attribute(
            "aria-sort", "ascending"
        )
        expect(page.get_by_label("Tag", exact=True)).to_have_value(tag)
        expect(page.locator("#runs-body tr")).to_have_count(3)
        page.go_back()
        page.go_forward()
        expect(page.locator("#runs-body tr")).to_have_count(3)
    for run in (low, high):
        api(app_url, "PATCH", f"/api/v1/runs/{run['id']}", {"status": "succeeded"})


def test_load_more_follows_the_cursor(page: Page, app_url: str) -> None:
    tag = unique("paging")
    made = [create_run(app_url, f"{tag}-{i}", tags=[tag], external=True) for i in range(55)]
    page.goto(f"{app_url}/?tag={tag}")
    expect(page.locator("#runs-body tr")).to_have_count(50)
    expect(page.locator("#runs-count")).to_have_text("50+ runs shown")
    page.get_by_role("button", name="Load more").click()
    expect(page.locator("#runs-body tr")).to_have_count(55)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    assert sorted(_shown_ids(page)) == sorted(run["id"] for run in made)
    for run in made:
        api(app_url, "PATCH", f"/api/v1/runs/{run['id']}", {"status": "cancelled"})


def test_compare_cancel_and_delete_selected_runs(page: Page, app_url: str) -> None:
    tag = unique("select")
    first, second, third = (
        create_run(app_url, f"{tag}-{i}", tags=[tag], external=True) for i in range(3)
    )
    page.goto(f"{app_url}/?tag={tag}")
    expect(page.locator("#runs-body tr")).to_have_count(3)
    set_marker(page)
    compare = page.get_by_role("button", name="Compare")
    expect(compare).to_be_disabled()
    page.get_by_label(f"Select run {first['id']}").check()
    expect(compare).to_be_disabled()
    page.get_by_label(f"Select run {second['id']}").check()
    expect(compare).to_be_enabled()
    expect(page.locator("#selection-count")).to_have_text("2 runs selected")

    page.get_by_role("button", name="Cancel", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Cancel 2 runs?")
    screenshot(page, "runs-cancel-dialog")
    dialog.get_by_role("button", name="Cancel runs").click()
    expect(_status(page, first["id"])).to_have_text("cancelled")
    expect(_status(page, second["id"])).to_have_text("cancelled")
    expect(_status(page, third["id"])).to_have_text("running")

    page.get_by_label(f"Select run {third['id']}").check()
    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete 3 runs?")
    expect(dialog).to_contain_text("1 run still running will be stopped")
    dialog.get_by_role("button", name="Cancel").click()  # changed my mind: nothing happens
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.locator("#runs-body tr")).to_have_count(3)

    page.get_by_label(f"Select run {first['id']}").uncheck()
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator("#runs-body tr")).to_have_count(1)
    expect(page.locator("#runs-message")).to_have_text("Deleted 2 runs.")
    for run in (second, third):
        with pytest.raises(urllib.error.HTTPError) as gone:
            api(app_url, "GET", f"/api/v1/runs/{run['id']}")
        assert gone.value.code == 404
    assert marker_survived(page)
    screenshot(page, "runs-after-delete")

    extra = create_run(app_url, f"{tag}-extra", tags=[tag], external=True)
    expect(_row(page, extra["id"])).to_be_visible()
    opened: list[str] = []

    def stub(route: Route) -> None:
        opened.append(route.request.url)
        route.fulfill(body="compare page")

    # The compare page belongs to another part of the dashboard; this test stops at the link.
    page.route(re.compile(r"/compare\?"), stub)
    page.get_by_label(f"Select run {first['id']}").check()
    page.get_by_label(f"Select run {extra['id']}").check()
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url(re.compile(r"/compare\?ids="))
    ids = re.search(r"ids=([\d,]+)", opened[0])
    assert ids is not None and sorted(map(int, ids[1].split(","))) == sorted(
        [first["id"], extra["id"]]
    )
    cancel_quietly(app_url, extra["id"])
    wait_for_status(app_url, extra["id"], "cancelled")


def _configured_runs(app_url: str, tag: str) -> list[dict[str, Any]]:
    """Four external runs carrying a config that differs in learning rate and batch size, a
    key:value tag `lr=...` and a val/iou point each."""
    runs = []
    for index, (rate, batch, iou) in enumerate(
        [(1e-4, 8, 0.4), (5e-4, 16, 0.7), (1e-3, 8, 0.6), (3e-3, 16, 0.5)]
    ):
        config = {"dataset": "demo", "model": "unet", "learning_rate": rate, "batch_size": batch}
        run = api(
            app_url,
            "POST",
            "/api/v1/runs",
            {
                "name": f"{tag}-{index}",
                "external": True,
                "config": config,
                "tags": [tag, f"lr={rate:g}"],
            },
        )
        api(
            app_url,
            "POST",
            f"/api/v1/runs/{run['id']}/metrics",
            {"points": [{"key": "val/iou", "step": 1, "value": iou, "epoch": 1}]},
        )
        runs.append(run)
    return runs


def _column_cells(page: Page, column: str) -> list[str]:
    cells: list[str] = page.locator(f'#runs-body td[data-column="{column}"]').all_inner_texts()
    return cells


def test_config_columns_sort_group_and_the_filter_language(browser: Browser, app_url: str) -> None:
    tag = unique("columns")
    runs = _configured_runs(app_url, tag)
    ids = [run["id"] for run in runs]
    with watched_page(browser, api_errors=[422]) as page:
        page.goto(f"{app_url}/?tag={tag}")
        expect(page.locator("#runs-body tr")).to_have_count(4)
        set_marker(page)
        adder = page.get_by_label("Add a column")
        for column in ("config.learning_rate", "config.batch_size", "metrics.val/iou.best"):
            adder.fill(column)
            adder.press("Enter")
        headers = page.locator("#runs-table th.chosen-col")
        expect(headers).to_have_count(3)
        expect(page.locator("#chosen-columns li")).to_have_count(3)
        expect(page.locator('#runs-body td[data-column="config.batch_size"]')).to_have_count(4)

        rate = page.locator('th[data-column="config.learning_rate"]')
        rate.locator(".sort-button").click()
        expect(rate).to_have_attribute("aria-sort", "ascending")
        expect(page.locator("#runs-body tr").first).to_have_attribute("data-run-id", str(ids[0]))
        assert _shown_ids(page) == ids
        assert _column_cells(page, "config.learning_rate") == ["1e-4", "5e-4", "0.001", "0.003"]
        rate.locator(".sort-button").click()
        expect(rate).to_have_attribute("aria-sort", "descending")
        expect(page.locator("#runs-body tr").first).to_have_attribute("data-run-id", str(ids[3]))
        assert _shown_ids(page) == ids[::-1]

        best = page.locator('th[data-column="metrics.val/iou.best"]')
        best.locator(".sort-button").click()
        expect(best).to_have_attribute("aria-sort", "descending")
        expect(page.locator("#runs-body tr").first).to_have_attribute("data-run-id", str(ids[1]))
        assert _column_cells(page, "metrics.val/iou.best") == ["0.7", "0.6", "0.5", "0.4"]
        screenshot(page, "runs-config-columns")

        # Columns and sort are in the address: a reload (or a shared link) shows them again.
        assert "columns=config.learning_rate" in page.url
        page.reload()
        expect(page.locator("#runs-table th.chosen-col")).to_have_count(3)
        expect(page.locator('th[data-column="metrics.val/iou.best"]')).to_have_attribute(
            "aria-sort", "descending"
        )
        expect(page.locator("#runs-body tr").first).to_have_attribute("data-run-id", str(ids[1]))
        set_marker(page)

        expression = page.get_by_label("Filter", exact=True)
        expression.fill("config.learning_rate < 5e-4 or tag.lr = 3e-3")
        expression.press("Enter")
        expect(page.locator("#runs-body tr")).to_have_count(2)
        assert sorted(_shown_ids(page)) == [ids[0], ids[3]]

        expression.fill("config.learning_rate <= 1e-3")
        expression.press("Enter")
        expect(page.locator("#runs-body tr")).to_have_count(3)
        page.get_by_label("Group rows by").select_option("config.batch_size")
        groups = page.locator("#runs-body tr.group-row")
        expect(groups).to_have_text(
            ["config.batch_size = 8 · 2 runs", "config.batch_size = 16 · 1 run"]
        )
        expect(page.locator("#runs-body tr")).to_have_count(5)
        assert "group_by=config.batch_size" in page.url
        screenshot(page, "runs-grouped")

        expression.fill("config.no_such_key = 1 or config.learning_rate < 1")
        expression.press("Enter")
        error = page.locator("#filter-expr-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("no run has config.no_such_key")
        expect(error).to_contain_text("learning_rate")
        expect(expression).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#runs-empty")).to_contain_text("Fix the filter above")
        screenshot(page, "runs-filter-unknown-key")

        expression.fill("config.learning_rate <")
        expression.press("Enter")
        expect(error).to_contain_text("position")
        expression.fill("")
        expression.press("Enter")
        expect(error).to_be_hidden()
        expect(page.locator("#runs-body tr[data-run-id]")).to_have_count(4)
        assert marker_survived(page), "columns, sorting and filters must not reload the page"
    for run in runs:
        api(app_url, "PATCH", f"/api/v1/runs/{run['id']}", {"status": "succeeded"})
