"""A hostile page in the same signed-in Chromium: a page served from another port of this machine
(another origin, the same site) tries a plain form POST that would cancel a run and a `no-cors`
`text/plain` fetch that would inject a metric; a page reached through a rebinding name sends the
app a foreign `Host`; a page frames the run page to trick a click. All are refused, and the run
is untouched. The API docs work under the pages' Content-Security-Policy."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Response

from tests.e2e.app_api import api, sign_in, unique
from tests.e2e.conftest import CHROMIUM, CHROMIUM_FLAGS, screenshot

ATTACK_PAGE = """<!doctype html><html><body>
<h1>Totally harmless page</h1>
<iframe name="sink" title="sink"></iframe>
<form id="cancel" method="POST" action="{app}/api/v1/runs/{run_id}/cancel" target="sink"></form>
<script>
  document.getElementById("cancel").submit();
  fetch("{app}/api/v1/runs/{run_id}/metrics", {{
    method: "POST", mode: "no-cors", credentials: "include",
    headers: {{"Content-Type": "text/plain"}},
    body: JSON.stringify({{points: [{{key: "injected", step: 1, value: 1}}]}}),
  }}).finally(() => {{ document.title = "fetched"; }});
</script></body></html>"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def attacker(app_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    """A server on another port whose page attacks the app; `pages` maps path -> HTML."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "not here").encode()
            self.send_response(200 if self.path in pages else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", _free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", pages
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_a_page_on_another_origin_cannot_cancel_or_inject(
    browser: Browser, app_url: str, attacker: tuple[str, dict[str, str]]
) -> None:
    base, pages = attacker
    run = api(app_url, "POST", "/api/v1/runs", {"name": unique("target"), "external": True})
    pages["/"] = ATTACK_PAGE.format(app=app_url, run_id=run["id"])
    pages["/favicon.ico"] = ""
    answers: list[tuple[str, int]] = []

    def record(response: Response) -> None:
        if response.url.startswith(app_url):
            answers.append((urlsplit(response.url).path, response.status))

    # The signed-in browser visits the attacker's page (whose console fills with refusals: the
    # 403s, and the app's answer refused a place in the attacker's frame).
    context = sign_in(browser.new_context())
    page = context.new_page()
    page.on("response", record)
    page.goto(f"{base}/")
    page.wait_for_function("document.title === 'fetched'")
    page.wait_for_timeout(500)
    screenshot(page, "cross-site-attack")
    context.close()
    assert (f"/api/v1/runs/{run['id']}/cancel", 403) in answers
    after = api(app_url, "GET", f"/api/v1/runs/{run['id']}")
    assert after["status"] == "running"
    assert api(app_url, "GET", f"/api/v1/runs/{run['id']}/metrics")["series"] == {}


def test_a_rebinding_host_name_is_refused(app_url: str, browser: Browser) -> None:
    """`rebind.test` resolves to the app's address, as after DNS rebinding: the page's requests
    are same-origin for the browser but carry `Host: rebind.test`, which the app refuses."""
    port = urlsplit(app_url).port
    playwright_browser = browser.browser_type.launch(
        executable_path=str(CHROMIUM),
        args=[*CHROMIUM_FLAGS, "--host-resolver-rules=MAP rebind.test 127.0.0.1"],
    )
    try:
        context = sign_in(playwright_browser.new_context())
        rebound = context.new_page()
        response = rebound.goto(f"http://rebind.test:{port}/api/v1/runs")
        assert response is not None and response.status == 400
        assert "host_not_allowed" in rebound.content()
        status = rebound.evaluate(
            """async () => (await fetch('/api/v1/runs/1/cancel', {method: 'POST'})).status"""
        )
        assert status == 400
        context.close()
    finally:
        playwright_browser.close()


FRAMING_PAGE = """<!doctype html><html><body>
<iframe id="app" src="{app}/runs/{run_id}" width="800" height="600"></iframe>
</body></html>"""


def test_another_site_cannot_frame_the_app(
    browser: Browser, app_url: str, attacker: tuple[str, dict[str, str]]
) -> None:
    base, pages = attacker
    run = api(app_url, "POST", "/api/v1/runs", {"name": unique("framed"), "external": True})
    pages["/"] = FRAMING_PAGE.format(app=app_url, run_id=run["id"])
    pages["/favicon.ico"] = ""
    context = sign_in(browser.new_context())
    framing = context.new_page()
    refusals: list[str] = []
    framing.on("console", lambda message: refusals.append(message.text))
    framing.goto(f"{base}/")
    framing.wait_for_timeout(1000)
    screenshot(framing, "cross-site-framing")
    [frame] = [frame for frame in framing.frames if frame != framing.main_frame]
    assert frame.url.startswith("chrome-error://")  # Chromium refused to show the app framed
    assert any("frame-ancestors" in text or "X-Frame-Options" in text for text in refusals)
    context.close()


def test_the_api_docs_run_under_the_content_security_policy(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/docs")
    page.wait_for_selector(".opblock", timeout=15_000)  # the operations, drawn by Swagger UI
    assert page.locator(".opblock").count() > 20
    screenshot(page, "api-docs")
