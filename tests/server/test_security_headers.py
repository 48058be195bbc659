"""Every answer carries the headers that hold a browser to the pages' own scripts: a
Content-Security-Policy without inline scripts, no framing, no sniffing, no referrer to other
sites; the API docs page itself has no inline script."""

from __future__ import annotations

import re

import pytest

from server.security_headers import SECURITY_HEADERS
from tests.server.helpers import ApiClient


@pytest.mark.parametrize(
    "path",
    ["/", "/runs/new", "/docs", "/api/v1/runs", "/static/js/api_docs.js", "/api/v1/runs/999999"],
)
def test_every_answer_carries_the_security_headers(client: ApiClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (200, 404), response.text
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, name
    directives = dict(
        directive.split(" ", 1)
        for directive in response.headers["Content-Security-Policy"].split("; ")
    )
    assert directives["script-src"] == "'self'"  # no inline or remote script
    assert directives["frame-ancestors"] == "'none'"


def test_refusals_before_routing_carry_them_too(anonymous: ApiClient) -> None:
    refused = anonymous.get("/api/v1/runs")
    assert refused.status_code == 401
    assert refused.headers["X-Frame-Options"] == "DENY"


def test_no_page_has_an_inline_script(client: ApiClient) -> None:
    for path in ("/", "/runs/new", "/compare", "/datasets", "/workers", "/account", "/docs"):
        html = client.get(path).text
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, (path, tag)
