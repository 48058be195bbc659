"""The broker round trip: a real API and real Celery workers through Redis and PostgreSQL.

Runs are submitted over HTTP, trained on the CPU by a worker process, and watched through the API
and the Server-Sent Events stream; one run is cancelled, two workers are killed with SIGKILL and
the broker loses a message.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from segtrack.client import SegtrackClient
from tests.integration.services import (
    REDIS_URL,
    TINY,
    Service,
    serving,
    wait_for,
)
from trainer.data.demo import make_demo_dataset

HEARTBEAT_TIMEOUT_S = 4.0
REDISPATCH_AFTER_S = 3.0


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    data_dir = tmp_path_factory.mktemp("service")
    make_demo_dataset(data_dir / "datasets" / "demo", count=24, size=48, seed=7)
    settings = {
        "SEGTRACK_HEARTBEAT_TIMEOUT_S": str(HEARTBEAT_TIMEOUT_S),
        "SEGTRACK_REAPER_INTERVAL_S": "0.5",
        "SEGTRACK_REDISPATCH_AFTER_S": str(REDISPATCH_AFTER_S),
    }
    with serving(data_dir, "integration", settings) as running:
        yield running


@pytest.fixture
def client(service: Service) -> Iterator[SegtrackClient]:
    with SegtrackClient(service.url, token=service.token, timeout=30) as opened:
        yield opened


@pytest.fixture(scope="module")
def finished_run(service: Service) -> dict[str, Any]:
    """A one-epoch run trained to the end, as the run found once it had ended; the tests that
    use it only read it (or resend its message)."""
    with SegtrackClient(service.url, token=service.token, timeout=30) as client:
        run = client.submit({**TINY, "epochs": 1}, name="trained once")
        finished = client.wait(run["id"], timeout=120)
    assert finished["status"] == "succeeded", finished.get("failure_reason")
    return finished


def _status(client: SegtrackClient, run_id: int) -> str:
    status: str = client.get_run(run_id)["status"]
    return status


def test_a_run_trains_on_a_worker_and_streams_its_epochs(
    client: SegtrackClient, service: Service
) -> None:
    events: list[dict[str, Any]] = []
    ready = threading.Event()

    def listen() -> None:
        with SegtrackClient(client.base_url, token=service.token, timeout=60) as listener:
            stream = listener.stream_events(read_timeout=60)
            ready.set()
            for event in stream:
                events.append(event)
                if event.get("kind") == "status" and event.get("status") == "succeeded":
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    ready.wait(10)
    run = client.submit({**TINY, "epochs": 3}, name="round trip", tags=["integration"])
    assert run["status"] == "queued"

    final = client.wait(run["id"], timeout=180)
    listener.join(timeout=30)

    assert final["status"] == "succeeded", final.get("failure_reason")
    assert final["epochs_done"] == 3 and final["worker"] and final["device"].startswith("cpu")
    info = final["run_info"]
    assert info["num_train"] + info["num_val"] == 24 and info["in_channels"] == 3
    assert info["parameters"] > 0 and info["steps_per_epoch"] >= 1 and info["start_epoch"] == 1
    assert len(info["mask_encoding"]["values"]) == len(final["class_names"])
    series = client.metrics(run["id"], keys=["val/iou", "train/loss", "lr"])
    assert series["val/iou"]["step"] == [1, 2, 3]
    assert final["best_val_iou"] == pytest.approx(max(series["val/iou"]["value"]))
    previews = client._call("GET", f"/api/v1/runs/{run['id']}/previews")
    assert previews["epochs"] == [1, 2, 3] and len(previews["samples"]) == 2
    image = client._http.get(previews["samples"][0]["prediction_url"])
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    checkpoints = client._call("GET", f"/api/v1/runs/{run['id']}/checkpoints")
    assert {item["kind"] for item in checkpoints["checkpoints"]} == {"best", "last"}
    confusion = client.confusion(run["id"])  # every validation image scored, every epoch
    assert confusion["epochs"] == [1, 2, 3] and confusion["class_names"] == final["class_names"]
    scored = client.images(run["id"], epoch=3)
    assert scored["total"] == info["num_val"]
    assert sum(item["pixels"] for item in scored["items"]) == sum(map(sum, confusion["matrix"]))
    logs = client._call("GET", f"/api/v1/runs/{run['id']}/logs")
    assert any(f"[run {run['id']}]" in line and "epoch 3" in line for line in logs["lines"])

    mine = [event for event in events if event.get("run_id") == run["id"]]
    statuses = [event["status"] for event in mine if event["kind"] == "status"]
    assert statuses == ["running", "succeeded"]
    epochs_streamed = {
        point["step"]
        for event in mine
        if event["kind"] == "metrics"
        for point in event.get("points", [])
        if point["key"] == "val/iou"
    }
    assert epochs_streamed == {1, 2, 3}
    assert any(event["kind"] == "preview" for event in mine)


def test_a_running_run_is_cancelled_within_an_epoch(client: SegtrackClient) -> None:
    run = client.submit({**TINY, "epochs": 500}, name="to cancel")
    wait_for(lambda: client.get_run(run["id"])["epochs_done"] >= 1, 120, "a first epoch")
    cancelling = client.cancel(run["id"])
    assert cancelling["status"] in {"cancelling", "cancelled"}

    final = client.wait(run["id"], timeout=60)
    assert final["status"] == "cancelled"
    assert final["epochs_done"] < 500
    checkpoints = client._call("GET", f"/api/v1/runs/{run['id']}/checkpoints")
    assert "last" in {item["kind"] for item in checkpoints["checkpoints"]}


def test_a_killed_worker_fails_its_run_or_requeues_it_to_resume(
    service: Service, client: SegtrackClient
) -> None:
    lost = client.submit({**TINY, "epochs": 500}, name="worker lost")
    wait_for(lambda: _status(client, lost["id"]) == "running", 120, "the run to start")
    service.workers[-1].send_signal(signal.SIGKILL)
    final = client.wait(lost["id"], timeout=60)
    assert final["status"] == "failed"
    assert "worker lost" in final["failure_reason"]

    service.start_worker()
    # Epochs enough that the kill below lands well before the end (seconds of training).
    retried = client.submit({**TINY, "epochs": 20}, name="retried", max_retries=1)
    checkpoints = f"/api/v1/runs/{retried['id']}/checkpoints"
    # The last checkpoint is what a resume starts from (best.pt is written just before it).
    wait_for(
        lambda: any(
            item["kind"] == "last" for item in client._call("GET", checkpoints)["checkpoints"]
        ),
        180,
        "a last checkpoint",
    )
    service.workers[-1].send_signal(signal.SIGKILL)
    # The reaper requeues the run; a fresh worker resumes it from its last checkpoint.
    wait_for(lambda: _status(client, retried["id"]) == "queued", 60, "the requeue")
    service.start_worker()
    final = client.wait(retried["id"], timeout=180)
    assert final["status"] == "succeeded", final.get("failure_reason")
    assert final["attempt"] == 1 and final["epochs_done"] == 20
    series = client.metrics(retried["id"], keys=["val/iou"])
    assert series["val/iou"]["step"] == list(range(1, 21))
    logs = client._call("GET", f"/api/v1/runs/{retried['id']}/logs")
    assert any("resuming after epoch" in line for line in logs["lines"])


def test_a_redelivered_message_never_trains_a_run_twice(
    service: Service, client: SegtrackClient, finished_run: dict[str, Any]
) -> None:
    from celery import Celery

    run = finished_run
    sender = Celery(broker=REDIS_URL, set_as_current=False)
    sender.send_task(
        "training.run", args=[run["id"]], queue=service.environment["SEGTRACK_DEFAULT_QUEUE"]
    )
    sender.close()
    probe = client.submit({**TINY, "epochs": 1}, name="after the duplicate")
    assert client.wait(probe["id"], timeout=120)["status"] == "succeeded"
    again = client.get_run(run["id"])
    assert again["status"] == "succeeded"
    assert again["started_at"] == run["started_at"]
    assert again["finished_at"] == run["finished_at"]


def test_a_higher_priority_run_trains_first(client: SegtrackClient) -> None:
    blocker = client.submit({**TINY, "epochs": 500}, name="keeps the worker busy")
    wait_for(lambda: _status(client, blocker["id"]) == "running", 120, "the blocker to start")
    low = client.submit({**TINY, "epochs": 1}, name="low", priority=0)
    high = client.submit({**TINY, "epochs": 1}, name="high", priority=9)
    queue = client._call("GET", "/api/v1/workers")["queue"]
    assert [item["id"] for item in queue][:2] == [high["id"], low["id"]]

    client.cancel(blocker["id"])
    low_final = client.wait(low["id"], timeout=120)
    high_final = client.wait(high["id"], timeout=120)
    assert low_final["status"] == high_final["status"] == "succeeded"
    assert high_final["started_at"] < low_final["started_at"]


def _waiting_messages(broker: redis.Redis, queue: str) -> list[str]:
    """Keys of the queue's priority lists that hold messages (the Redis transport's layout)."""
    keys = [queue, *(f"{queue}:{step}" for step in range(1, 10))]
    return [key for key in keys if broker.llen(key)]


def test_a_message_the_broker_lost_is_sent_again(service: Service, client: SegtrackClient) -> None:
    queue = service.environment["SEGTRACK_DEFAULT_QUEUE"]
    broker = redis.Redis.from_url(REDIS_URL)
    blocker = client.submit({**TINY, "epochs": 500}, name="keeps the worker busy")
    wait_for(lambda: _status(client, blocker["id"]) == "running", 120, "the blocker to start")
    stranded = client.submit({**TINY, "epochs": 1}, name="its message is lost")
    keys = wait_for(lambda: _waiting_messages(broker, queue), 10, "the message in Redis")
    broker.delete(*keys)  # as a Redis restart without persistence would
    broker.close()

    client.cancel(blocker["id"])
    assert client.wait(blocker["id"], timeout=60)["status"] == "cancelled"
    final = client.wait(stranded["id"], timeout=120)
    assert final["status"] == "succeeded", final.get("failure_reason")
    api_log = (service.logs / "api.log").read_text()
    assert f"run {stranded['id']}: still queued" in api_log


def test_a_run_fine_tunes_from_another_runs_checkpoint(
    client: SegtrackClient, finished_run: dict[str, Any]
) -> None:
    source = finished_run
    tuned = client.submit(
        {**TINY, "epochs": 1, "init_from": f"run:{source['id']}"}, name="fine-tuned"
    )
    assert tuned["config"]["init_from"].endswith(f"runs/{source['id']}/checkpoints/best.pt")
    final = client.wait(tuned["id"], timeout=120)
    assert final["status"] == "succeeded", final.get("failure_reason")
    logs = client._call("GET", f"/api/v1/runs/{tuned['id']}/logs")
    assert any("init_from" in line and "loaded" in line for line in logs["lines"])
