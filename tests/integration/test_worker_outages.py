"""A worker run outlasts a PostgreSQL restart and a Redis restart in the middle of its training:
it succeeds with every epoch's metrics, previews and checkpoints stored exactly once, and the
worker takes the next run through the restarted broker.

The test starts its own PostgreSQL cluster and redis-server on free ports (the shared ones are
never restarted), a real API and a real worker. The database stays away longer than the heartbeat
timeout, so the reaper must give the worker time to be seen again before it judges the run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from segtrack.client import SegtrackClient
from server.artifacts import log_path
from server.models import Checkpoint, Metric, Preview, Run
from server.settings import Settings
from tests.integration.services import TINY, Service, admin_token, answers, wait_for
from tests.own_servers import OwnPostgres, OwnRedis, free_port
from trainer.data.demo import make_demo_dataset

EPOCHS = 200
"""About 20 s of training here (the outages take about 10 s of it: training goes on meanwhile),
enough that the run is still far from its end when both outages are over."""
HEARTBEAT_TIMEOUT_S = 4.0
DATABASE_OUTAGE_S = 5.0
"""Longer than the heartbeat timeout: the worker's heartbeats fail too."""
BROKER_OUTAGE_S = 2.0
EPOCH_KEYS = ("lr", "train/loss", "val/loss", "val/iou", "val/dice", "val/miou")


@dataclass
class Outages:
    service: Service
    client: SegtrackClient
    postgres: OwnPostgres
    redis: OwnRedis
    database: Engine
    """Reads of the test itself: a new connection each, so a restart leaves none broken."""


@pytest.fixture
def outages(tmp_path: Path) -> Iterator[Outages]:
    data_dir = tmp_path / "data"
    make_demo_dataset(data_dir / "datasets" / "demo", count=16, size=32, seed=5)
    postgres = OwnPostgres()
    own_redis = OwnRedis(tmp_path)
    service: Service | None = None
    try:
        postgres.start()
        own_redis.start()
        port = free_port()
        environment = {
            **os.environ,
            "SEGTRACK_DATA_DIR": str(data_dir),
            "SEGTRACK_DATABASE_URL": postgres.url,
            "SEGTRACK_BROKER_URL": own_redis.url,
            "SEGTRACK_REDIS_URL": own_redis.url,
            "SEGTRACK_HEARTBEAT_TIMEOUT_S": str(HEARTBEAT_TIMEOUT_S),
            "SEGTRACK_REAPER_INTERVAL_S": "0.5",
            "SEGTRACK_REDISPATCH_AFTER_S": "3",
            "SEGTRACK_SYSTEM_METRICS_INTERVAL_S": "1",
            "SEGTRACK_WORKER_OUTAGE_LIMIT_S": "120",
            "NO_ALBUMENTATIONS_UPDATE": "1",
            "OMP_NUM_THREADS": "1",
        }
        token = admin_token(environment, "outages")
        service = Service(environment, f"http://127.0.0.1:{port}", tmp_path, token)
        service.start_api(port)
        service.start_worker()
        client = SegtrackClient(service.url, token=token, timeout=10)
        wait_for(lambda: answers(client), 60, "the API to start")
        client._call("POST", "/api/v1/datasets", json={"name": "demo", "path": "demo"})
        wait_for(lambda: client._call("GET", "/api/v1/workers")["workers"], 90, "a worker")
        database = create_engine(postgres.url, poolclass=NullPool)
        yield Outages(service, client, postgres, own_redis, database)
        database.dispose()
        client.close()
    finally:
        if service is not None:
            service.stop()
        own_redis.kill()
        postgres.remove()


def _progress(database: Engine, run_id: int) -> tuple[str, int] | None:
    """The run's status and epochs done; None while the database is away."""
    try:
        with database.connect() as connection:
            row = connection.execute(
                select(Run.status, Run.epochs_done).where(Run.id == run_id)
            ).one()
    except OperationalError:
        return None
    return row.status, row.epochs_done


def _training(outages: Outages, run_id: int, past_epoch: int) -> int:
    """Wait until the run is training beyond `past_epoch`; returns its epochs done."""

    def beyond() -> int | None:
        progress = _progress(outages.database, run_id)
        if progress is None:
            return None
        status, epochs = progress
        started = status == "running" or (status == "queued" and epochs == 0)
        assert started, f"the run is {status} after {epochs} epochs"
        return epochs if epochs > past_epoch else None

    epochs: int = wait_for(beyond, 60, f"epoch {past_epoch + 1}")
    assert epochs < EPOCHS - 20, "the run nearly ended before the outage: make it longer"
    return epochs


def test_a_run_outlasts_a_postgres_and_a_redis_restart(outages: Outages) -> None:
    client, database = outages.client, outages.database
    run_id: int = client.submit({**TINY, "epochs": EPOCHS}, name="outlasts outages")["id"]

    _training(outages, run_id, past_epoch=1)
    outages.postgres.stop()
    time.sleep(DATABASE_OUTAGE_S)  # epochs end meanwhile: their reports wait in the worker
    outages.postgres.start()
    after_postgres = _training(outages, run_id, past_epoch=0)

    outages.redis.kill()
    time.sleep(BROKER_OUTAGE_S)
    outages.redis.start()
    _training(outages, run_id, past_epoch=after_postgres + 1)

    final = client.wait(run_id, timeout=120)
    assert final["status"] == "succeeded", final.get("failure_reason")
    assert final["epochs_done"] == EPOCHS and final["failure_reason"] is None
    environment = final["environment"]
    assert environment["origin"] == "worker" and "worker.run_child" in environment["command"]
    assert environment["torch"] and environment["host"]

    run_log = log_path(Settings(data_dir=outages.service.logs / "data").artifacts_dir, run_id)
    assert "retrying" in run_log.read_text(), "a report met the database outage"

    with database.connect() as connection:
        counts = dict(
            connection.execute(
                select(Metric.key, func.count())
                .where(Metric.run_id == run_id, Metric.key.in_(EPOCH_KEYS))
                .group_by(Metric.key)
            ).all()
        )
        steps = connection.scalars(
            select(Metric.step)
            .where(Metric.run_id == run_id, Metric.key == "val/iou")
            .order_by(Metric.step)
        ).all()
        previews = dict(
            connection.execute(
                select(Preview.epoch, func.count())
                .where(Preview.run_id == run_id)
                .group_by(Preview.epoch)
            ).all()
        )
        checkpoints = dict(
            connection.execute(
                select(Checkpoint.kind, Checkpoint.epoch).where(Checkpoint.run_id == run_id)
            ).all()
        )
        system_points = connection.scalar(
            select(func.count()).where(Metric.run_id == run_id, Metric.key.startswith("sys/"))
        )
    assert counts == dict.fromkeys(EPOCH_KEYS, EPOCHS)
    assert steps == list(range(1, EPOCHS + 1))
    assert previews == dict.fromkeys(range(1, EPOCHS + 1), TINY["preview_count"])
    assert checkpoints["last"] == EPOCHS and "best" in checkpoints
    assert system_points, "system metrics were sampled beside the training"

    # The worker came through the broker's restart: it takes the next run.
    worker = outages.service.workers[0]
    assert worker.poll() is None, "the worker is still running"
    after = client.submit({**TINY, "epochs": 1}, name="after the outages")
    assert client.wait(after["id"], timeout=90)["status"] == "succeeded"
