"""Browser tests: the real app (`segtrack up`: API + a real Celery worker, SQLite, filesystem
broker) in a subprocess, driven with Playwright in Debian's Chromium.

Every test saves screenshots under `.screenshots/` (or $SEGTRACK_SCREENSHOTS) for a person to
look at.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.app_api import auth_headers, authorize, sign_in

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(
    os.environ.get("SEGTRACK_SCREENSHOTS", Path(__file__).parents[2] / ".screenshots")
)
READY_TIMEOUT_S = 90.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`segtrack up` on a free port with a fresh data folder; stopped after the session."""
    if not CHROMIUM.exists():
        pytest.fail("browser tests need Debian's Chromium: apt-get install -y chromium")
    data_dir = tmp_path_factory.mktemp("segtrack-up")
    port = _free_port()
    log = (data_dir / "up.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "segtrack", "up", "--data-dir", str(data_dir), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            "NO_ALBUMENTATIONS_UPDATE": "1",
            "SEGTRACK_HEARTBEAT_TIMEOUT_S": "30",
            # The tests' own default is off (tests/conftest.py); sweeps in the browser need it.
            "SEGTRACK_SWEEP_INTERVAL_S": "1",
            "SEGTRACK_HOME": str(data_dir / "home"),
        },
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        token_file = data_dir / "token"
        if token_file.exists():
            authorize(url, token_file.read_text().strip())
        request = urllib.request.Request(f"{url}/api/v1/workers", headers=auth_headers(url))
        try:
            with urllib.request.urlopen(request, timeout=1) as response:
                if b'"workers":[{' in response.read():
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"segtrack up did not start; see {data_dir / 'up.log'}")
        time.sleep(0.3)
    yield url
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Per module: Playwright's sync API keeps an event loop on the main thread while it is
    # open, which would break later tests that run their own asyncio loop.
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


# The pages' scripts are ES modules and share nothing through `window`; the tests read a page's
# charts, its run-page parts and run_info's renderer under these names, bound once the page's
# modules have run (importing a module the page loaded gives the page's own instance).
MODULE_HANDLES_JS = """
addEventListener("DOMContentLoaded", () => {
    const loads = (name) =>
        document.querySelector(`script[type="module"][src="/static/js/${name}"]`);
    if (loads("run.js") || loads("compare.js")) {
        import("/static/js/charts.js").then((charts) => { window.segtrackCharts = charts; });
    }
    if (loads("run.js")) {
        import("/static/js/run.js").then((run) => { window.segtrackRunPage = run.runPage; });
        import("/static/js/run_info.js").then((info) => { window.segtrackRunInfo = info; });
    }
});
"""


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh 1440x900 page; console errors fail the test."""
    context = sign_in(browser.new_context(viewport={"width": 1440, "height": 900}))
    context.add_init_script(MODULE_HANDLES_JS)
    new_page = context.new_page()
    errors: list[str] = []
    new_page.on("pageerror", lambda error: errors.append(str(error)))
    new_page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    yield new_page
    context.close()
    assert not errors, f"the page logged errors: {errors}"


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as .screenshots/<name>.png and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
