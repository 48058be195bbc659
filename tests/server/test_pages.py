"""Page routes: browsers get HTML pages, including for what does not exist; the API stays JSON."""

from __future__ import annotations

from tests.server.helpers import ApiClient

HTML = {"accept": "text/html,application/xhtml+xml"}


def test_every_page_renders(client: ApiClient) -> None:
    for path in ("/", "/runs/new", "/compare?ids=1,2", "/datasets", "/workers"):
        response = client.get(path, headers=HTML)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        assert "<title>" in response.text


def test_missing_pages_and_runs_are_html_404s_for_browsers(client: ApiClient) -> None:
    for path, fragment in (
        ("/nowhere", "there is no page at /nowhere"),
        ("/runs/abc", "there is no page at /runs/abc"),
        ("/runs/424242", "run 424242 does not exist"),
    ):
        response = client.get(path, headers=HTML)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
        assert fragment in response.text


def test_api_clients_still_get_json_404s(client: ApiClient) -> None:
    assert client.get("/api/v1/runs/424242", headers=HTML).json()["error"]["code"] == "not_found"
    missing = client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"].startswith("no such endpoint")
