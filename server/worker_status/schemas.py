"""Response bodies of the workers endpoint."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class RunRef(BaseModel):
    id: int
    name: str


class JobRef(BaseModel):
    """A job holding a slot: its id and kind, and the run it works on."""

    id: int
    kind: str
    status: str
    run: RunRef | None


class SlotOut(BaseModel):
    """One slot of a worker: a GPU (`gpu` its index or id) or a CPU slot (`gpu` null), held by
    a run, by a job, or free (both null)."""

    slot: int
    gpu: str | None
    run: RunRef | None = Field(description="The run training on this slot; null otherwise")
    job: JobRef | None = Field(
        None, description="The job (evaluate, predict, export, predict_image) on this slot"
    )


class WorkerOut(BaseModel):
    name: str
    hostname: str
    pid: int
    device: str
    queues: list[str]
    slots: list[SlotOut]
    idle_since: datetime | None = Field(
        description="Since when the worker has had a task thread free to take a run"
    )
    started_at: datetime
    last_seen_at: datetime


class QueuedRunOut(BaseModel):
    id: int
    name: str
    queue: str
    priority: int
    queued_at: datetime | None
    position: int
    submitted_by: str | None = Field(
        None, description="Who submitted the run (members change only their own runs)"
    )


class WorkersOut(BaseModel):
    workers: list[WorkerOut]
    queue: list[QueuedRunOut]
