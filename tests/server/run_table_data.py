"""A small runs table for the filter-language and column tests: runs with configs, params,
metric summaries and tags written straight into the database (no datasets to inspect)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from server.models import MetricSummary, Run, Sweep
from server.run.repository import add_run
from tests.server.helpers import ApiClient

RunsTable = tuple[ApiClient, dict[str, int]]
"""A client of an app whose database holds `RUNS`, and the runs' ids by name (`fill`)."""

START = datetime(2026, 1, 1, tzinfo=UTC)
SWEEP = "sweep lr-search"
"""The key of the sweep's id in what `fill` returns."""

RUNS: list[dict[str, Any]] = [
    {
        "name": "alpha",
        "status": "succeeded",
        "config": {"model": "unet", "learning_rate": 1e-3, "batch_size": 8, "amp": "off"},
        "tags": ["baseline", "lr=1e-3"],
        "metrics": {"val/iou": (0.7, 0.1, 0.8), "train/loss": (0.3, 0.2, 1.0)},
    },
    {
        "name": "beta",
        "status": "failed",
        "config": {"model": "unet++", "learning_rate": 1e-2, "batch_size": 16, "amp": "bf16"},
        "tags": ["lr=0.01"],
        "metrics": {"val/iou": (0.5, 0.1, 0.6), "train/loss": (0.9, 0.8, 1.2)},
    },
    {
        "name": "gamma",
        "status": "queued",
        "config": {"model": "vgg16-unet", "learning_rate": 1e-4, "batch_size": 8, "amp": "off"},
        "tags": ["baseline"],
        "metrics": {},
    },
    {
        "name": "o'brien",
        "status": "running",
        "config": {
            "model": "unet",
            "learning_rate": 3e-4,
            "batch_size": 32,
            "amp": "fp16",
            "deterministic": True,
            "extra": {"depth": 3},
        },
        "tags": ["lr=3e-4", "odd tag"],
        "metrics": {"val/iou": (0.75, 0.2, 0.9), "val/iou/road sign": (0.4, 0.1, 0.5)},
    },
    {
        "name": "script",
        "status": "running",
        "external": True,
        "config": None,
        "params": {"alpha": 0.5, "note": "it's"},
        "tags": [],
        "metrics": {"val/iou": (0.2, 0.2, 0.2)},
    },
    {
        "name": "delta",
        "status": "succeeded",
        "config": {"model": "unet++", "learning_rate": "1e-3", "batch_size": 8, "amp": "off"},
        "tags": ["lr=high"],
        "metrics": {"val/iou": (0.8, 0.3, 0.85)},
        "sweep": "lr-search",
    },
]


def fill(session_factory: sessionmaker[Session]) -> dict[str, int]:
    """Write `RUNS` (created a minute apart, in order) and return their ids by name (and the
    sweep's id under `SWEEP`)."""
    ids: dict[str, int] = {}
    with session_factory() as session:
        sweep = Sweep(
            name="lr-search",
            status="finished",
            method="grid",
            metric="val/iou",
            goal="maximize",
            spec={},
            max_runs=4,
            parallel=1,
        )
        session.add(sweep)
        session.flush()
        ids[SWEEP] = sweep.id
        for index, spec in enumerate(RUNS):
            config = spec["config"]
            run = Run(
                name=spec["name"],
                status=spec["status"],
                external=spec.get("external", False),
                config=config,
                params=spec.get("params"),
                queue="default",
                model=config["model"] if config else None,
                dataset_name="shapes" if config else None,
                created_at=START + timedelta(minutes=index),
                sweep_id=sweep.id if spec.get("sweep") else None,
            )
            add_run(session, run, spec["tags"])
            for key, (last, low, high) in spec["metrics"].items():
                session.add(
                    MetricSummary(
                        run_id=run.id,
                        key=key,
                        last_step=3,
                        last_value=last,
                        min_value=low,
                        max_value=high,
                        count=3,
                    )
                )
            ids[spec["name"]] = run.id
        session.commit()
    return ids
