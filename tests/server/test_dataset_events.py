"""A dataset's colour change is announced as a `dataset` event in its own transaction, and the
events stream refuses kinds it does not know, naming the ones it does."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from server.events import EVENT_KINDS, fetch_events
from tests.server.helpers import ApiClient, create_external


def _dataset_events(session: Session) -> list[dict[str, object]]:
    return [
        {**row.payload, "run_id": row.run_id} for row in fetch_events(session, 0, kinds=["dataset"])
    ]


def test_changed_colours_record_one_dataset_event(
    client: ApiClient, shapes_dataset: Path, db_session: Session
) -> None:
    dataset = client.post("/api/v1/datasets", json={"name": "shapes", "path": "shapes"}).json()
    assert _dataset_events(db_session) == [], "registering announces no colour change"

    colours = ["#000000", "#7b2ff7"]
    assert (
        client.patch("/api/v1/datasets/shapes", json={"class_colors": colours}).status_code == 200
    )
    assert _dataset_events(db_session) == [
        {
            "action": "colors",
            "dataset_id": dataset["id"],
            "name": "shapes",
            "class_colors": colours,
            "run_id": None,
        }
    ]
    # The same colours again, and a refused change, announce nothing.
    assert (
        client.patch("/api/v1/datasets/shapes", json={"class_colors": colours}).status_code == 200
    )
    refused = client.patch("/api/v1/datasets/shapes", json={"class_colors": ["#000000"]})
    assert refused.status_code == 422
    assert client.patch("/api/v1/datasets/shapes", json={}).status_code == 200
    assert len(_dataset_events(db_session)) == 1


def test_unknown_event_kinds_are_refused_with_the_allowed_ones(client: ApiClient) -> None:
    response = client.get("/api/v1/events?kind=dataset&kind=colour")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert "'colour'" in error["message"]
    for kind in EVENT_KINDS:
        assert f"'{kind}'" in error["message"]
    assert [item["field"] for item in error["details"]] == ["query.kind.1"]
    run = create_external(client)
    response = client.get(f"/api/v1/runs/{run['id']}/events?kind=metric")
    assert response.status_code == 422 and "'metrics'" in response.json()["error"]["message"]
