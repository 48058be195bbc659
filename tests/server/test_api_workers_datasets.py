"""The workers endpoint (online workers, queue order) and dataset registration."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session

from server.models import Run, Worker, utcnow
from server.worker_status.repository import SlotHolder, remove_worker, upsert_worker
from tests.server.helpers import ApiClient, create_external, valid_config, write_dataset


def test_workers_and_queue_order(
    client: ApiClient, shapes_dataset: Path, db_session: Session
) -> None:
    made = [
        client.post("/api/v1/runs", json={"config": valid_config(), "priority": priority}).json()
        for priority in (0, 5, 5, 9, 0)
    ]
    external = create_external(client, name="busy")
    upsert_worker(
        db_session,
        name="gpu0@host",
        hostname="host",
        pid=11,
        device="2 x NVIDIA H200",
        queues=["gpu"],
        slots=[SlotHolder(0, "0", external["id"]), SlotHolder(1, "1", None)],
        taking_messages=True,
    )
    upsert_worker(
        db_session, name="old@host", hostname="host", pid=12, device="cpu", queues=["cpu"],
        slots=[SlotHolder(0, None, None)], taking_messages=True,
    )  # fmt: skip
    db_session.execute(
        update(Worker)
        .where(Worker.name == "old@host")
        .values(last_seen_at=utcnow() - timedelta(hours=1))
    )
    db_session.commit()
    body = client.get("/api/v1/workers").json()
    assert [worker["name"] for worker in body["workers"]] == ["gpu0@host"]
    worker = body["workers"][0]
    assert worker["device"] == "2 x NVIDIA H200" and worker["queues"] == ["gpu"]
    assert worker["slots"] == [
        {"slot": 0, "gpu": "0", "run": {"id": external["id"], "name": "busy"}, "job": None},
        {"slot": 1, "gpu": "1", "run": None, "job": None},
    ]
    expected = [made[3]["id"], made[1]["id"], made[2]["id"], made[0]["id"], made[4]["id"]]
    assert [run["id"] for run in body["queue"]] == expected
    assert [run["position"] for run in body["queue"]] == [1, 2, 3, 4, 5]

    upsert_worker(
        db_session, name="gpu0@host", hostname="host", pid=11, device="cuda:0", queues=["gpu"],
        slots=[SlotHolder(0, "0", None)], taking_messages=True,
    )  # fmt: skip
    db_session.execute(update(Run).where(Run.id == made[3]["id"]).values(status="running"))
    db_session.commit()
    body = client.get("/api/v1/workers").json()
    assert body["workers"][0]["slots"] == [{"slot": 0, "gpu": "0", "run": None, "job": None}]
    assert made[3]["id"] not in [run["id"] for run in body["queue"]]
    remove_worker(db_session, "gpu0@host")
    db_session.commit()
    assert client.get("/api/v1/workers").json()["workers"] == []


def test_register_and_read_datasets(client: ApiClient, dataset_root: Path) -> None:
    write_dataset(dataset_root / "cells", classes=3)
    response = client.post("/api/v1/datasets", json={"name": "cells", "path": "cells"})
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["path"] == str((dataset_root / "cells").resolve())
    assert dataset["num_classes"] == 3 and dataset["num_pairs"] == 4
    assert dataset["class_names"] == ["background", "class_1", "class_2"]
    assert len(dataset["class_colors"]) == 3 and dataset["class_colors"][0] == "#000000"
    assert dataset["report"]["ok"] is True
    assert client.get(f"/api/v1/datasets/{dataset['id']}").json()["name"] == "cells"
    assert client.get("/api/v1/datasets/cells").json()["id"] == dataset["id"]
    listed = client.get("/api/v1/datasets").json()["items"]
    assert [item["name"] for item in listed] == ["cells"] and "report" not in listed[0]
    duplicate = client.post("/api/v1/datasets", json={"name": "cells", "path": "cells"})
    assert duplicate.status_code == 409
    missing = client.get("/api/v1/datasets/nope")
    assert missing.status_code == 404 and "cells" in missing.json()["error"]["message"]

    colours = ["#101010", "#ff0000", "#00ff00"]
    patched = client.patch("/api/v1/datasets/cells", json={"class_colors": colours})
    assert patched.json()["class_colors"] == colours
    wrong = client.patch("/api/v1/datasets/cells", json={"class_colors": ["#000000"]})
    assert wrong.status_code == 422
    assert (
        client.patch("/api/v1/datasets/cells", json={"class_colors": ["red"] * 3}).status_code
        == 422
    )


def test_dataset_registration_refusals(
    client: ApiClient, dataset_root: Path, tmp_path: Path
) -> None:
    outside = write_dataset(tmp_path / "outside")
    response = client.post("/api/v1/datasets", json={"name": "out", "path": str(outside)})
    assert response.status_code == 403
    assert response.json()["error"]["details"]["allowed_roots"] == [str(dataset_root.resolve())]
    escape = client.post("/api/v1/datasets", json={"name": "out", "path": "../outside"})
    assert escape.status_code == 403
    (dataset_root / "link").symlink_to(outside, target_is_directory=True)
    assert client.post("/api/v1/datasets", json={"name": "out", "path": "link"}).status_code == 403
    bad = write_dataset(dataset_root / "bad")
    for mask in (bad / "masks").iterdir():
        mask.unlink()
    rejected = client.post("/api/v1/datasets", json={"name": "bad", "path": "bad"})
    assert rejected.status_code == 422
    assert rejected.json()["error"]["code"] == "dataset_rejected"
    invalid = client.post("/api/v1/datasets", json={"name": "no spaces", "path": "bad"})
    assert invalid.status_code == 422 and invalid.json()["error"]["details"][0]["field"] == "name"
    assert client.get("/api/v1/datasets").json()["items"] == []


def test_changed_dataset_is_inspected_again(client: ApiClient, dataset_root: Path) -> None:
    folder = write_dataset(dataset_root / "grows")
    client.post("/api/v1/datasets", json={"name": "grows", "path": "grows"})
    write_dataset(folder, count=6)
    run = client.post("/api/v1/runs", json={"config": valid_config("grows")})
    assert run.status_code == 201
    assert client.get("/api/v1/datasets/grows").json()["num_pairs"] == 6
