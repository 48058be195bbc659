"""GET /api/v1/runs/{id}/validation: the epochs with stored validation detail, an empty list
before the first (a page asks it first, so the reads that 404 then are never sent)."""

from __future__ import annotations

from tests.server.helpers import ApiClient, create_external
from tests.server.validation_data import CLASSES, body


def test_epochs_listed_empty_before_the_first(client: ApiClient) -> None:
    run = create_external(client)
    run_id = run["id"]
    info = client.request("PUT", f"/api/v1/runs/{run_id}/info", json={"class_names": CLASSES})
    assert info.status_code == 200, info.text
    url = f"/api/v1/runs/{run_id}/validation"
    assert client.get(url).json() == {"epochs": [], "images": 0}
    for epoch in (2, 1, 5):
        stored = client.request("PUT", f"{url}/{epoch}", json=body(epoch))
        assert stored.status_code == 201, stored.text
    assert client.get(url).json() == {"epochs": [1, 2, 5], "images": 4}
    missing = client.get("/api/v1/runs/999999/validation")
    assert missing.status_code == 404
    assert "999999" in missing.json()["error"]["message"]
