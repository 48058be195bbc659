"""Resumable, checksummed uploads of runs trained elsewhere: pieces with `Upload-Offset`, the
checksum at the end, checkpoints and run files in place, and every refusal with its code."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from server.app import create_app
from server.artifacts import run_dir, upload_part_path
from server.db import upgrade_database
from server.deps import get_task_queue
from server.settings import Settings
from server.upload.part_file import PartFile
from server.upload.router import FLUSH_BYTES
from tests.server.helpers import (
    ApiClient,
    LiveServer,
    RecordingTaskQueue,
    create_external,
    issue_token,
    valid_config,
)

RAW = {"Content-Type": "application/offset+octet-stream"}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _announce(
    client: ApiClient | httpx.Client,
    run_id: int,
    data: bytes,
    *,
    kind: str = "best",
    name: str = "best.pt",
    **extra: Any,
) -> httpx.Response:
    body = {"kind": kind, "name": name, "size_bytes": len(data), "sha256": _sha(data), **extra}
    return client.post(f"/api/v1/runs/{run_id}/uploads", json=body)


def _send(
    client: ApiClient | httpx.Client, run_id: int, upload_id: str, offset: int, data: Any
) -> httpx.Response:
    return client.patch(
        f"/api/v1/runs/{run_id}/uploads/{upload_id}",
        content=data,
        headers={**RAW, "Upload-Offset": str(offset)},
    )


def _error(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


def test_a_checkpoint_in_pieces_becomes_the_runs_best(client: ApiClient) -> None:
    run = create_external(client)
    data = os.urandom(300_000)
    created = _announce(client, run["id"], data, epoch=3, metric=0.75)
    assert created.status_code == 201, created.text
    upload = created.json()
    assert upload["offset"] == 0 and not upload["complete"] and len(upload["id"]) == 32
    for start in (0, 100_000, 200_000):
        answer = _send(client, run["id"], upload["id"], start, data[start : start + 100_000])
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"offset": start + 100_000, "complete": start == 200_000}
    download = client.get(f"/api/v1/runs/{run['id']}/checkpoints/best")
    assert download.status_code == 200 and download.content == data
    [listed] = client.get(f"/api/v1/runs/{run['id']}/checkpoints").json()["checkpoints"]
    assert (listed["kind"], listed["epoch"], listed["metric"]) == ("best", 3, 0.75)
    assert listed["size_bytes"] == len(data)
    state = client.get(f"/api/v1/runs/{run['id']}/uploads/{upload['id']}").json()
    assert state["offset"] == len(data) and state["complete"]
    again = _announce(client, run["id"], data, epoch=3)
    assert again.status_code == 200 and again.json()["complete"]
    replay = _send(client, run["id"], upload["id"], len(data), b"")
    assert replay.json() == {"offset": len(data), "complete": True}


def test_a_run_file_is_listed_downloaded_and_replaced_by_name(client: ApiClient) -> None:
    run = create_external(client)
    url = f"/api/v1/runs/{run['id']}"
    first = b"epoch,loss\n1,0.5\n"
    upload = _announce(client, run["id"], first, kind="table", name="loss curve.csv").json()
    assert _send(client, run["id"], upload["id"], 0, first).json()["complete"]
    [item] = client.get(f"{url}/files").json()["items"]
    assert (item["name"], item["kind"], item["size_bytes"]) == ("loss curve.csv", "table", 17)
    assert item["sha256"] == _sha(first)
    download = client.get(f"{url}/files/{item['id']}")
    assert download.content == first
    assert "attachment" in download.headers["content-disposition"]
    assert "loss%20curve.csv" in download.headers["content-disposition"]

    second = b"epoch,loss\n1,0.5\n2,0.25\n"
    upload = _announce(client, run["id"], second, kind="table", name="loss curve.csv").json()
    assert _send(client, run["id"], upload["id"], 0, second).json()["complete"]
    [item] = client.get(f"{url}/files").json()["items"]
    assert item["sha256"] == _sha(second)
    assert client.get(f"{url}/files/{item['id']}").content == second
    assert client.get(f"{url}/files/{item['id'] + 1}").status_code == 404


def test_an_unfinished_upload_resumes_and_a_newer_one_supersedes_it(client: ApiClient) -> None:
    run = create_external(client)
    data = os.urandom(5000)
    upload = _announce(client, run["id"], data, kind="last", name="last.pt").json()
    assert _send(client, run["id"], upload["id"], 0, data[:2000]).json()["offset"] == 2000
    resumed = _announce(client, run["id"], data, kind="last", name="last.pt")
    assert resumed.status_code == 200
    assert resumed.json() == {**upload, "offset": 2000}

    newer = os.urandom(10)
    replacing = _announce(client, run["id"], newer, kind="last", name="last.pt")
    assert replacing.status_code == 201
    gone = client.get(f"/api/v1/runs/{run['id']}/uploads/{upload['id']}")
    assert gone.status_code == 404 and "create the upload again" in _error(gone)["message"]


def test_a_piece_at_another_offset_gets_409_with_the_stored_offset(client: ApiClient) -> None:
    run = create_external(client)
    data = os.urandom(1000)
    upload = _announce(client, run["id"], data).json()
    _send(client, run["id"], upload["id"], 0, data[:400])
    for offset in (0, 500):
        answer = _send(client, run["id"], upload["id"], offset, data[offset:])
        assert answer.status_code == 409
        assert _error(answer)["code"] == "upload_offset_mismatch"
        assert _error(answer)["details"] == {"offset": 400}
    missing = client.patch(
        f"/api/v1/runs/{run['id']}/uploads/{upload['id']}", content=b"x", headers=RAW
    )
    assert missing.status_code == 422 and "upload-offset" in missing.text.lower()


def test_a_piece_past_the_size_gets_413_and_keeps_nothing(
    client: ApiClient, settings: Settings
) -> None:
    run = create_external(client)
    data = os.urandom(1000)
    upload = _announce(client, run["id"], data).json()
    _send(client, run["id"], upload["id"], 0, data[:600])
    declared = _send(client, run["id"], upload["id"], 600, data[600:] + b"extra")
    assert declared.status_code == 413
    assert _error(declared)["details"] == {"offset": 600, "size_bytes": 1000}

    async def streamed() -> AsyncIterator[bytes]:  # chunked: no Content-Length up front
        yield data[600:900]
        yield data[900:] + b"extra"

    answer = _send(client, run["id"], upload["id"], 600, streamed())
    assert answer.status_code == 413 and _error(answer)["code"] == "payload_too_large"
    part = upload_part_path(settings.artifacts_dir, run["id"], upload["id"])
    assert part.stat().st_size == 600
    assert client.get(f"/api/v1/runs/{run['id']}/uploads/{upload['id']}").json()["offset"] == 600
    assert _send(client, run["id"], upload["id"], 600, data[600:]).json()["complete"]


def test_a_checksum_mismatch_gets_422_and_discards_the_upload(
    client: ApiClient, settings: Settings
) -> None:
    run = create_external(client)
    data = os.urandom(1000)
    upload = _announce(client, run["id"], data).json()
    answer = _send(client, run["id"], upload["id"], 0, bytes(1000))
    assert answer.status_code == 422
    error = _error(answer)
    assert error["code"] == "checksum_mismatch"
    assert error["details"] == {"expected": _sha(data), "received": _sha(bytes(1000))}
    assert "discarded, create it again" in error["message"]
    assert client.get(f"/api/v1/runs/{run['id']}/uploads/{upload['id']}").status_code == 404
    assert not upload_part_path(settings.artifacts_dir, run["id"], upload["id"]).exists()
    assert client.get(f"/api/v1/runs/{run['id']}/checkpoints/best").status_code == 404


def test_a_second_request_on_the_same_upload_gets_409_busy(
    client: ApiClient, settings: Settings
) -> None:
    run = create_external(client)
    data = os.urandom(100)
    upload = _announce(client, run["id"], data).json()
    holder = PartFile(upload_part_path(settings.artifacts_dir, run["id"], upload["id"]))
    try:
        answer = _send(client, run["id"], upload["id"], 0, data)
    finally:
        holder.close()
    assert answer.status_code == 409 and _error(answer)["code"] == "upload_busy"
    assert _send(client, run["id"], upload["id"], 0, data).json()["complete"]


@pytest.mark.parametrize(
    "name", ["../x", "a/b", "a\\b", "nul\x00", "", ".", "..", "line\nbreak", "x" * 256]
)
def test_hostile_file_names_get_422(client: ApiClient, name: str) -> None:
    run = create_external(client)
    answer = _announce(client, run["id"], b"data", kind="notes", name=name)
    assert answer.status_code == 422, answer.text
    assert _error(answer)["details"][0]["field"] == "name"


@pytest.mark.parametrize("kind", ["Best", "1st", "", "a" * 33, "a b"])
def test_bad_kinds_get_422(client: ApiClient, kind: str) -> None:
    run = create_external(client)
    answer = _announce(client, run["id"], b"data", kind=kind, name="f")
    assert answer.status_code == 422 and _error(answer)["details"][0]["field"] == "kind"


def test_uploads_over_the_limit_get_413_and_pieces_skip_the_body_limit(
    settings: Settings, session_factory: sessionmaker[Session], admin_token: str
) -> None:
    small = settings.model_copy(update={"max_upload_bytes": 10_000, "max_body_bytes": 1024})
    with ApiClient(create_app(small, session_factory=session_factory), admin_token) as client:
        run = create_external(client)
        over = _announce(client, run["id"], bytes(10_001))
        assert over.status_code == 413
        assert _error(over)["details"] == {"max_upload_bytes": 10_000}
        assert "SEGTRACK_MAX_UPLOAD_BYTES" in _error(over)["message"]
        assert "limit of 9.8 KiB (10000 bytes)" in str(_error(over)["message"])
        data = os.urandom(10_000)
        upload = _announce(client, run["id"], data).json()
        assert _send(client, run["id"], upload["id"], 0, data).json()["complete"]
        points = [{"key": "loss", "step": step, "value": 1.0} for step in range(100)]
        limited = client.post(f"/api/v1/runs/{run['id']}/metrics", json={"points": points})
        assert limited.status_code == 413
        assert "SEGTRACK_MAX_BODY_BYTES" in _error(limited)["message"]


def test_a_workers_run_takes_no_uploads(client: ApiClient, shapes_dataset: Path) -> None:
    run = client.post("/api/v1/runs", json={"config": valid_config()}).json()
    answer = _announce(client, run["id"], b"weights")
    assert answer.status_code == 409 and "trained by a worker" in _error(answer)["message"]
    assert _announce(client, 999_999, b"weights").status_code == 404


def test_only_the_runs_owner_uploads_and_viewers_read_its_files(
    app: FastAPI, session_factory: sessionmaker[Session]
) -> None:
    with (
        ApiClient(app, issue_token(session_factory, "owner", "member")) as owner,
        ApiClient(app, issue_token(session_factory, "other", "member")) as stranger,
        ApiClient(app, issue_token(session_factory, "viewer", "viewer")) as viewer,
    ):
        run = create_external(owner)
        data = b"a plot"
        for caller in (stranger, viewer):
            assert _announce(caller, run["id"], data, kind="plot", name="p.png").status_code == 403
        upload = _announce(owner, run["id"], data, kind="plot", name="p.png").json()
        assert _send(stranger, run["id"], upload["id"], 0, data).status_code == 403
        assert _send(viewer, run["id"], upload["id"], 0, data).status_code == 403
        assert _send(owner, run["id"], upload["id"], 0, data).json()["complete"]
        [item] = viewer.get(f"/api/v1/runs/{run['id']}/files").json()["items"]
        assert viewer.get(f"/api/v1/runs/{run['id']}/files/{item['id']}").content == data


def test_deleting_the_run_removes_its_uploads_and_files(
    client: ApiClient, settings: Settings, db_session: Session
) -> None:
    run = create_external(client)
    done = b"notes"
    upload = _announce(client, run["id"], done, kind="notes", name="notes.txt").json()
    _send(client, run["id"], upload["id"], 0, done)
    unfinished = _announce(client, run["id"], bytes(100)).json()
    _send(client, run["id"], unfinished["id"], 0, bytes(50))
    assert client.delete(f"/api/v1/runs/{run['id']}?force=true").status_code == 204
    assert not run_dir(settings.artifacts_dir, run["id"]).exists()
    for table in ("uploads", "run_files"):
        count = db_session.execute(
            text(f"SELECT count(*) FROM {table} WHERE run_id = :id"),
            {"id": run["id"]},
        ).scalar_one()
        assert count == 0, table


def test_a_cut_connection_keeps_what_arrived_and_the_upload_resumes(
    start_live: Callable[..., LiveServer], live_settings: Settings
) -> None:
    server = start_live()
    data = os.urandom(3 * FLUSH_BYTES)
    with server.http() as http:
        run = http.post("/api/v1/runs", json={"name": "cut", "external": True}).json()
        upload = _announce(http, run["id"], data).json()
        address = urlsplit(server.url)
        head = (
            f"PATCH /api/v1/runs/{run['id']}/uploads/{upload['id']} HTTP/1.1\r\n"
            f"Host: {address.netloc}\r\nAuthorization: Bearer {server.token}\r\n"
            f"Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        part = upload_part_path(live_settings.artifacts_dir, run["id"], upload["id"])
        with socket.create_connection((address.hostname, address.port)) as connection:
            connection.sendall(head.encode() + data[: 2 * FLUSH_BYTES])
            _wait_for(lambda: part.exists() and part.stat().st_size >= FLUSH_BYTES)
        url = f"/api/v1/runs/{run['id']}/uploads/{upload['id']}"
        _wait_for(lambda: http.get(url).json()["offset"] > 0)
        offset = http.get(url).json()["offset"]
        assert FLUSH_BYTES <= offset <= 2 * FLUSH_BYTES
        answer = _send(http, run["id"], upload["id"], offset, data[offset:])
        while answer.status_code == 409 and _error(answer)["code"] == "upload_busy":
            answer = _send(http, run["id"], upload["id"], offset, data[offset:])
        assert answer.json() == {"offset": len(data), "complete": True}
        assert http.get(f"/api/v1/runs/{run['id']}/checkpoints/best").content == data


def _wait_for(condition: Callable[[], bool], limit_s: float = 20) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "the server never got there"
        time.sleep(0.02)


def test_uploads_on_sqlite(tmp_path: Path, task_queue: RecordingTaskQueue) -> None:
    settings = Settings(
        data_dir=tmp_path / "embedded",
        broker_url="memory://",
        reaper_interval_s=0,
        allowed_hosts=["testserver"],
    )
    upgrade_database(settings.database_url)
    app = create_app(settings)
    app.dependency_overrides[get_task_queue] = lambda: task_queue
    with ApiClient(app, issue_token(app.state.session_factory)) as client:
        run = create_external(client)
        data = os.urandom(4000)
        upload = _announce(client, run["id"], data, kind="last", name="last.pt").json()
        assert _send(client, run["id"], upload["id"], 0, data[:1500]).json()["offset"] == 1500
        assert _send(client, run["id"], upload["id"], 1500, data[1500:]).json()["complete"]
        assert client.get(f"/api/v1/runs/{run['id']}/checkpoints/last").content == data
        other = _announce(client, run["id"], b"x", kind="notes", name="n.txt").json()
        assert _send(client, run["id"], other["id"], 0, b"y").status_code == 422
        assert client.delete(f"/api/v1/runs/{run['id']}?force=true").status_code == 204
