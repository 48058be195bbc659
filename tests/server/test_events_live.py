"""Live events over SSE from a real server: a client hears a commit (Redis or database polling),
resumes with Last-Event-ID from the last event or from the position its stream started at, a
run's stream carries its dataset's colour changes, `?kind=` keeps only some kinds, quiet streams
get keep-alives, and the cursor delivers late-committed ids."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from segtrack.client import SegtrackClient
from server.db import create_db_engine, make_session_factory, session_scope
from server.event_hub import Cursor
from server.events import EventKind, EventRecord, fetch_events, notify_committed, record_event
from tests.server.helpers import LiveServer, sse_messages

Start = Callable[..., LiveServer]


def _next_kind(stream: Iterator[dict[str, object]], kind: str) -> dict[str, object]:
    for event in stream:
        if event.get("kind") == kind:
            return event
    raise AssertionError(f"the stream ended before a {kind} event")


@pytest.fixture(params=["poll", "redis"])
def server(request: pytest.FixtureRequest, start_live: Start) -> LiveServer:
    if request.param == "redis":
        return start_live(redis_url=request.getfixturevalue("redis_url"))
    return start_live()


def test_a_client_hears_metrics_after_commit_and_resumes(server: LiveServer) -> None:
    with server.http() as http:
        run = http.post("/api/v1/runs", json={"external": True, "name": "live"}).json()
        with http.stream("GET", f"/api/v1/runs/{run['id']}/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = sse_messages(response)
            assert next(stream) == {"ready": True}
            points = [{"key": "val/iou", "step": 1, "value": 0.5, "epoch": 1}]
            http.post(f"/api/v1/runs/{run['id']}/metrics", json={"points": points})
            http.patch(f"/api/v1/runs/{run['id']}", json={"status": "succeeded"})
            metrics = _next_kind(stream, "metrics")
            assert metrics["run_id"] == run["id"]
            assert metrics["points"] == points
            status = _next_kind(stream, "status")
            assert status["status"] == "succeeded"

        # Reconnecting with Last-Event-ID replays what came after it.
        headers = {"Last-Event-ID": str(metrics["id"])}
        with http.stream("GET", f"/api/v1/runs/{run['id']}/events", headers=headers) as response:
            stream = sse_messages(response)
            next(stream)
            replayed = next(stream)
            assert replayed["id"] > metrics["id"]  # type: ignore[operator]
            assert replayed["kind"] in ("status", "run")

        with http.stream("GET", f"/api/v1/events?after_id={metrics['id']}") as response:
            stream = sse_messages(response)
            next(stream)
            assert _next_kind(stream, "status")["run_id"] == run["id"]


def test_a_reconnect_from_the_first_message_misses_nothing_that_happened_offline(
    server: LiveServer,
) -> None:
    with server.http() as http:
        run = http.post("/api/v1/runs", json={"external": True, "name": "offline"}).json()
        url = f"/api/v1/runs/{run['id']}/events"
        with http.stream("GET", url) as response:
            lines = response.iter_lines()
            assert next(lines) == "retry: 2000"
            name, _, position = next(lines).partition(": ")
            assert name == "id" and position.isdigit()
        # Written while no stream was open.
        for step in (1, 2):
            points = [{"key": "loss", "step": step, "value": 1.0 / step}]
            http.post(f"/api/v1/runs/{run['id']}/metrics", json={"points": points})

        # The browser's Last-Event-ID wins over the ?after_id= of the URL it reconnects to.
        headers = {"Last-Event-ID": position}
        with http.stream("GET", f"{url}?after_id=0", headers=headers) as response:
            stream = sse_messages(response)
            assert next(stream) == {"ready": True}
            first, second = next(stream), next(stream)
        assert [first["kind"], second["kind"]] == ["metrics", "metrics"]
        assert [first["points"][0]["step"], second["points"][0]["step"]] == [1, 2]  # type: ignore[index]
        assert int(position) < first["id"] < second["id"]  # type: ignore[operator]

        # A Last-Event-ID that is no event id is ignored, never an error.
        for junk in ("²", "٣", "-1", "9" * 30, "abc"):
            junk_header = {b"Last-Event-ID": junk.encode()}
            with http.stream("GET", url, headers=junk_header) as response:
                assert response.status_code == 200
                assert next(sse_messages(response)) == {"ready": True}


def test_quiet_streams_get_keepalives(start_live: Start) -> None:
    server = start_live(sse_keepalive_s=0.05)
    with (
        server.http() as http,
        http.stream("GET", "/api/v1/events") as response,
    ):
        lines = (line for line in response.iter_lines() if line)
        assert next(line for line in lines if line.startswith(":")) == ": keep-alive"


def test_worker_commits_reach_the_global_stream(server: LiveServer) -> None:
    """A commit from another process's session (a worker) plus its notification."""
    settings = server.app.state.settings
    engine = create_db_engine(settings.database_url)
    factory = make_session_factory(engine)
    with (
        server.http() as http,
        http.stream("GET", "/api/v1/events") as response,
    ):
        stream = sse_messages(response)
        next(stream)
        with session_scope(factory) as session:
            record_event(session, "status", None, {"status": "running", "probe": True})
        notify_committed(settings.redis_url)
        event = _next_kind(stream, "status")
        assert event["probe"] is True and event["run_id"] is None
    engine.dispose()


def test_run_streams_carry_dataset_colour_changes_and_kind_filters(
    server: LiveServer, shapes_dataset: Path
) -> None:
    with server.http() as http:
        dataset = http.post("/api/v1/datasets", json={"name": "shapes", "path": "shapes"}).json()
        run = http.post("/api/v1/runs", json={"external": True, "name": "on-shapes"}).json()
        with (
            http.stream("GET", f"/api/v1/runs/{run['id']}/events") as run_response,
            http.stream("GET", "/api/v1/events?kind=dataset") as dataset_response,
        ):
            run_stream, dataset_stream = sse_messages(run_response), sse_messages(dataset_response)
            assert next(run_stream) == {"ready": True} and next(dataset_stream) == {"ready": True}
            points = [{"key": "val/iou", "step": 1, "value": 0.5}]
            http.post(f"/api/v1/runs/{run['id']}/metrics", json={"points": points})
            colours = ["#101010", "#abcdef"]
            patched = http.patch(
                f"/api/v1/datasets/{dataset['id']}", json={"class_colors": colours}
            )
            assert patched.status_code == 200, patched.text

            assert next(run_stream)["kind"] == "metrics"
            event = next(run_stream)
            assert event["kind"] == "dataset" and event["run_id"] is None
            assert event["action"] == "colors" and event["class_colors"] == colours
            assert event["dataset_id"] == dataset["id"] and event["name"] == "shapes"
            # The metrics event went by first; the filtered stream skipped it.
            filtered = next(dataset_stream)
            assert filtered["kind"] == "dataset" and filtered["id"] == event["id"]

    with SegtrackClient(server.url, token=server.token) as client:
        replayed = next(
            client.stream_events(run["id"], after_id=0, kinds=["dataset"], read_timeout=5)
        )
        assert replayed["id"] == event["id"]


def test_unknown_run_stream_is_404(start_live: Start) -> None:
    server = start_live()
    with server.http() as http:
        response = http.get("/api/v1/runs/98765/events")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def _record(event_id: int) -> EventRecord:
    return EventRecord(event_id, "status", None, datetime.now(UTC), {})


def test_cursor_waits_for_late_ids_then_gives_up() -> None:
    cursor = Cursor(10)
    assert [row.id for row in cursor.accept([_record(11), _record(13)], now=0.0)] == [11, 13]
    assert cursor.floor == 11 and cursor.waiting
    # Id 12 commits late: delivered once, and the floor moves past it.
    assert [row.id for row in cursor.accept([_record(12), _record(13)], now=1.0)] == [12]
    assert cursor.floor == 13 and not cursor.waiting
    assert cursor.accept([_record(15)], now=2.0)[0].id == 15
    assert cursor.floor == 13
    assert cursor.accept([_record(15)], now=100.0) == []
    assert cursor.floor == 15, "a gap that never fills is given up"


def test_fetch_events_of_a_run_include_events_of_no_run(db_session: Session) -> None:
    record_event(db_session, "metrics", 1, {"n": 1})
    record_event(db_session, "metrics", 2, {"n": 2})
    record_event(db_session, "dataset", None, {"n": 3})
    record_event(db_session, "status", 1, {"n": 4})
    db_session.flush()

    def numbers(run_id: int | None = None, kinds: list[EventKind] | None = None) -> list[int]:
        rows = fetch_events(db_session, 0, run_id=run_id, kinds=kinds)
        return [row.payload["n"] for row in rows]

    assert numbers() == [1, 2, 3, 4]
    assert numbers(run_id=1) == [1, 3, 4]
    assert numbers(run_id=2) == [2, 3]
    assert numbers(kinds=["dataset"]) == [3]
    assert numbers(kinds=["metrics", "status"]) == [1, 2, 4]
    assert numbers(run_id=1, kinds=["metrics"]) == [1]
    ids = [row.id for row in fetch_events(db_session, 0)]
    between = fetch_events(db_session, ids[0], until_id=ids[2], run_id=2)
    assert [row.payload["n"] for row in between] == [2, 3]


def test_events_survive_a_rollback_only_when_committed(db_session: Session) -> None:
    record_event(db_session, "status", None, {"status": "running"})
    db_session.rollback()
    assert fetch_events(db_session, 0) == []
