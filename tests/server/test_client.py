"""segtrack.client against a live server: submit, wait, stream, metrics, checkpoint download,
and buffered logging from an external run that survives a tracker outage."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from segtrack.client import ExternalRun, SegtrackClient, SegtrackError
from server.artifacts import checkpoint_dir
from server.db import create_db_engine, make_session_factory, session_scope
from server.preview.service import record_checkpoint
from server.run.lifecycle import claim_run, finish_run
from tests.server.helpers import LiveServer, valid_config

Start = Callable[..., LiveServer]


def test_submit_wait_metrics_and_checkpoint(
    start_live: Start, shapes_dataset: Path, tmp_path: Path
) -> None:
    server = start_live()
    settings = server.app.state.settings
    engine = create_db_engine(settings.database_url)
    factory = make_session_factory(engine)
    with SegtrackClient(server.url) as client:
        run = client.submit(valid_config(), name="via-client", tags=["c"], priority=3)
        assert run["status"] == "queued" and run["priority"] == 3

        def worker() -> None:
            time.sleep(0.3)
            with session_scope(factory) as session:
                claim_run(session, run["id"], worker="w", device="cpu")
            client_points = [{"key": "val/iou", "step": 1, "value": 0.7, "epoch": 1}]
            with SegtrackClient(server.url) as other:
                other.log_metrics(run["id"], client_points)
            folder = checkpoint_dir(settings.artifacts_dir, run["id"])
            folder.mkdir(parents=True)
            (folder / "best.pt").write_bytes(b"\x00weights")
            with session_scope(factory) as session:
                record_checkpoint(
                    session, settings.artifacts_dir, run["id"], "best", folder / "best.pt",
                    epoch=1, metric=0.7,
                )  # fmt: skip
                finish_run(session, run["id"], "succeeded")

        thread = threading.Thread(target=worker)
        thread.start()
        final = client.wait(run["id"], timeout=20, poll=1.0)
        thread.join()
        assert final["status"] == "succeeded"
        assert client.metrics(run["id"])["val/iou"]["value"] == [0.7]
        saved = client.download_checkpoint(run["id"], "best", tmp_path)
        assert saved.name == f"run-{run['id']}-best.pt" and saved.read_bytes() == b"\x00weights"
        with pytest.raises(SegtrackError) as error:
            client.download_checkpoint(run["id"], "last", tmp_path)
        assert error.value.status_code == 404
        assert [item["id"] for item in client.list_runs(tag="c")] == [run["id"]]
        with pytest.raises(TimeoutError):
            client.wait(client.submit(valid_config())["id"], timeout=0.5, poll=0.2)
    engine.dispose()


def test_errors_carry_the_server_message(start_live: Start) -> None:
    server = start_live()
    with SegtrackClient(server.url) as client:
        with pytest.raises(SegtrackError) as error:
            client.submit({"dataset": "shapes", "model": "resnet"})
        assert error.value.status_code == 422 and "model" in error.value.message
        with pytest.raises(SegtrackError, match="404"):
            client.get_run(123456)


def test_external_run_logs_in_batches(start_live: Start) -> None:
    server = start_live()
    with SegtrackClient(server.url) as client:
        events: list[dict[str, object]] = []
        with client.create_external_run("script", params={"lr": 0.1}, flush_interval=0.1) as run:
            assert isinstance(run, ExternalRun)
            started = time.perf_counter()
            for step in range(2_500):
                run.log("train/loss", 1.0 / (step + 1), step)
            run.log("val/iou", float("nan"), 0)
            assert time.perf_counter() - started < 1.0, "log() must not wait for the network"
            run.log_dict({"val/iou": 0.5, "val/dice": 0.6}, step=1, epoch=1)
            assert run.flush(timeout=10)
            stream = client.stream_events(run.id, after_id=0, read_timeout=5)
            for event in stream:
                events.append(event)
                if event.get("kind") == "metrics":
                    break
        final = client.get_run(run.id)
        assert final["status"] == "succeeded" and final["params"] == {"lr": 0.1}
        series = client.metrics(run.id)
        assert len(series["train/loss"]["step"]) == 2_500
        assert series["val/iou"]["value"] == [0.5]
        assert any(event.get("kind") == "metrics" for event in events)


def test_external_run_survives_a_tracker_outage(
    start_live: Start, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_live()
    client = SegtrackClient(server.url)
    run = client.create_external_run("flaky", flush_interval=0.05, close_timeout=1.0)
    server.__exit__()  # the tracker goes away mid-training
    with caplog.at_level(logging.WARNING, logger="segtrack.client"):
        for step in range(100):
            run.log("loss", float(step), step)
        assert run.flush(timeout=0.5) is False
        run.close("failed", failure_reason="boom")
    assert "cannot reach the tracker" in caplog.text
    client.close()


def test_failed_block_marks_the_run_failed(start_live: Start) -> None:
    server = start_live()
    with SegtrackClient(server.url) as client:
        with pytest.raises(RuntimeError), client.create_external_run("crash") as run:
            run.log("loss", 1.0, 0)
            raise RuntimeError("diverged")
        final = client.get_run(run.id)
        assert final["status"] == "failed" and final["failure_reason"] == "RuntimeError: diverged"
