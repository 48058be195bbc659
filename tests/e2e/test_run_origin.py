"""A run trained elsewhere on its run page and in the runs list: where it ran (host, user,
command, versions, git), its lineage both ways, and the files it logged, downloadable."""

from __future__ import annotations

import hashlib
import urllib.request

from playwright.sync_api import Page, expect

from tests.e2e.app_api import api, auth_headers, unique
from tests.e2e.conftest import screenshot
from tests.e2e.run_page_helpers import external

ENVIRONMENT = {
    "origin": "cli",
    "host": "gpu-node-7",
    "user": "ada",
    "command": "segtrack train cells.yaml --server http://tracker:8000 --tag <b>bold</b>",
    "python": "3.11.7",
    "torch": "2.13.0",
    "cuda": "13.0",
    "gpus": ["NVIDIA H200", "NVIDIA H200"],
    "git_commit": "0123456789abcdef0123456789abcdef01234567",
    "git_dirty": True,
}


def _upload(app_url: str, run_id: int, name: str, content: bytes) -> None:
    digest = hashlib.sha256(content).hexdigest()
    body = {"kind": "file", "name": name, "size_bytes": len(content), "sha256": digest}
    upload = api(app_url, "POST", f"/api/v1/runs/{run_id}/uploads", body)
    request = urllib.request.Request(
        f"{app_url}/api/v1/runs/{run_id}/uploads/{upload['id']}",
        data=content,
        method="PATCH",
        headers={
            **auth_headers(app_url),
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def test_a_run_trained_elsewhere_shows_where_it_ran_its_lineage_and_files(
    page: Page, app_url: str
) -> None:
    config = {"dataset": "/scratch/ada/cells", "epochs": 4, "model": "unet"}
    source = external(
        app_url, unique("on-the-cluster"), config=config, environment=ENVIRONMENT,
        heartbeat_timeout_s=60,
    )  # fmt: skip
    child = external(app_url, unique("resumed"), resumed_from=source["id"])
    _upload(app_url, source["id"], "confusion.csv", b"truth,prediction\n1,1\n")

    page.goto(f"{app_url}/runs/{source['id']}")
    expect(page.locator("#run-page[data-ready]")).to_be_attached()
    expect(page.locator("#run-kind")).to_have_text("trained by segtrack train")
    panel = page.locator("#provenance-panel")
    expect(panel).to_be_visible()
    expect(panel.locator("[data-fact='Host'] dd")).to_have_text("gpu-node-7")
    expect(panel.locator("[data-fact='Command'] dd")).to_have_text(str(ENVIRONMENT["command"]))
    expect(panel.locator("[data-fact='Git commit'] dd")).to_have_text(
        "0123456789ab (with uncommitted changes)"
    )
    expect(panel.locator("[data-fact='2 GPUs'] dd")).to_have_text("NVIDIA H200, NVIDIA H200")
    expect(panel.locator(f"[data-run-link='{child['id']}']")).to_be_visible()
    expect(panel.locator("b")).to_have_count(0)  # the command is text, never markup
    files = page.locator("#files-table tbody tr")
    expect(files).to_have_count(1)
    link = files.first.locator("a")
    expect(link).to_have_text("confusion.csv")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "confusion.csv"
    expect(page.locator("#clone-run")).to_be_visible()  # it recorded its config
    screenshot(page, "run-trained-elsewhere")

    page.goto(f"{app_url}/runs/{child['id']}")
    expect(page.locator("#run-page[data-ready]")).to_be_attached()
    expect(page.locator(f"#provenance [data-run-link='{source['id']}']")).to_be_visible()
    expect(page.locator("#files-panel")).to_be_hidden()

    page.goto(f"{app_url}/?q={source['name']}")
    row = page.locator(f"tr:has(a[href='/runs/{source['id']}'])")
    expect(row).to_contain_text("segtrack train on gpu-node-7")
