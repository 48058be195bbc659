"""Every epoch's confusion matrix and per-image counts: stored by PUT, read back as the matrix,
the images sorted and filtered by score, one image's trend and the matrix as CSV; replays
replace, bad input is a 422 naming the field, runs keep one validation set."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from server.app import create_app
from server.db import upgrade_database
from server.models import ValidationEpoch, ValidationSet
from server.settings import Settings
from tests.server.helpers import ApiClient, create_external, issue_token
from tests.server.validation_data import CLASSES, body

WORSE = {
    "good": (85, 5, 5, 5),  # got worse: cat IoU 1/3
    "bad": (90, 10, 0, 0),  # got better: 1
    "empty": (100, 0, 0, 0),
    "mid": (80, 10, 0, 10),  # the same
}


def tracked_run(client: ApiClient, classes: list[str] | None = None) -> int:
    run = create_external(client)
    info = {"class_names": classes or CLASSES}
    response = client.request("PUT", f"/api/v1/runs/{run['id']}/info", json=info)
    assert response.status_code == 200, response.text
    run_id: int = run["id"]
    return run_id


def put(client: ApiClient, run_id: int, epoch: int, payload: Any) -> Any:
    return client.request("PUT", f"/api/v1/runs/{run_id}/validation/{epoch}", json=payload)


def names(page: dict[str, Any]) -> list[str]:
    return [item["name"] for item in page["items"]]


def test_round_trip_and_replay_replaces(
    client: ApiClient, session_factory: sessionmaker[Session]
) -> None:
    run_id = tracked_run(client)
    first = put(client, run_id, 1, body())
    assert first.status_code == 201, first.text
    assert first.json() == {"epoch": 1, "images": 4, "classes": 2, "replaced": False}
    assert put(client, run_id, 2, body(2, WORSE)).status_code == 201

    confusion = client.get(f"/api/v1/runs/{run_id}/confusion?epoch=1").json()
    assert confusion == {
        "epoch": 1,
        "epochs": [1, 2],
        "class_names": CLASSES,
        "matrix": [[350, 5], [15, 25]],
    }
    assert client.get(f"/api/v1/runs/{run_id}/confusion").json()["epoch"] == 2

    replay = put(client, run_id, 1, body(1, WORSE))
    assert replay.status_code == 200 and replay.json()["replaced"] is True
    assert client.get(f"/api/v1/runs/{run_id}/confusion?epoch=1").json()["matrix"] == [
        [355, 5],
        [15, 25],
    ]
    with session_factory() as session:
        rows = session.scalar(
            select(func.count())
            .select_from(ValidationEpoch)
            .where(ValidationEpoch.run_id == run_id)
        )
        assert rows == 2

    exported = client.get(f"/api/v1/runs/{run_id}/confusion.csv?epoch=2")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(exported.text))) == [
        ["truth \\ prediction", "background", "cat"],
        ["background", "355", "5"],
        ["cat", "15", "25"],
    ]


def test_images_sorted_filtered_and_compared(client: ApiClient) -> None:
    run_id = tracked_run(client)
    put(client, run_id, 1, body())
    put(client, run_id, 2, body(2, WORSE))
    url = f"/api/v1/runs/{run_id}/images"

    worst_first = client.get(f"{url}?epoch=1").json()
    assert worst_first["epoch"] == 1 and worst_first["epochs"] == [1, 2]
    assert worst_first["total"] == 4
    assert names(worst_first) == ["bad", "mid", "good", "empty"]
    bad = worst_first["items"][0]
    assert bad["index"] == 1
    assert bad["iou"] == pytest.approx(1 / 3)
    assert bad["dice"] == pytest.approx(0.5)
    assert bad["pixels_wrong"] == 10 and bad["pixels"] == 95
    assert bad["classes_present"] == ["background", "cat"]
    assert bad["per_class"]["cat"] == {"iou": pytest.approx(1 / 3), "dice": pytest.approx(0.5)}
    assert bad["then"] is None
    empty = worst_first["items"][3]
    assert empty["iou"] == 1.0 and empty["classes_present"] == ["background"]
    assert list(empty["per_class"]) == ["background"]

    assert names(client.get(f"{url}?epoch=1&order=desc").json()) == ["good", "empty", "mid", "bad"]
    assert names(client.get(f"{url}?epoch=1&sort=name").json()) == ["bad", "empty", "good", "mid"]
    by_wrong = client.get(f"{url}?epoch=1&sort=pixels_wrong&order=desc").json()
    assert names(by_wrong) == ["bad", "mid", "good", "empty"]  # ties: by index
    with_cat = client.get(f"{url}?epoch=1&class=cat").json()
    assert with_cat["total"] == 3 and "empty" not in names(with_cat)
    page = client.get(f"{url}?epoch=1&limit=2&offset=1").json()
    assert page["total"] == 4 and names(page) == ["mid", "good"]

    worse = client.get(f"{url}?worse_than=1").json()
    assert worse["epoch"] == 2 and names(worse) == ["good"]
    assert worse["items"][0]["then"] == {"epoch": 1, "iou": 1.0, "dice": 1.0}
    assert worse["items"][0]["iou"] == pytest.approx(1 / 3)

    trend = client.get(f"/api/v1/runs/{run_id}/images/0/trend").json()
    assert trend["index"] == 0 and trend["name"] == "good"
    assert [(point["epoch"], point["pixels_wrong"]) for point in trend["points"]] == [
        (1, 0),
        (2, 10),
    ]
    assert trend["points"][1]["iou"] == pytest.approx(1 / 3)


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def test_bad_detail_is_refused_naming_the_field(client: ApiClient) -> None:
    run_id = tracked_run(client)

    def fields(payload: Any) -> list[str]:
        return [item["field"] for item in _error(put(client, run_id, 1, payload), 422)["details"]]

    wrong = body()
    wrong["confusion"] = [[1, 2], [3, 4], [5, 6]]
    assert fields(wrong) == ["confusion"]
    wrong = body()
    wrong["images"]["true_positive"] = [[1, 2]] * 3
    assert fields(wrong) == ["images.true_positive"]
    wrong = body()
    wrong["images"]["false_negative"][2] = [1]
    assert fields(wrong) == ["images.false_negative"]
    wrong = body()
    wrong["images"]["names"][3] = "good"
    assert fields(wrong) == ["images.names.3"]
    wrong = body()
    wrong["images"]["false_positive"][0][1] = -1
    assert fields(wrong) == ["images.false_positive.0.1"]
    wrong = body()
    wrong["images"]["true_positive"][0][0] = 2**70
    assert fields(wrong) == ["images.true_positive"]
    wrong = body()
    wrong["class_names"] = ["background", "dog"]
    error = _error(put(client, run_id, 1, wrong), 422)
    assert error["details"][0]["field"] == "class_names" and "cat" in error["message"]
    missing = body()
    del missing["images"]["names"]
    assert "names" in fields(missing)[0]

    assert put(client, run_id, 1, body()).status_code == 201
    other_images = body()
    other_images["images"]["names"][0] = "renamed"
    conflict = _error(put(client, run_id, 2, other_images), 409)
    assert "epochs 1" in conflict["message"]
    # The one stored epoch itself may be replaced with another set.
    assert put(client, run_id, 1, other_images).status_code == 200
    assert put(client, 999_999, 1, body()).status_code == 404


def test_reads_name_what_exists(client: ApiClient) -> None:
    run_id = tracked_run(client)
    nothing = _error(client.get(f"/api/v1/runs/{run_id}/confusion"), 404)
    assert "no validation detail yet" in nothing["message"]
    for epoch in (1, 2, 3, 7):
        put(client, run_id, epoch, body(epoch))
    missing = _error(client.get(f"/api/v1/runs/{run_id}/confusion?epoch=5"), 404)
    assert "1-3, 7" in missing["message"]
    url = f"/api/v1/runs/{run_id}/images"
    assert _error(client.get(f"{url}?epoch=5"), 422)["details"][0]["field"] == "epoch"
    assert _error(client.get(f"{url}?worse_than=4"), 422)["details"][0]["field"] == "worse_than"
    unknown_class = _error(client.get(f"{url}?class=dog"), 422)
    assert unknown_class["details"][0]["field"] == "class" and "cat" in unknown_class["message"]
    unknown_sort = _error(client.get(f"{url}?sort=loss"), 422)
    assert "iou" in str(unknown_sort) and "pixels_wrong" in str(unknown_sort)
    assert client.get(f"{url}?order=up").status_code == 422
    assert client.get(f"{url}?limit=0").status_code == 422
    trend = _error(client.get(f"/api/v1/runs/{run_id}/images/4/trend"), 404)
    assert "0 to 3" in trend["message"]
    assert client.get("/api/v1/runs/999999/images").status_code == 404


def test_deleting_a_run_deletes_its_detail(
    client: ApiClient, session_factory: sessionmaker[Session]
) -> None:
    run_id = tracked_run(client)
    put(client, run_id, 1, body())
    client.patch(f"/api/v1/runs/{run_id}", json={"status": "succeeded"})
    assert client.delete(f"/api/v1/runs/{run_id}").status_code == 204
    with session_factory() as session:
        for model in (ValidationEpoch, ValidationSet):
            left = session.scalar(
                select(func.count()).select_from(model).where(model.run_id == run_id)
            )
            assert left == 0


def test_viewers_read_and_only_owners_write(
    app: FastAPI, session_factory: sessionmaker[Session]
) -> None:
    with (
        ApiClient(app, issue_token(session_factory, "owner", "member")) as owner,
        ApiClient(app, issue_token(session_factory, "other", "member")) as other,
        ApiClient(app, issue_token(session_factory, "watcher", "viewer")) as viewer,
    ):
        run_id = tracked_run(owner)
        assert put(viewer, run_id, 1, body()).status_code == 403
        assert put(other, run_id, 1, body()).status_code == 403
        assert put(owner, run_id, 1, body()).status_code == 201
        assert viewer.get(f"/api/v1/runs/{run_id}/images").json()["total"] == 4


def test_a_big_set_has_its_own_body_limit(app: FastAPI, settings: Settings) -> None:
    """Bodies over SEGTRACK_MAX_BODY_BYTES are refused elsewhere but not here."""
    small = settings.model_copy(update={"max_body_bytes": 1024})
    limited = create_app(small, session_factory=app.state.session_factory)
    with ApiClient(limited, issue_token(app.state.session_factory)) as client:
        run_id = tracked_run(client, [f"class {index}" for index in range(2)])
        many = [f"image-{index:04d}" for index in range(200)]
        payload = {
            "class_names": ["class 0", "class 1"],
            "confusion": [[1, 0], [0, 1]],
            "images": {
                "names": many,
                "true_positive": [[1, 0]] * 200,
                "false_positive": [[0, 0]] * 200,
                "false_negative": [[0, 0]] * 200,
            },
        }
        assert put(client, run_id, 1, payload).status_code == 201
        too_big = client.post(
            f"/api/v1/runs/{run_id}/metrics",
            json={"points": [{"key": "k" * 100, "step": step, "value": 1.0} for step in range(50)]},
        )
        assert too_big.status_code == 413


@pytest.fixture
def sqlite_client(tmp_path: Path) -> Iterator[ApiClient]:
    """An embedded (SQLite) app of the test's own."""
    settings = Settings(
        data_dir=tmp_path / "embedded",
        broker_url="memory://",
        dataset_roots=[tmp_path],
        reaper_interval_s=0,
        allowed_hosts=["testserver"],
    )
    upgrade_database(settings.database_url)
    app = create_app(settings)
    with ApiClient(app, issue_token(app.state.session_factory)) as client:
        yield client


def test_sqlite_mode_stores_and_reads(sqlite_client: ApiClient) -> None:
    run_id = tracked_run(sqlite_client)
    assert put(sqlite_client, run_id, 1, body()).status_code == 201
    assert put(sqlite_client, run_id, 2, body(2, WORSE)).status_code == 201
    assert put(sqlite_client, run_id, 2, body(2, WORSE)).status_code == 200
    worse = sqlite_client.get(f"/api/v1/runs/{run_id}/images?worse_than=1").json()
    assert names(worse) == ["good"]
    trend = sqlite_client.get(f"/api/v1/runs/{run_id}/images/1/trend").json()
    assert [point["iou"] for point in trend["points"]] == [pytest.approx(1 / 3), 1.0]
    matrix = sqlite_client.get(f"/api/v1/runs/{run_id}/confusion").json()
    assert matrix["epochs"] == [1, 2]
    sqlite_client.patch(f"/api/v1/runs/{run_id}", json={"status": "succeeded"})
    assert sqlite_client.delete(f"/api/v1/runs/{run_id}").status_code == 204
    assert sqlite_client.get(f"/api/v1/runs/{run_id}/confusion").status_code == 404
