"""Helpers of the runs, new-run, datasets and workers browser tests: API calls against the app
under test, tiny runs, a run that keeps the one worker busy, and a page that accepts the API
errors a test provokes on purpose (Chromium logs every 4xx response as a console error)."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests.e2e.app_api import TINY, api, sign_in, unique, wait_for_status
from tests.e2e.conftest import MODULE_HANDLES_JS

expect.set_options(timeout=30_000)

_FAILED_RESOURCE = re.compile(r"the server responded with a status of (\d{3})")


def create_run(
    app_url: str,
    name: str,
    *,
    tags: Sequence[str] = (),
    priority: int = 0,
    external: bool = False,
    **config: Any,
) -> dict[str, Any]:
    """A queued training run of TINY updated with `config`, or an external (running) run."""
    body: dict[str, Any] = {"name": name, "tags": list(tags), "priority": priority}
    if external:
        body["external"] = True
    else:
        body["config"] = {**TINY, **config}
    run: dict[str, Any] = api(app_url, "POST", "/api/v1/runs", body)
    return run


def cancel_quietly(app_url: str, run_id: int) -> None:
    """Cancel a run if it is still queued or running (a finished run answers 409: fine)."""
    try:
        api(app_url, "POST", f"/api/v1/runs/{run_id}/cancel")
    except urllib.error.HTTPError as error:
        if error.code not in (404, 409):
            raise


@contextmanager
def busy_worker(app_url: str) -> Iterator[dict[str, Any]]:
    """A long run holding the app's only worker (so later runs stay queued); cancelled after."""
    run = create_run(app_url, unique("blocker"), epochs=5000)
    try:
        yield wait_for_status(app_url, run["id"], "running")
    finally:
        cancel_quietly(app_url, run["id"])
        wait_for_status(app_url, run["id"], "cancelled", "succeeded", "failed")


def set_marker(page: Page) -> None:
    """Mark the page's window; `marker_survived` is true until the page reloads or navigates."""
    page.evaluate("window.__marker = 1")


def marker_survived(page: Page) -> bool:
    return bool(page.evaluate("window.__marker === 1"))


@contextmanager
def watched_page(browser: Browser, *, api_errors: Sequence[int] = ()) -> Iterator[Page]:
    """A 1440x900 page like the `page` fixture, whose console errors fail the test, except
    Chromium's "Failed to load resource" for API responses with a status in `api_errors`
    (the test provokes those: a 422 for a bad value, a 403 for a path outside the roots)."""
    context = sign_in(browser.new_context(viewport={"width": 1440, "height": 900}))
    context.add_init_script(MODULE_HANDLES_JS)
    page = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        status = _FAILED_RESOURCE.search(message.text)
        url = message.location.get("url", "")
        if status and int(status[1]) in api_errors and "/api/v1/" in url:
            return
        errors.append(f"{message.text} ({url})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"the page logged errors: {errors}"
