"""Sweep request and response bodies (the spec itself is a free mapping: `server.sweep.spec`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from server.sweep.spec import MAX_PARALLEL, MAX_RUNS


class SweepCounts(BaseModel):
    """How many of a sweep's runs are in each state (`done`: succeeded)."""

    done: int = 0
    running: int = 0
    queued: int = 0
    pruned: int = 0
    failed: int = 0
    cancelled: int = 0


class SweepRunOut(BaseModel):
    """One trial of a sweep: its run, the swept values and its score."""

    id: int
    name: str
    status: str
    trial_status: str
    """The trial's status in the sweep: the run's, or (a run resumed outside its sweep) the
    status its trial ended with."""
    trial_number: int
    params: dict[str, Any]
    """The swept keys and their values."""
    value: float | None
    """The run's best value of the sweep's metric so far."""
    epochs_done: int
    prune_requested: bool
    failure_reason: str | None


class BestSoFar(BaseModel):
    """The best score after each finished trial, in trial order (the best-so-far curve)."""

    trial_number: int
    run_id: int
    value: float
    best: float


class SweepSummaryOut(BaseModel):
    id: int
    name: str
    status: str
    method: str
    metric: str
    goal: Literal["maximize", "minimize"]
    max_runs: int
    parallel: int
    counts: SweepCounts
    best_value: float | None
    submitted_by: str | None
    created_at: datetime
    finished_at: datetime | None


class SweepOut(SweepSummaryOut):
    """A sweep with its runs, best run, best-so-far curve and parameter importance."""

    seed: int | None
    spec: dict[str, Any]
    note: str | None
    updated_at: datetime
    runs: list[SweepRunOut]
    best_run: SweepRunOut | None
    best_so_far: list[BestSoFar]
    importance: dict[str, float] | None
    """Each swept key's importance to the metric (Optuna's PED-ANOVA evaluator) once two
    trials have finished with a score; None before."""
    ignored: list[str] = Field(
        default_factory=list, description="W&B keys the spec had that segtrack does not use"
    )


class SweepPage(BaseModel):
    items: list[SweepSummaryOut]
    next_cursor: int | None


class SweepPatch(BaseModel):
    """Change how many runs a sweep makes, or how many run at once."""

    model_config = ConfigDict(extra="forbid")

    max_runs: int | None = Field(None, ge=1, le=MAX_RUNS)
    parallel: int | None = Field(None, ge=1, le=MAX_PARALLEL)
