"""Stored rollups (PostgreSQL): after any ingest (batches out of order, replays, changed values,
points landing in old buckets, writers at once) every bucket equals the rule applied to the
stored points; charts read from them get exactly the points of downsampling every point, full
resolution reads still give every point, data loaded around the ingest is read point by point,
the migration builds rollups of points already stored, and deleting a run deletes them."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from typing import Any, cast

import anyio
import httpx
import numpy as np
import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from server.db import create_db_engine, downgrade_database, upgrade_database
from server.metric.downsample import ROLLUP_WIDTHS, downsample
from server.metric.rollup import rebuild_rollups
from server.models import Metric, MetricRollup, MetricSummary, Run, utcnow
from tests.conftest import create_scratch_database, drop_scratch_database
from tests.server.helpers import ApiClient, LiveServer, create_external

Row = tuple[int, int, float, int, float, int, float, int, float]
"""count, first step and value, lowest step and value, highest step and value, last step and
value of one bucket."""


def _post(client: ApiClient, run_id: int, points: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post(f"/api/v1/runs/{run_id}/metrics", json={"points": points})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _expected(points: dict[int, float]) -> dict[tuple[int, int], Row]:
    """(width, bucket) -> row, by the rule: the earliest lowest and the latest highest."""
    by_bucket: dict[tuple[int, int], list[tuple[int, float]]] = defaultdict(list)
    for step in sorted(points):
        for width in ROLLUP_WIDTHS:
            by_bucket[width, step // width].append((step, points[step]))
    rows: dict[tuple[int, int], Row] = {}
    for place, members in by_bucket.items():
        low = min(members, key=lambda point: (point[1], point[0]))
        high = max(members, key=lambda point: (point[1], point[0]))
        first, last = members[0], members[-1]
        rows[place] = (len(members), *first, *low, *high, *last)
    return rows


def _stored(session: Session, run_id: int, key: str) -> dict[tuple[int, int], Row]:
    table = MetricRollup
    query = select(
        table.width, table.bucket, table.count, table.first_step, table.first_value,
        table.min_step, table.min_value, table.max_step, table.max_value, table.last_step,
        table.last_value,
    ).where(table.run_id == run_id, table.key == key)  # fmt: skip
    return {(row[0], row[1]): cast(Row, tuple(row[2:])) for row in session.execute(query)}


def test_ingest_out_of_order_with_replays_and_changed_values_keeps_every_bucket_exact(
    client: ApiClient, db_session: Session
) -> None:
    rng = random.Random(7)
    run = create_external(client, "rollups")
    truth: dict[int, float] = {}
    steps = rng.sample(range(100_000), 2_000)
    # Batches in random order, then replays of some with new values (a bucket's lowest point
    # raised, its highest lowered), and single points landing in old buckets.
    batches = [steps[start : start + 250] for start in range(0, len(steps), 250)]
    rng.shuffle(batches)

    def noisy() -> float:
        return round(rng.gauss(0, 1), 1)

    rounds: list[tuple[list[int], Callable[[], float]]] = [(batch, noisy) for batch in batches]
    rounds += [(rng.choice(batches), noisy) for _ in range(4)]
    rounds += [(rng.sample(steps, 1), lambda: 9.0), (rng.sample(steps, 1), lambda: -9.0)]
    for batch, value_of in rounds:
        points = []
        for step in batch:
            truth[step] = value_of()
            points.append({"key": "val/loss", "step": step, "value": truth[step]})
        _post(client, run["id"], points)
    # A replay of exactly what is stored changes nothing.
    same = [{"key": "val/loss", "step": step, "value": truth[step]} for step in steps[:300]]
    assert _post(client, run["id"], same)["new"] == 0
    assert _stored(db_session, run["id"], "val/loss") == _expected(truth)


def test_charts_read_from_rollups_get_the_points_of_downsampling_every_point(
    client: ApiClient,
) -> None:
    rng = np.random.default_rng(3)
    ids = []
    curves: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for index in range(3):
        run = create_external(client, f"chart-{index}")
        ids.append(run["id"])
        steps = np.sort(rng.choice(np.arange(3, 60_000), 2_500 + 200 * index, replace=False))
        values = np.round(np.sin(steps / 700) + rng.normal(0, 0.3, len(steps)), 1)
        curves[run["id"]] = (steps, values)
        points = [
            {"key": "val/iou", "step": int(step), "value": float(value)}
            for step, value in zip(steps, values, strict=True)
        ]
        _post(client, run["id"], points)
    # Budgets from the fewest points a chart asks for to one read from the finest width (16).
    for max_points in (5, 7, 50, 307, 581, 1_500, 2_000):
        query = f"run_ids={','.join(map(str, ids))}&keys=val/iou&max_points={max_points}"
        many = client.get(f"/api/v1/metrics/series?{query}")
        assert many.status_code == 200, many.text
        for item in many.json()["items"]:
            steps, values = curves[item["run_id"]]
            want_steps, want_values = downsample(steps, values, max_points)
            got = item["series"]["val/iou"]
            assert got["step"] == want_steps.tolist(), max_points
            assert got["value"] == want_values.tolist(), max_points
            assert len(got["step"]) <= max_points
            assert got["min"] == values.min() and got["max"] == values.max()
            assert got["count"] == len(steps) and got["downsampled"] is True
            one = client.get(f"/api/v1/runs/{item['run_id']}/metrics?max_points={max_points}")
            assert one.json()["series"]["val/iou"] == got
    # Full resolution (a zoomed chart, an export) still reads every point.
    full = client.get(f"/api/v1/runs/{ids[0]}/metrics?keys=val/iou").json()["series"]["val/iou"]
    assert full["step"] == curves[ids[0]][0].tolist() and full["downsampled"] is False


def test_points_loaded_around_the_ingest_are_read_point_by_point(
    client: ApiClient, db_session: Session
) -> None:
    run = create_external(client, "bulk")
    steps = np.arange(1, 3_001)
    values = np.cos(steps / 300.0)
    db_session.execute(
        insert(Metric),
        [
            {"run_id": run["id"], "key": "lr", "step": int(s), "value": float(v)}
            for s, v in zip(steps, values, strict=True)
        ],
    )
    db_session.execute(
        insert(MetricSummary),
        [
            {
                "run_id": run["id"], "key": "lr", "last_step": 3_000,
                "last_value": float(values[-1]), "min_value": float(values.min()),
                "max_value": float(values.max()), "count": 3_000,
            }
        ],
    )  # fmt: skip
    db_session.flush()
    got = client.get(f"/api/v1/runs/{run['id']}/metrics?max_points=300").json()["series"]["lr"]
    want = downsample(steps.astype(np.int64), values, 300)
    assert got["step"] == want[0].tolist() and got["value"] == want[1].tolist()
    # One more point through the API gives a partial rollup: still read point by point.
    _post(client, run["id"], [{"key": "lr", "step": 3_001, "value": 0.5}])
    got = client.get(f"/api/v1/runs/{run['id']}/metrics?max_points=300").json()["series"]["lr"]
    steps, values = np.append(steps, 3_001), np.append(values, 0.5)
    want = downsample(steps.astype(np.int64), values, 300)
    assert got["step"] == want[0].tolist() and got["value"] == want[1].tolist()
    # Rebuilt, the rollup serves the chart, with the same points.
    rebuild_rollups(db_session, [run["id"]])
    truth = dict(zip(steps.tolist(), values.tolist(), strict=True))
    assert _stored(db_session, run["id"], "lr") == _expected(truth)
    again = client.get(f"/api/v1/runs/{run['id']}/metrics?max_points=300").json()["series"]["lr"]
    assert again == got


def test_deleting_a_run_deletes_its_rollups(client: ApiClient, db_session: Session) -> None:
    run = create_external(client, "gone")
    _post(client, run["id"], [{"key": "a", "step": step, "value": 1.0} for step in range(100)])
    assert _stored(db_session, run["id"], "a")
    assert client.delete(f"/api/v1/runs/{run['id']}?force=true").status_code == 204
    db_session.expire_all()
    assert not _stored(db_session, run["id"], "a")


async def _write_at_once(
    server: LiveServer, run_id: int, batches: list[list[dict[str, Any]]]
) -> None:
    limits = httpx.Limits(max_connections=len(batches) + 2)
    async with httpx.AsyncClient(
        base_url=server.url, headers=server.headers, timeout=60.0, limits=limits
    ) as http:

        async def write(points: list[dict[str, Any]]) -> None:
            response = await http.post(f"/api/v1/runs/{run_id}/metrics", json={"points": points})
            assert response.status_code == 200, response.text

        async with anyio.create_task_group() as group:
            for points in batches:
                group.start_soon(write, points)


@pytest.mark.timeout(240)
def test_writers_at_once_into_the_same_buckets_leave_them_exact(
    start_live: Callable[..., LiveServer], live_database_url: str
) -> None:
    server = start_live()
    with server.http() as http:
        run: dict[str, Any] = http.post("/api/v1/runs", json={"name": "w", "external": True}).json()
    writers = 12
    # Writer w owns steps w, w + 12, w + 24, ...: every writer touches every bucket.
    truth = {step: float((step * 7919) % 101) for step in range(writers * 60)}
    batches: list[list[dict[str, Any]]] = [
        [
            {"key": "k", "step": step, "value": truth[step]}
            for step in range(w, writers * 60, writers)
        ]
        for w in range(writers)
    ]
    anyio.run(_write_at_once, server, run["id"], batches)
    # Then replays, half of them with other values, all at once again.
    for w in range(0, writers, 2):
        for point in batches[w]:
            point["value"] = truth[point["step"]] = -point["value"]
    anyio.run(_write_at_once, server, run["id"], batches)
    engine = create_db_engine(live_database_url)
    try:
        with Session(engine) as session:
            assert _stored(session, run["id"], "k") == _expected(truth)
    finally:
        engine.dispose()


def test_the_migration_builds_rollups_of_points_already_stored() -> None:
    name = "segtrack_test_rollup_backfill"
    url = create_scratch_database(name)
    engine = create_db_engine(url)
    try:
        upgrade_database(url)
        downgrade_database(url, "0012")
        rng = random.Random(5)
        truth = {step: round(rng.uniform(-1, 1), 2) for step in rng.sample(range(50_000), 1_000)}
        now = utcnow()
        with Session(engine) as session:
            session.execute(
                insert(Run),
                [
                    {"id": 1, "name": "old", "status": "succeeded", "external": True, "notes": "",
                     "priority": 0, "queue": "gpu", "attempt": 0, "max_retries": 0,
                     "resume_requested": False, "created_at": now, "updated_at": now,
                     "epochs_done": 0}
                ],
            )  # fmt: skip
            rows = [
                {"run_id": 1, "key": "val/iou", "step": s, "value": v} for s, v in truth.items()
            ]
            # A deleted run's points the reaper has not swept yet get no rollup.
            rows += [{"run_id": 99, "key": "val/iou", "step": 1, "value": 0.0}]
            session.execute(insert(Metric), rows)
            session.commit()
        upgrade_database(url)
        with Session(engine) as session:
            assert _stored(session, 1, "val/iou") == _expected(truth)
            assert not session.scalar(text("SELECT count(*) FROM metric_rollups WHERE run_id = 99"))
    finally:
        engine.dispose()
        drop_scratch_database(name)
