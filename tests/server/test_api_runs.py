"""Creating runs (training and external), reading, editing and deleting them, and the state rules
of cancel, resume and clone."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text, update
from sqlalchemy.orm import Session

from server.artifacts import checkpoint_dir, log_path, run_dir
from server.models import Run
from server.preview.repository import upsert_checkpoint
from server.settings import Settings
from tests.server.helpers import (
    ApiClient,
    RecordingTaskQueue,
    create_external,
    valid_config,
    write_dataset,
)


def _error(response: object) -> dict[str, object]:
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}, body
    error: dict[str, object] = body["error"]
    return error


def test_create_queues_the_run_after_commit(
    client: ApiClient, shapes_dataset: Path, task_queue: RecordingTaskQueue
) -> None:
    response = client.post(
        "/api/v1/runs",
        json={"config": valid_config(), "tags": ["b", "a", "a"], "priority": 7, "queue": "gpu1"},
    )
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["status"] == "queued"
    assert run["tags"] == ["a", "b"]
    assert run["name"] == "unet-shapes"
    assert run["dataset_path"] == str(shapes_dataset.resolve())
    assert run["config"]["dataset"] == str(shapes_dataset.resolve())
    assert run["config"]["learning_rate"] == 1e-3  # defaults are stored explicitly
    assert run["class_names"] == ["background", "foreground"]
    assert run["epochs_planned"] == 2
    assert run["queued_at"] is not None
    [sent] = task_queue.sent
    assert (sent.run_id, sent.queue, sent.priority) == (run["id"], "gpu1", 7)
    assert client.get(f"/api/v1/runs/{run['id']}").json()["status"] == "queued"


def test_default_queue_comes_from_settings(
    client: ApiClient, shapes_dataset: Path, task_queue: RecordingTaskQueue, settings: Settings
) -> None:
    run = client.post("/api/v1/runs", json={"config": valid_config()}).json()
    assert run["queue"] == settings.default_queue == task_queue.sent[0].queue


def test_invalid_config_names_the_field_and_the_allowed_values(
    client: ApiClient, shapes_dataset: Path, task_queue: RecordingTaskQueue
) -> None:
    response = client.post(
        "/api/v1/runs", json={"config": valid_config(model="resnet", epochs=0, bogus=1)}
    )
    assert response.status_code == 422
    error = _error(response)
    assert error["code"] == "invalid_input"
    details = {item["field"]: item["message"] for item in error["details"]}  # type: ignore[attr-defined]
    assert "'unet'" in details["model"] and "'vgg16-unet'" in details["model"]
    assert "epochs" in details
    assert "allowed keys are" in details["bogus"]
    assert not task_queue.sent


def test_missing_config_or_dataset_is_a_clear_422(client: ApiClient) -> None:
    response = client.post("/api/v1/runs", json={"name": "x"})
    assert response.status_code == 422
    assert "external" in str(_error(response)["message"])
    response = client.post("/api/v1/runs", json={"config": {"epochs": 3}})
    assert response.status_code == 422
    assert {"field": "dataset", "message": "this key is required"} in _error(response)["details"]  # type: ignore[operator]


def test_dataset_outside_the_roots_is_refused(
    client: ApiClient, tmp_path: Path, dataset_root: Path
) -> None:
    outside = write_dataset(tmp_path / "elsewhere")
    for dataset in (str(outside), "../elsewhere", "shapes/../../elsewhere"):
        response = client.post("/api/v1/runs", json={"config": valid_config(dataset)})
        assert response.status_code == 403, (dataset, response.text)
        error = _error(response)
        assert error["code"] == "path_not_allowed"
        assert str(dataset_root.resolve()) in str(error["message"])


def test_symlink_escaping_the_roots_is_refused(
    client: ApiClient, tmp_path: Path, dataset_root: Path
) -> None:
    outside = write_dataset(tmp_path / "secret")
    (dataset_root / "link").symlink_to(outside, target_is_directory=True)
    response = client.post("/api/v1/runs", json={"config": valid_config("link")})
    assert response.status_code == 403
    assert _error(response)["code"] == "path_not_allowed"


def test_missing_dataset_folder_is_a_422(client: ApiClient) -> None:
    response = client.post("/api/v1/runs", json={"config": valid_config("nothing-here")})
    assert response.status_code == 422
    assert "does not exist" in str(_error(response)["message"])


def test_dataset_failing_inspection_returns_the_report(
    client: ApiClient, dataset_root: Path, task_queue: RecordingTaskQueue
) -> None:
    broken = write_dataset(dataset_root / "broken")
    for mask in (broken / "masks").iterdir():
        mask.write_bytes(b"not a png")
    response = client.post("/api/v1/runs", json={"config": valid_config("broken")})
    assert response.status_code == 422
    error = _error(response)
    assert error["code"] == "dataset_rejected"
    report = error["details"]
    assert isinstance(report, dict) and report["ok"] is False and report["errors"]
    (dataset_root / "empty").mkdir()
    response = client.post("/api/v1/runs", json={"config": valid_config("empty")})
    assert response.status_code == 422
    assert _error(response)["code"] == "dataset_rejected"
    assert not task_queue.sent


def test_registered_dataset_name_resolves_to_its_path(
    client: ApiClient, dataset_root: Path
) -> None:
    write_dataset(dataset_root / "folder-of-demo")
    registered = client.post(
        "/api/v1/datasets", json={"name": "demo", "path": "folder-of-demo"}
    ).json()
    run = client.post("/api/v1/runs", json={"config": valid_config("demo")}).json()
    assert run["dataset_id"] == registered["id"]
    assert run["dataset_name"] == "demo"
    assert run["config"]["dataset"] == registered["path"]
    assert run["name"] == "unet-demo"


def test_external_run_lifecycle(client: ApiClient, task_queue: RecordingTaskQueue) -> None:
    run = create_external(client, params={"lr": 0.1}, tags=["ext"])
    assert run["status"] == "running" and run["external"] is True
    assert run["params"] == {"lr": 0.1} and run["config"] is None
    assert not task_queue.sent
    response = client.patch(
        f"/api/v1/runs/{run['id']}", json={"status": "failed", "failure_reason": "OOM\ntrace"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "failed"
    assert response.json()["failure_reason"] == "OOM"
    assert response.json()["finished_at"] is not None
    again = client.patch(f"/api/v1/runs/{run['id']}", json={"status": "succeeded"})
    assert again.status_code == 409


def test_an_external_run_keeps_its_config_unresolved_and_refuses_a_bad_one(
    client: ApiClient,
) -> None:
    config = {"dataset": "/data/on/another/host/cells", "epochs": 7, "model": "unet"}
    response = client.post("/api/v1/runs", json={"external": True, "config": config})
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["config"]["dataset"] == config["dataset"] and run["config"]["epochs"] == 7
    assert (run["dataset_name"], run["model"], run["epochs_planned"]) == ("cells", "unet", 7)
    bad = client.post(
        "/api/v1/runs", json={"external": True, "config": {"dataset": "x", "epochz": 3}}
    )
    assert bad.status_code == 422 and "epochz" in bad.json()["error"]["message"]


def test_patch_name_tags_notes_and_status_rules(client: ApiClient, shapes_dataset: Path) -> None:
    run = client.post("/api/v1/runs", json={"config": valid_config()}).json()
    response = client.patch(
        f"/api/v1/runs/{run['id']}", json={"name": "renamed", "tags": ["x"], "notes": "hello"}
    )
    body = response.json()
    assert (body["name"], body["tags"], body["notes"]) == ("renamed", ["x"], "hello")
    response = client.patch(f"/api/v1/runs/{run['id']}", json={"status": "succeeded"})
    assert response.status_code == 409
    assert "external" in str(_error(response)["message"])
    response = client.patch(f"/api/v1/runs/{run['id']}", json={"status": "bogus"})
    assert response.status_code == 422


def test_unknown_run_is_a_json_404(client: ApiClient) -> None:
    for method, url in (
        ("GET", "/api/v1/runs/999999"),
        ("PATCH", "/api/v1/runs/999999"),
        ("DELETE", "/api/v1/runs/999999"),
        ("POST", "/api/v1/runs/999999/cancel"),
        ("POST", "/api/v1/runs/999999/resume"),
        ("POST", "/api/v1/runs/999999/clone"),
        ("GET", "/api/v1/runs/999999/metrics"),
        ("GET", "/api/v1/runs/999999/previews"),
        ("GET", "/api/v1/runs/999999/logs"),
    ):
        response = client.request(method, url, json={})
        assert response.status_code == 404, (method, url, response.text)
        assert "run 999999 does not exist" in str(_error(response)["message"])


def test_cancel_rules(
    client: ApiClient, shapes_dataset: Path, task_queue: RecordingTaskQueue, db_session: Session
) -> None:
    queued = client.post("/api/v1/runs", json={"config": valid_config()}).json()
    response = client.post(f"/api/v1/runs/{queued['id']}/cancel")
    assert response.json()["status"] == "cancelled"
    assert task_queue.revoked == [task_queue.sent[0].task_id]
    response = client.post(f"/api/v1/runs/{queued['id']}/cancel")
    assert response.status_code == 409
    assert "cancelled already" in str(_error(response)["message"])

    running = client.post("/api/v1/runs", json={"config": valid_config()}).json()
    db_session.execute(
        text("UPDATE runs SET status = 'running' WHERE id = :id"),
        {"id": running["id"]},
    )
    db_session.commit()
    assert client.post(f"/api/v1/runs/{running['id']}/cancel").json()["status"] == "cancelling"
    assert client.post(f"/api/v1/runs/{running['id']}/cancel").json()["status"] == "cancelling"

    external = create_external(client)
    assert client.post(f"/api/v1/runs/{external['id']}/cancel").json()["status"] == "cancelled"


def test_resume_needs_a_finished_run_with_a_last_checkpoint(
    client: ApiClient,
    shapes_dataset: Path,
    task_queue: RecordingTaskQueue,
    db_session: Session,
) -> None:
    run = client.post("/api/v1/runs", json={"config": valid_config()}).json()
    response = client.post(f"/api/v1/runs/{run['id']}/resume")
    assert response.status_code == 409
    assert "only failed, cancelled, pruned runs" in str(_error(response)["message"])
    client.post(f"/api/v1/runs/{run['id']}/cancel")
    response = client.post(f"/api/v1/runs/{run['id']}/resume")
    assert response.status_code == 409
    assert "no last checkpoint" in str(_error(response)["message"])
    upsert_checkpoint(
        db_session, run_id=run["id"], kind="last", epoch=1, metric=None, path="x.pt", size_bytes=1
    )
    db_session.commit()
    response = client.post(f"/api/v1/runs/{run['id']}/resume")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "queued" and body["resume_requested"] is True
    assert body["finished_at"] is None
    assert [sent.run_id for sent in task_queue.sent] == [run["id"], run["id"]]
    assert task_queue.sent[0].task_id != task_queue.sent[1].task_id


def test_resume_can_extend_the_epochs_and_clone_records_lineage(
    client: ApiClient, shapes_dataset: Path, db_session: Session
) -> None:
    run = client.post("/api/v1/runs", json={"config": valid_config(epochs=2)}).json()
    client.post(f"/api/v1/runs/{run['id']}/cancel")
    db_session.execute(update(Run).where(Run.id == run["id"]).values(epochs_done=2))
    upsert_checkpoint(
        db_session, run_id=run["id"], kind="last", epoch=2, metric=None, path="x.pt", size_bytes=1
    )
    db_session.commit()
    too_few = client.post(f"/api/v1/runs/{run['id']}/resume", json={"epochs": 2})
    assert too_few.status_code == 422
    assert "above the 2 epochs done" in str(_error(too_few)["message"])
    resumed = client.post(f"/api/v1/runs/{run['id']}/resume", json={"epochs": 5}).json()
    assert resumed["config"]["epochs"] == 5 and resumed["epochs_planned"] == 5
    clone = client.post(f"/api/v1/runs/{run['id']}/clone", json={}).json()
    assert clone["lineage"]["cloned_from"]["id"] == run["id"]
    tuned = client.post(
        "/api/v1/runs", json={"config": valid_config(init_from=f"run:{run['id']}:last")}
    ).json()
    assert tuned["lineage"]["fine_tuned_from"]["id"] == run["id"]
    children = client.get(f"/api/v1/runs/{run['id']}").json()["lineage"]["children"]
    assert sorted((child["id"], child["relation"]) for child in children) == [
        (clone["id"], "clone"),
        (tuned["id"], "fine_tune"),
    ]


def test_clone_applies_overrides_and_validates_them(
    client: ApiClient, shapes_dataset: Path, task_queue: RecordingTaskQueue
) -> None:
    source = client.post(
        "/api/v1/runs", json={"config": valid_config(), "name": "base", "tags": ["t"]}
    ).json()
    response = client.post(
        f"/api/v1/runs/{source['id']}/clone", json={"overrides": {"learning_rate": 0.01}}
    )
    assert response.status_code == 201, response.text
    clone = response.json()
    assert clone["id"] != source["id"] and clone["status"] == "queued"
    assert clone["name"] == "base (clone)" and clone["tags"] == ["t"]
    assert clone["config"]["learning_rate"] == 0.01
    assert clone["config"]["epochs"] == source["config"]["epochs"]
    assert task_queue.sent[-1].run_id == clone["id"]
    bad = client.post(f"/api/v1/runs/{source['id']}/clone", json={"overrides": {"optimizer": "x"}})
    assert bad.status_code == 422
    assert "'adamw'" in str(_error(bad)["details"])
    external = create_external(client)
    assert client.post(f"/api/v1/runs/{external['id']}/clone", json={}).status_code == 409


def test_delete_removes_rows_and_files(
    client: ApiClient, settings: Settings, task_queue: RecordingTaskQueue, db_session: Session
) -> None:
    run = create_external(client)
    folder = checkpoint_dir(settings.artifacts_dir, run["id"])
    folder.mkdir(parents=True)
    (folder / "last.pt").write_bytes(b"weights")
    log_path(settings.artifacts_dir, run["id"]).parent.mkdir(parents=True)
    client.post(
        f"/api/v1/runs/{run['id']}/metrics", json={"points": [{"key": "a", "step": 0, "value": 1}]}
    )
    response = client.delete(f"/api/v1/runs/{run['id']}")
    assert response.status_code == 409
    assert "force=true" in str(_error(response)["message"])
    assert client.delete(f"/api/v1/runs/{run['id']}?force=true").status_code == 204
    assert not run_dir(settings.artifacts_dir, run["id"]).exists()
    assert client.get(f"/api/v1/runs/{run['id']}").status_code == 404
    remaining = db_session.execute(
        text("SELECT count(*) FROM metrics WHERE run_id = :id"),
        {"id": run["id"]},
    ).scalar()
    assert remaining == 0


def test_delete_a_queued_run_revokes_its_message(
    client: ApiClient, shapes_dataset: Path, task_queue: RecordingTaskQueue
) -> None:
    run = client.post("/api/v1/runs", json={"config": valid_config()}).json()
    assert client.delete(f"/api/v1/runs/{run['id']}").status_code == 204
    assert task_queue.revoked == [task_queue.sent[0].task_id]
