"""Sweeps over REST on PostgreSQL, with controller passes run by the test: a grid made run by run
to the end, failures told as failures, refused specs, pause/resume/cancel/max_runs, ownership,
pruning requests from epoch metrics, seeded draws repeated."""

from __future__ import annotations

import logging
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from server.db import session_scope
from server.events import fetch_events
from server.metric.points import MetricPoint
from server.metric.service import record_metrics
from server.models import Run, utcnow
from server.preview.repository import upsert_checkpoint
from server.reaper import reap_once
from server.run.lifecycle import FinalStatus, claim_run, finish_run
from server.settings import Settings
from server.sweep.controller import REFUSED_IN_A_ROW, ControllerReport, control_once
from tests.server.helpers import ApiClient, RecordingTaskQueue, issue_token, valid_config


def grid_spec(**extra: Any) -> dict[str, Any]:
    return {
        "name": "grid",
        "config": valid_config(),
        "method": "grid",
        "parameters": {
            "batch_size": {"values": [2, 4]},
            "learning_rate": {"values": [0.1, 0.01, 0.001]},
        },
        "parallel": 2,
        **extra,
    }


class Controller:
    """Controller passes and worker stand-ins on the test's rolled-back database."""

    def __init__(
        self, sessions: sessionmaker[Session], settings: Settings, queue: RecordingTaskQueue
    ) -> None:
        self.sessions, self.settings, self.queue = sessions, settings, queue

    def step(self) -> ControllerReport:
        with session_scope(self.sessions) as session:
            return control_once(session, self.settings, self.queue)

    def train(self, run_id: int, curve: list[float], status: FinalStatus = "succeeded") -> None:
        """Claim the run, store `curve` as its val/iou per epoch, and end it as `status`."""
        with session_scope(self.sessions) as session:
            claim_run(session, run_id, worker="w", device="cpu")
            points = [MetricPoint("val/iou", epoch, v, epoch) for epoch, v in enumerate(curve, 1)]
            if points:
                record_metrics(session, run_id, points)
            finish_run(session, run_id, status)

    def runs(self, sweep_id: int) -> list[Run]:
        with session_scope(self.sessions, write=False) as session:
            query = select(Run).where(Run.sweep_id == sweep_id).order_by(Run.trial_number)
            return list(session.scalars(query))


def learning_rate_spec(method: str = "random", **extra: Any) -> dict[str, Any]:
    """A sweep over the learning rate alone, on a log range."""
    return {
        "config": valid_config(),
        "method": method,
        "parameters": {"learning_rate": {"min": 1e-4, "max": 1e-1}},
        **extra,
    }


@pytest.fixture
def drive(
    session_factory: sessionmaker[Session], settings: Settings, task_queue: RecordingTaskQueue
) -> Controller:
    """Controller passes and worker stand-ins on the test's database."""
    return Controller(session_factory, settings, task_queue)


def test_grid_sweep_runs_every_combination_to_the_end(
    client: ApiClient,
    drive: Controller,
    shapes_dataset: Path,
    task_queue: RecordingTaskQueue,
) -> None:
    created = client.post("/api/v1/sweeps", json=grid_spec())
    assert created.status_code == 201, created.text
    sweep = created.json()
    assert (sweep["status"], sweep["max_runs"], sweep["runs"]) == ("running", 6, [])
    scores = {0.1: 0.2, 0.01: 0.7, 0.001: 0.5}
    while True:
        report = drive.step()
        queued = [run for run in drive.runs(sweep["id"]) if run.status == "queued"]
        assert len(queued) <= 2
        if not queued:
            break
        for run in queued:
            params = run.sweep_params or {}
            assert run.config is not None and run.config["batch_size"] == params["batch_size"]
            score = scores[params["learning_rate"]] + params["batch_size"] / 100
            drive.train(run.id, [score / 2, score])
    assert report.finished == [sweep["id"]]
    runs = drive.runs(sweep["id"])
    assert [run.trial_number for run in runs] == [0, 1, 2, 3, 4, 5]
    assert len({tuple(sorted((run.sweep_params or {}).items())) for run in runs}) == 6
    assert len(task_queue.sent) == 6
    shown = client.get(f"/api/v1/runs/{runs[2].id}").json()
    assert (shown["sweep_id"], shown["trial_number"]) == (sweep["id"], 2)
    assert shown["sweep_params"] == runs[2].sweep_params and shown["prune_requested_at"] is None
    listed = client.get(f"/api/v1/runs?filter=sweep%20%3D%20{sweep['id']}").json()["items"]
    assert sorted(item["trial_number"] for item in listed) == [0, 1, 2, 3, 4, 5]
    view = client.get(f"/api/v1/sweeps/{sweep['id']}").json()
    assert view["status"] == "finished"
    assert view["counts"] == {
        "done": 6,
        "running": 0,
        "queued": 0,
        "pruned": 0,
        "failed": 0,
        "cancelled": 0,
    }
    assert view["best_run"]["params"] == {"batch_size": 4, "learning_rate": 0.01}
    assert view["best_run"]["value"] == view["best_value"] == 0.74
    assert len(view["best_so_far"]) == 6 and view["best_so_far"][-1]["best"] == 0.74
    assert set(view["importance"]) == {"batch_size", "learning_rate"}
    assert view["importance"]["learning_rate"] > view["importance"]["batch_size"]
    # The runs are ordinary runs.
    run = client.get(f"/api/v1/runs/{view['runs'][0]['id']}").json()
    assert run["name"] == "grid #0" and run["status"] == "succeeded"
    listed = client.get("/api/v1/sweeps").json()["items"]
    assert listed[0]["id"] == sweep["id"] and listed[0]["counts"]["done"] == 6


def test_a_failed_run_is_a_failure_not_a_score(
    client: ApiClient,
    drive: Controller,
    shapes_dataset: Path,
) -> None:
    sweep = client.post("/api/v1/sweeps", json=grid_spec(max_runs=2)).json()
    drive.step()
    first, second = drive.runs(sweep["id"])
    drive.train(first.id, [0.9], status="failed")
    drive.train(second.id, [0.3])
    drive.step()
    view = client.get(f"/api/v1/sweeps/{sweep['id']}").json()
    assert view["status"] == "finished"
    assert (view["counts"]["failed"], view["counts"]["done"]) == (1, 1)
    assert view["best_run"]["id"] == second.id
    assert view["importance"] is None  # one scored trial


def test_refused_specs_name_what_is_wrong(client: ApiClient, shapes_dataset: Path) -> None:
    unknown = client.post(
        "/api/v1/sweeps", json=grid_spec(parameters={"lr": {"values": [0.1, 0.01]}})
    )
    assert unknown.status_code == 422
    assert "parameters.lr" in unknown.json()["error"]["message"]
    assert "learning_rate" in unknown.json()["error"]["message"]
    invalid = client.post(
        "/api/v1/sweeps", json=grid_spec(parameters={"batch_size": {"values": [2, 0]}})
    )
    assert invalid.status_code == 422
    assert "combination 1" in invalid.json()["error"]["message"]
    missing = client.post("/api/v1/sweeps", json=grid_spec(config=valid_config(dataset="nowhere")))
    assert missing.status_code in (403, 422), missing.text
    assert client.post("/api/v1/sweeps", json=grid_spec(budget=3)).status_code == 422
    assert client.get("/api/v1/sweeps/999999").status_code == 404
    ignored = client.post("/api/v1/sweeps", json=grid_spec(program="train.py"))
    assert ignored.status_code == 201 and ignored.json()["ignored"] == ["program"]


def test_pause_resume_cancel_and_max_runs(
    client: ApiClient,
    drive: Controller,
    shapes_dataset: Path,
    session_factory: sessionmaker[Session],
) -> None:
    spec = learning_rate_spec(max_runs=3, parallel=1, seed=5)
    sweep_id = client.post("/api/v1/sweeps", json=spec).json()["id"]
    url = f"/api/v1/sweeps/{sweep_id}"
    assert client.post(f"{url}/pause").json()["status"] == "paused"
    assert client.post(f"{url}/pause").status_code == 409
    assert drive.step().queued == []
    assert client.post(f"{url}/resume").json()["status"] == "running"
    [first] = drive.step().queued
    drive.train(first, [0.5])
    [second] = drive.step().queued
    assert client.patch(url, json={"max_runs": 1}).status_code == 422  # 2 made already
    assert client.patch(url, json={"max_runs": 5, "parallel": 2}).json()["max_runs"] == 5
    assert len(drive.step().queued) == 1  # two in flight now
    with session_scope(session_factory) as session:
        claim_run(session, second, worker="w", device="cpu")
    cancelled = client.post(f"{url}/cancel").json()
    assert cancelled["status"] == "cancelled"
    statuses = {run["id"]: run["status"] for run in cancelled["runs"]}
    assert statuses[first] == "succeeded" and statuses[second] == "cancelling"
    assert sorted(statuses.values()).count("cancelled") == 1
    assert drive.step().queued == []
    assert client.post(f"{url}/resume").status_code == 409


def test_members_change_only_their_own_sweeps(
    app: Any, client: ApiClient, shapes_dataset: Path, session_factory: sessionmaker[Session]
) -> None:
    sweep_id = client.post("/api/v1/sweeps", json=grid_spec()).json()["id"]
    member = issue_token(session_factory, "bob", "member")
    viewer = issue_token(session_factory, "vera", "viewer")
    with ApiClient(app, member) as bob, ApiClient(app, viewer) as vera:
        assert bob.post(f"/api/v1/sweeps/{sweep_id}/pause").status_code == 403
        assert bob.get(f"/api/v1/sweeps/{sweep_id}").status_code == 200
        own = bob.post("/api/v1/sweeps", json=grid_spec())
        assert own.status_code == 201 and own.json()["submitted_by"] == "bob"
        assert bob.post(f"/api/v1/sweeps/{own.json()['id']}/pause").status_code == 200
        assert vera.post("/api/v1/sweeps", json=grid_spec()).status_code == 403


def test_a_sampled_config_that_is_invalid_fails_its_trial_clearly(
    client: ApiClient,
    drive: Controller,
    shapes_dataset: Path,
    task_queue: RecordingTaskQueue,
) -> None:
    spec = {
        "config": valid_config(),
        "method": "random",
        "parameters": {"base_channels": {"values": [8, -1]}},
        "max_runs": 8,
        "parallel": 8,
        "seed": 1,
    }
    sweep_id = client.post("/api/v1/sweeps", json=spec).json()["id"]
    report = drive.step()
    assert report.invalid and report.queued
    assert len(task_queue.sent) == len(report.queued)
    view = client.get(f"/api/v1/sweeps/{sweep_id}").json()
    failed = [run for run in view["runs"] if run["status"] == "failed"]
    assert {run["params"]["base_channels"] for run in failed} == {-1}
    assert "the sampled config is refused" in failed[0]["failure_reason"]
    assert "base_channels" in failed[0]["failure_reason"]


def test_median_pruning_asks_a_bad_run_to_stop(
    client: ApiClient,
    drive: Controller,
    shapes_dataset: Path,
    session_factory: sessionmaker[Session],
) -> None:
    spec = learning_rate_spec(
        config=valid_config(epochs=4),
        early_terminate={"type": "median", "min_iter": 1, "n_startup_trials": 2},
        max_runs=4,
        parallel=2,
        seed=2,
    )
    sweep_id = client.post("/api/v1/sweeps", json=spec).json()["id"]
    for run_id in drive.step().queued:
        drive.train(run_id, [0.5, 0.6, 0.7, 0.8])
    good, bad = drive.step().queued
    with session_scope(session_factory) as session:
        for run_id, value in ((good, 0.55), (bad, 0.05)):
            claim_run(session, run_id, worker="w", device="cpu")
            record_metrics(session, run_id, [MetricPoint("val/iou", 1, value, 1)])
    assert drive.step().pruned == [bad]
    assert drive.step().pruned == []  # asked once
    with session_scope(session_factory) as session:
        finish_run(session, bad, "pruned")
        finish_run(session, good, "succeeded")
    drive.step()
    view = client.get(f"/api/v1/sweeps/{sweep_id}").json()
    assert view["status"] == "finished"
    assert view["counts"]["pruned"] == 1
    assert [run["prune_requested"] for run in view["runs"]].count(True) == 1


def test_seeded_sweeps_draw_the_same_configs(
    client: ApiClient,
    drive: Controller,
    shapes_dataset: Path,
) -> None:
    drawn = []
    for method in ("random", "random", "bayes", "bayes"):
        spec = {
            "config": valid_config(),
            "method": method,
            "parameters": {
                "learning_rate": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
                "batch_size": {"values": [2, 4]},
            },
            "max_runs": 4,
            "parallel": 4,
            "seed": 42,
        }
        sweep_id = client.post("/api/v1/sweeps", json=spec).json()["id"]
        drive.step()
        drawn.append([run.sweep_params for run in drive.runs(sweep_id)])
    assert drawn[0] == drawn[1] and drawn[2] == drawn[3]
    assert len({params["learning_rate"] for params in drawn[0] if params}) == 4


def test_hyperband_judges_training_runs_without_failing_a_step(
    *,
    client: ApiClient,
    drive: Controller,
    shapes_dataset: Path,
    session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    spec = learning_rate_spec(
        "bayes",
        config=valid_config(epochs=9),
        early_terminate={"type": "hyperband", "min_iter": 1, "eta": 3},
        max_runs=12,
        parallel=6,
        seed=4,
    )
    client.post("/api/v1/sweeps", json=spec)
    first = drive.step().queued
    for rank, run_id in enumerate(first):
        drive.train(run_id, [0.1 * rank + 0.01 * epoch for epoch in range(9)])
    second = drive.step().queued
    with session_scope(session_factory) as session:
        for run_id in second:
            claim_run(session, run_id, worker="w", device="cpu")
            points = [MetricPoint("val/iou", epoch, 0.001, epoch) for epoch in (1, 2, 3)]
            record_metrics(session, run_id, points)
    pruned = drive.step().pruned
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert pruned and set(pruned) <= set(second)


def test_a_lost_run_its_sweep_was_pruning_ends_pruned(
    *,
    client: ApiClient,
    drive: Controller,
    shapes_dataset: Path,
    session_factory: sessionmaker[Session],
    settings: Settings,
    task_queue: RecordingTaskQueue,
) -> None:
    client.post("/api/v1/sweeps", json=grid_spec(max_runs=1))
    [run_id] = drive.step().queued
    with session_scope(session_factory) as session:
        claim_run(session, run_id, worker="w", device="cpu")
        session.get_one(Run, run_id).prune_requested_at = utcnow()
    later = utcnow() + timedelta(seconds=settings.heartbeat_timeout_s + 1)
    with session_scope(session_factory) as session:
        assert reap_once(session, settings, task_queue, later).failed == [run_id]
    assert client.get(f"/api/v1/runs/{run_id}").json()["status"] == "pruned"


def test_a_sweep_whose_configs_are_all_refused_pauses_saying_why(
    *,
    client: ApiClient,
    drive: Controller,
    shapes_dataset: Path,
) -> None:
    spec = learning_rate_spec(max_runs=100, parallel=2)
    url = f"/api/v1/sweeps/{client.post('/api/v1/sweeps', json=spec).json()['id']}"
    shutil.rmtree(shapes_dataset)
    report = drive.step()
    assert len(report.invalid) == REFUSED_IN_A_ROW and not report.queued
    sweep = client.get(url).json()
    assert sweep["status"] == "paused" and sweep["counts"]["failed"] == REFUSED_IN_A_ROW
    assert sweep["note"].startswith(f"paused: the last {REFUSED_IN_A_ROW} sampled configs")
    assert "dataset" in sweep["note"]
    assert client.post(f"{url}/resume").json()["note"] is None


def test_one_api_process_at_a_time_runs_a_pass(
    engine: Engine, settings: Settings, task_queue: RecordingTaskQueue
) -> None:
    with Session(engine) as first, Session(engine) as second:
        assert not control_once(first, settings, task_queue).skipped
        assert control_once(second, settings, task_queue).skipped  # first's lock is held
        first.rollback()
        assert not control_once(second, settings, task_queue).skipped
        second.rollback()


def test_a_pruned_run_resumes_outside_its_sweep(
    *,
    client: ApiClient,
    drive: Controller,
    shapes_dataset: Path,
    session_factory: sessionmaker[Session],
    task_queue: RecordingTaskQueue,
) -> None:
    """A pruned run kept its checkpoints and can train on: it is queued to resume, its trial
    stays pruned in the sweep (no new trial, no `parallel` slot, never pruned again), and the
    sweep finishes without waiting for it."""
    sweep_id = client.post("/api/v1/sweeps", json=grid_spec(max_runs=2, parallel=1)).json()["id"]
    [pruned] = drive.step().queued
    with session_scope(session_factory) as session:
        claim_run(session, pruned, worker="w", device="cpu")
        record_metrics(session, pruned, [MetricPoint("val/iou", 1, 0.1, 1)])
        session.get_one(Run, pruned).prune_requested_at = utcnow()
        finish_run(session, pruned, "pruned")
        upsert_checkpoint(
            session, run_id=pruned, kind="last", epoch=1, metric=None, path="x.pt", size_bytes=1
        )
    response = client.post(f"/api/v1/runs/{pruned}/resume")
    assert response.status_code == 200, response.text
    run = response.json()
    assert (run["status"], run["resume_requested"], run["prune_requested_at"]) == (
        "queued",
        True,
        None,
    )
    assert (run["sweep_id"], run["trial_number"], run["trial_status"]) == (sweep_id, 0, "pruned")
    assert task_queue.sent[-1].run_id == pruned
    [second] = drive.step().queued  # the resumed run takes none of the sweep's one slot
    view = client.get(f"/api/v1/sweeps/{sweep_id}").json()
    assert view["counts"]["pruned"] == 1 and view["counts"]["queued"] == 1
    first = view["runs"][0]
    assert (first["id"], first["status"], first["trial_status"]) == (pruned, "queued", "pruned")
    with session_scope(session_factory) as session:
        claim_run(session, pruned, worker="w", device="cpu")
        record_metrics(session, pruned, [MetricPoint("val/iou", 2, 0.9, 2)])
    drive.train(second, [0.2, 0.3])
    report = drive.step()
    assert report.pruned == [] and report.queued == []
    assert report.finished == [sweep_id]
    view = client.get(f"/api/v1/sweeps/{sweep_id}").json()
    assert view["status"] == "finished"
    assert view["best_run"]["id"] == second, "a trial pruned by its sweep is never its best"
    assert len(drive.runs(sweep_id)) == 2


def test_a_sweep_finishes_when_a_run_reaches_its_metric_target(
    *,
    client: ApiClient,
    drive: Controller,
    shapes_dataset: Path,
    session_factory: sessionmaker[Session],
) -> None:
    """W&B's `metric.target`: once a run's best value reaches it, the sweep is finished, its
    queued runs cancelled and its note names the run; the training one goes on."""
    spec = learning_rate_spec(
        metric={"name": "val/iou", "goal": "maximize", "target": 0.9}, max_runs=10, parallel=3
    )
    sweep_id = client.post("/api/v1/sweeps", json=spec).json()["id"]
    assert client.get(f"/api/v1/sweeps/{sweep_id}").json()["ignored"] == []
    first, second, third = drive.step().queued
    drive.train(first, [0.5, 0.6])
    with session_scope(session_factory) as session:
        claim_run(session, second, worker="w", device="cpu")
        record_metrics(session, second, [MetricPoint("val/iou", 1, 0.7, 1)])
    report = drive.step()
    assert report.finished == []
    [refill] = report.queued  # first's slot
    with session_scope(session_factory) as session:
        record_metrics(session, second, [MetricPoint("val/iou", 2, 0.93, 2)])
    report = drive.step()
    assert report.finished == [sweep_id]
    assert sorted(report.cancelled) == sorted([third, refill])
    view = client.get(f"/api/v1/sweeps/{sweep_id}").json()
    assert view["status"] == "finished"
    assert f"run {second} (trial 1) reached val/iou 0.93, the target 0.9" in view["note"]
    statuses = {run["id"]: run["status"] for run in view["runs"]}
    assert statuses[second] == "running" and statuses[third] == "cancelled"
    assert drive.step().queued == []


def test_a_sweep_records_an_event_whenever_it_changes(
    client: ApiClient,
    drive: Controller,
    shapes_dataset: Path,
    session_factory: sessionmaker[Session],
) -> None:
    """Its page follows these instead of polling: created, each controller step that queued
    runs or finished it, pause, resume, a changed parallel, cancel; a step that changed
    nothing records none."""
    sweep_id = client.post("/api/v1/sweeps", json=grid_spec(parallel=1)).json()["id"]

    def actions() -> list[tuple[str, str]]:
        with session_scope(session_factory, write=False) as session:
            events = fetch_events(session, 0, kinds=["sweep"])
        return [
            (event.payload["action"], event.payload["status"])
            for event in events
            if event.payload["sweep_id"] == sweep_id and event.run_id is None
        ]

    assert actions() == [("created", "running")]
    drive.step()
    drive.step()  # nothing new: one run is in flight, parallel is 1
    assert actions() == [("created", "running"), ("step", "running")]
    client.post(f"/api/v1/sweeps/{sweep_id}/pause")
    client.post(f"/api/v1/sweeps/{sweep_id}/resume")
    client.patch(f"/api/v1/sweeps/{sweep_id}", json={"parallel": 2})
    client.post(f"/api/v1/sweeps/{sweep_id}/cancel")
    assert actions()[2:] == [
        ("paused", "paused"),
        ("resumed", "running"),
        ("updated", "running"),
        ("cancelled", "cancelled"),
    ]
