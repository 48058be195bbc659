"""The spool and the sender without a server: a torn last line is ignored, the sent mark
survives, metric records merge into requests of at most 10,000 points in order, a refused
record is skipped without the others, a superseded checkpoint is not uploaded, a refused token
stops the sending with everything left spooled, a log gap is renumbered, 503s are retried,
points the server would refuse are dropped before they are spooled, and a script that ends
without finishing its run finishes it as it ended."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from segtrack import track
from segtrack.tracking.api import TrackingApi
from segtrack.tracking.sender import Halted, Sender
from segtrack.tracking.spool import (
    RecordReader,
    RecordWriter,
    RunMeta,
    SentMark,
    Spool,
    latest_run_id,
)

Handler = Callable[[httpx.Request], httpx.Response | None]


class FakeServer:
    """Answers the tracking endpoints like the server; `refuse` may answer a request first."""

    def __init__(self, refuse: Handler = lambda request: None) -> None:
        self.requests: list[httpx.Request] = []
        self.accepted: list[httpx.Request] = []
        """The requests answered as the server would (not by `refuse`)."""
        self.refuse = refuse
        self.log_lines = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:  # noqa: PLR0911 (an endpoint each)
        self.requests.append(request)
        if (answer := self.refuse(request)) is not None:
            return answer
        self.accepted.append(request)
        path, method = request.url.path, request.method
        if path == "/api/v1/runs":
            return httpx.Response(201, json={"id": 7})
        if path.endswith("/uploads"):
            body = json.loads(request.content)
            upload = {**body, "id": "0" * 32, "offset": 0, "complete": False}
            return httpx.Response(201, json=upload)
        if "/uploads/" in path:
            return httpx.Response(200, json={"offset": len(request.read()), "complete": True})
        if path.endswith("/logs"):
            body = json.loads(request.content)
            self.log_lines = max(self.log_lines, body["first_line"] + len(body["lines"]))
            return httpx.Response(200, json={"log_lines": self.log_lines})
        if method in ("POST", "PATCH", "PUT"):
            return httpx.Response(200, json={})
        return httpx.Response(404, json={"error": {"code": "not_found", "message": path}})

    def bodies(self, suffix: str) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.url.path.endswith(suffix)]


def spool_with(tmp_path: Path, records: list[dict[str, Any]]) -> Spool:
    spool = Spool.create(tmp_path, RunMeta(client_key="k" * 32, server="http://tracker"))
    writer = RecordWriter(spool.records_path)
    writer.append(records)
    writer.close()
    return spool


def send_all(spool: Spool, server: FakeServer) -> Sender:
    sender = Sender(
        spool, TrackingApi("http://tracker", token="t", transport=httpx.MockTransport(server))
    )
    try:
        sender.drain(lambda: True)
    finally:
        sender.close()
    return sender


def metrics(key: str, steps: range) -> dict[str, Any]:
    return {
        "type": "metrics",
        "key": [key] * len(steps),
        "step": list(steps),
        "value": [float(step) for step in steps],
        "epoch": [None] * len(steps),
    }


def test_a_torn_last_line_is_ignored_and_reading_resumes_after_the_mark(tmp_path: Path) -> None:
    spool = spool_with(tmp_path, [metrics("a", range(2)), metrics("b", range(2))])
    with spool.records_path.open("a") as handle:
        handle.write('{"seq": 3, "type": "metr')  # the process died mid-line
    reader = RecordReader(spool.records_path, SentMark())
    first, second = reader.read(10)
    reader.close()
    assert (first.seq, second.seq) == (1, 2) and spool.unsent() == 2
    spool.save_sent(SentMark(first.seq, first.end))
    assert Spool.open(spool.folder).read_sent() == SentMark(1, first.end)
    with RecordReader(spool.records_path, spool.read_sent()) as reader:
        assert [record.seq for record in reader.read(10)] == [2]


def test_metric_records_merge_into_requests_of_at_most_10000_points_in_order(
    tmp_path: Path,
) -> None:
    records = [metrics("a", range(6000)), metrics("a", range(6000, 9000))]
    records += [metrics("a", range(9000, 12000)), {"type": "finish", "status": "succeeded"}]
    server = FakeServer()
    sender = send_all(spool_with(tmp_path, records), server)
    sizes = [len(body["points"]) for body in server.bodies("/metrics")]
    assert sizes == [9000, 3000]
    steps = [point["step"] for body in server.bodies("/metrics") for point in body["points"]]
    assert steps == list(range(12000))
    assert sender.sent == 4 and sender.spool.unsent() == 0
    assert server.requests[-1].method == "PATCH"  # the final status comes last


def test_a_refused_record_is_skipped_and_the_others_of_its_request_still_go(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/metrics") and b'"bad"' in request.content:
            return httpx.Response(422, json={"error": {"code": "invalid", "message": "no bad"}})
        return None

    records = [metrics("good", range(3)), metrics("bad", range(1)), metrics("later", range(2))]
    server = FakeServer(refuse)
    with caplog.at_level(logging.WARNING):
        sender = send_all(spool_with(tmp_path, records), server)
    stored = [
        point["key"]
        for request in server.accepted
        if request.url.path.endswith("/metrics")
        for point in json.loads(request.content)["points"]
    ]
    assert (
        stored == ["good"] * 3 + ["later"] * 2
    )  # the merged request, refused, went again record by record
    assert "refused record 2 (metrics)" in caplog.text and "no bad" in caplog.text
    assert sender.spool.unsent() == 0


def test_a_checkpoint_superseded_by_a_later_one_of_its_kind_is_not_uploaded(
    tmp_path: Path,
) -> None:
    spool = spool_with(tmp_path, [])
    records = []
    for epoch in (1, 2):
        blob = spool.blobs / f"{epoch}-best.pt"
        blob.write_bytes(bytes([epoch]) * 10)
        records.append(
            {
                "type": "file",
                "kind": "best",
                "name": "best.pt",
                "blob": f"blobs/{blob.name}",
                "size": 10,
                "sha256": "0" * 64,
                "epoch": epoch,
                "metric": None,
            }
        )
    writer = RecordWriter(spool.records_path)
    writer.append(records)
    writer.close()
    server = FakeServer()
    send_all(spool, server)
    assert [body["epoch"] for body in server.bodies("/uploads")] == [2]
    pieces = [r.content for r in server.requests if "/uploads/" in r.url.path]
    assert pieces == [b"\x02" * 10]
    assert not list(spool.blobs.iterdir())  # both copies left the spool


def test_a_refused_token_stops_sending_and_keeps_everything_spooled(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"code": "unauthorized", "message": "no"}})

    spool = spool_with(tmp_path, [metrics("a", range(3)), {"type": "finish", "status": "failed"}])
    sender = Sender(
        spool,
        TrackingApi("http://tracker", token="t", transport=httpx.MockTransport(FakeServer(refuse))),
    )
    with pytest.raises(Halted, match="no"):
        sender.drain(lambda: True)
    sender.close()
    assert spool.unsent() == 2 and spool.meta.run_id is None


def test_a_gap_in_the_log_is_renumbered_from_where_the_server_log_ends(tmp_path: Path) -> None:
    server = FakeServer()
    server.log_lines = 0

    def gap(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/logs"):
            first = json.loads(request.content)["first_line"]
            if first > server.log_lines:
                details = {"log_lines": server.log_lines}
                error = {"code": "conflict", "message": "gap", "details": details}
                return httpx.Response(409, json={"error": error})
        return None

    server.refuse = gap
    records = [{"type": "logs", "first_line": 5, "lines": ["six", "seven"]}]
    send_all(spool_with(tmp_path, records), server)
    assert server.bodies("/logs")[-1] == {"first_line": 0, "lines": ["six", "seven"]}


def test_unavailable_answers_are_retried_until_the_server_takes_the_record(
    tmp_path: Path,
) -> None:
    answers = iter([503, 429, None])

    def flaky(request: httpx.Request) -> httpx.Response | None:
        if not request.url.path.endswith("/metrics"):
            return None
        status = next(answers)
        return None if status is None else httpx.Response(status, headers={"Retry-After": "0"})

    server = FakeServer(flaky)
    sender = send_all(spool_with(tmp_path, [metrics("a", range(5))]), server)
    assert len(server.bodies("/metrics")) == 3 and sender.spool.unsent() == 0


def test_points_the_server_would_refuse_are_dropped_before_the_spool(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="segtrack.tracking"):
        run = track(spool_dir=tmp_path)
        for _ in range(3):
            run.log({"ok": 1.0, "nan": math.nan, " padded": 1.0, "": 2.0})
        run.log({"ok": 2.0}, epoch=7)
        run.log({"ok": 3.0})
        run.finish()
    lines = (tmp_path / run.key / "records.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    points = [
        point
        for record in records
        if record["type"] == "metrics"
        for point in zip(
            record["key"], record["step"], record["value"], record["epoch"], strict=True
        )
    ]
    assert points == [
        ("ok", 0, 1.0, None),
        ("ok", 1, 1.0, None),
        ("ok", 2, 1.0, None),
        ("ok", 7, 2.0, 7),
        ("ok", 8, 3.0, None),
    ]
    assert caplog.text.count("non-finite values are not logged") == 1
    assert caplog.text.count("whitespace") == 1 and caplog.text.count("non-empty") == 1


def test_segtrack_and_its_tracker_load_without_torch() -> None:
    code = (
        "import sys, segtrack; segtrack.track; "
        "import segtrack.tracking.sync, segtrack.tracking.sender; "
        "assert 'torch' not in sys.modules, 'torch was loaded'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_a_script_that_ends_without_finishing_is_finished_as_it_ended(tmp_path: Path) -> None:
    script = (
        "import segtrack, sys; "
        f"run = segtrack.track(spool_dir={str(tmp_path)!r}); "
        "run.log({'loss': 1.0}, step=0); "
        "raise RuntimeError('no more data')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1 and "RuntimeError: no more data" in done.stderr
    (folder,) = tmp_path.iterdir()
    last = json.loads((folder / "records.jsonl").read_text().splitlines()[-1])
    assert (last["type"], last["status"], last["reason"]) == (
        "finish",
        "failed",
        "RuntimeError: no more data",
    )


def test_a_resumed_training_finds_the_newest_run_its_folder_sent_to_that_server(
    tmp_path: Path,
) -> None:
    for key, server, run_id, created_at in [
        ("a" * 32, "http://tracker", 3, "2026-01-01T10:00:00+00:00"),
        ("b" * 32, "http://tracker", 5, "2026-01-02T10:00:00+00:00"),
        ("c" * 32, "http://elsewhere", 9, "2026-01-03T10:00:00+00:00"),
        ("d" * 32, "http://tracker", None, "2026-01-04T10:00:00+00:00"),  # never reached it
    ]:
        meta = RunMeta(client_key=key, server=server, run_id=run_id, created_at=created_at)
        Spool.create(tmp_path, meta)
    assert latest_run_id(tmp_path, "http://tracker/") == 5
    assert latest_run_id(tmp_path / "missing", "http://tracker") is None
