"""Runs trained elsewhere report through the API what a worker's run writes itself: created once
per client key, their info and environment, heartbeats that carry a cancel, previews as PNGs,
numbered log lines, a replay-safe final status, and the reaper for a tracker that went silent."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import update
from sqlalchemy.orm import Session

from server.models import Run, utcnow
from server.reaper import reap_once
from server.settings import Settings
from tests.server.helpers import ApiClient, RecordingTaskQueue, issue_token

ENVIRONMENT = {"origin": "cli", "host": "gpu-node-7", "user": "ada", "command": "segtrack train"}


def _tracked(client: ApiClient, **extra: Any) -> dict[str, Any]:
    body = {"external": True, "heartbeat_timeout_s": 60, "environment": ENVIRONMENT, **extra}
    response = client.post("/api/v1/runs", json=body)
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    return run


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _preview_files(size: int = 16, mode: str = "RGB") -> dict[str, tuple[str, bytes, str]]:
    image = np.zeros((size, size, 3) if mode == "RGB" else (size, size), np.uint8)
    mask = np.zeros((size, size), np.uint8)
    mask[: size // 2] = 1
    return {
        "image": ("image.png", _png(image), "image/png"),
        "truth": ("truth.png", _png(mask), "image/png"),
        "prediction": ("prediction.png", _png(mask), "image/png"),
    }


def test_a_client_key_creates_one_run_however_often_it_is_sent(client: ApiClient) -> None:
    first = _tracked(client, client_key="key-0123456789")
    again = client.post("/api/v1/runs", json={"external": True, "client_key": "key-0123456789"})
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert first["environment"]["host"] == "gpu-node-7" and first["origin"] == "cli"
    listed = client.get("/api/v1/runs", params={"external": "true"}).json()["items"]
    assert [(item["origin"], item["host"]) for item in listed] == [("cli", "gpu-node-7")]
    bad = client.post("/api/v1/runs", json={"external": True, "client_key": "short"})
    assert bad.status_code == 422


def test_another_users_client_key_is_a_conflict(
    client: ApiClient, app: Any, session_factory: Any
) -> None:
    _tracked(client, client_key="shared-key-1234")
    token = issue_token(session_factory, "mallory", role="member")
    with ApiClient(app, token) as other:
        response = other.post(
            "/api/v1/runs", json={"external": True, "client_key": "shared-key-1234"}
        )
    assert response.status_code == 409 and "another user" in response.json()["error"]["message"]


def test_info_stores_what_the_trainer_resolved_and_where_it_runs(client: ApiClient) -> None:
    run = _tracked(client)
    info = {
        "class_names": ["background", "cell"],
        "epochs_planned": 5,
        "device": "cuda:0",
        "run_info": {
            "num_train": 40, "num_val": 8, "in_channels": 3, "start_epoch": 1,
            "steps_per_epoch": 10, "parameters": 1234,
        },
        "environment": {"torch": "2.13.0", "gpus": ["NVIDIA H200"]},
    }  # fmt: skip
    response = client.request("PUT", f"/api/v1/runs/{run['id']}/info", json=info)
    assert response.status_code == 200, response.text
    stored = response.json()
    assert stored["class_names"] == ["background", "cell"] and stored["epochs_planned"] == 5
    assert stored["run_info"]["num_train"] == 40
    assert stored["environment"]["host"] == "gpu-node-7"  # kept from the creation
    assert stored["environment"]["gpus"] == ["NVIDIA H200"]


def test_a_workers_run_takes_no_tracking_reports(client: ApiClient, shapes_dataset: Any) -> None:
    run = client.post("/api/v1/runs", json={"config": {"dataset": "shapes"}}).json()
    for method, path, body in (
        ("PUT", "info", {}),
        ("POST", "heartbeat", {}),
        ("POST", "logs", {"first_line": 0, "lines": ["x"]}),
    ):
        response = client.request(method, f"/api/v1/runs/{run['id']}/{path}", json=body)
        assert response.status_code == 409, (path, response.text)
        assert "trained by a worker" in response.json()["error"]["message"]


def test_a_cancel_reaches_the_tracker_through_its_heartbeat(client: ApiClient) -> None:
    run = _tracked(client)
    beat = client.post(f"/api/v1/runs/{run['id']}/heartbeat", json={}).json()
    assert beat == {"status": "running", "stop_requested": False, "pinned_images": []}
    assert client.post(f"/api/v1/runs/{run['id']}/cancel").json()["status"] == "cancelling"
    assert client.post(f"/api/v1/runs/{run['id']}/heartbeat", json={}).json() == {
        "status": "cancelling",
        "stop_requested": True,
        "pinned_images": [],
    }
    finished = client.patch(f"/api/v1/runs/{run['id']}", json={"status": "cancelled"})
    assert finished.status_code == 200 and finished.json()["status"] == "cancelled"
    replay = client.patch(f"/api/v1/runs/{run['id']}", json={"status": "cancelled"})
    assert replay.status_code == 200
    assert client.patch(f"/api/v1/runs/{run['id']}", json={"status": "failed"}).status_code == 409
    after = client.post(f"/api/v1/runs/{run['id']}/heartbeat", json={}).json()
    assert after == {"status": "cancelled", "stop_requested": True, "pinned_images": []}


def test_a_script_without_a_heartbeat_is_cancelled_at_once(client: ApiClient) -> None:
    run = client.post("/api/v1/runs", json={"external": True}).json()
    assert client.post(f"/api/v1/runs/{run['id']}/cancel").json()["status"] == "cancelled"


def test_log_lines_are_appended_once_and_a_gap_says_where_to_resume(client: ApiClient) -> None:
    run = _tracked(client)
    url = f"/api/v1/runs/{run['id']}/logs"
    assert client.post(url, json={"first_line": 0, "lines": ["a", "b"]}).json() == {"log_lines": 2}
    assert client.post(url, json={"first_line": 1, "lines": ["b", "c"]}).json() == {"log_lines": 3}
    gap = client.post(url, json={"first_line": 7, "lines": ["z"]})
    assert gap.status_code == 409 and gap.json()["error"]["details"] == {"log_lines": 3}
    assert client.get(f"{url}?tail=10").json()["lines"] == ["a", "b", "c"]
    nul = client.post(url, json={"first_line": 3, "lines": ["bad\x00line"]})
    assert nul.status_code == 422


def test_previews_are_stored_like_a_workers_and_replayed_ones_replace(client: ApiClient) -> None:
    run = _tracked(client)
    url = f"/api/v1/runs/{run['id']}/previews"
    form = {"epoch": "1", "sample_index": "0", "name": "cell_01.png"}
    first = client.post(url, data=form, files=_preview_files())
    assert first.status_code == 201, first.text
    assert client.post(url, data=form, files=_preview_files()).status_code == 200
    listed = client.get(url).json()
    assert listed["epochs"] == [1], listed
    [sample] = listed["samples"]
    assert sample["name"] == "cell_01.png"
    truth = client.get(sample["truth_url"])
    assert truth.status_code == 200
    assert Image.open(io.BytesIO(truth.content)).mode == "L"


def test_bad_preview_files_are_refused_by_name(client: ApiClient) -> None:
    run = _tracked(client)
    url = f"/api/v1/runs/{run['id']}/previews"
    form = {"epoch": "1", "sample_index": "0", "name": "x"}
    files = _preview_files()
    files["truth"] = ("truth.png", b"not a png", "image/png")
    response = client.post(url, data=form, files=files)
    assert response.status_code == 422 and "truth" in response.json()["error"]["message"]
    files = _preview_files()
    files["prediction"] = ("p.png", _png(np.zeros((16, 16, 3), np.uint8)), "image/png")
    response = client.post(url, data=form, files=files)
    assert response.status_code == 422 and "mode L" in response.json()["error"]["message"]
    files = _preview_files()
    files["truth"] = ("t.png", _png(np.zeros((8, 8), np.uint8)), "image/png")
    response = client.post(url, data=form, files=files)
    assert response.status_code == 422 and "same size" in response.json()["error"]["message"]
    out_of_range = client.post(
        url, data={**form, "sample_index": str(2**31)}, files=_preview_files()
    )
    assert out_of_range.status_code == 422


def test_a_silent_tracker_fails_its_run_and_a_live_one_stays(
    client: ApiClient, db_session: Session, settings: Settings, task_queue: RecordingTaskQueue
) -> None:
    silent = _tracked(client)["id"]
    alive = _tracked(client)["id"]
    untracked = client.post("/api/v1/runs", json={"external": True}).json()["id"]
    old = utcnow() - timedelta(seconds=120)
    db_session.execute(update(Run).where(Run.id.in_([silent, untracked])).values(heartbeat_at=old))
    db_session.flush()
    report = reap_once(db_session, settings, task_queue)
    db_session.commit()
    assert report.failed == [silent]
    run = client.get(f"/api/v1/runs/{silent}").json()
    assert run["status"] == "failed"
    assert (
        run["failure_reason"] == "the training process stopped sending heartbeats (none for 60 s)"
    )
    assert client.get(f"/api/v1/runs/{alive}").json()["status"] == "running"
    assert client.get(f"/api/v1/runs/{untracked}").json()["status"] == "running"


def test_lineage_links_both_ways(client: ApiClient) -> None:
    source = _tracked(client, config={"dataset": "/elsewhere/cells", "epochs": 3})
    resumed = _tracked(client, resumed_from=source["id"])
    assert resumed["lineage"]["resumed_from"]["id"] == source["id"]
    children = client.get(f"/api/v1/runs/{source['id']}").json()["lineage"]["children"]
    assert [(child["id"], child["relation"]) for child in children] == [(resumed["id"], "resume")]
    missing = client.post("/api/v1/runs", json={"external": True, "resumed_from": 999999})
    assert missing.status_code == 422 and "resumed_from" in missing.json()["error"]["message"]
