"""Response bodies of the workers endpoint."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class RunRef(BaseModel):
    id: int
    name: str


class SlotOut(BaseModel):
    """One slot of a worker: a GPU (`gpu` its index or id) or a CPU slot (`gpu` null)."""

    slot: int
    gpu: str | None
    run: RunRef | None = Field(description="The run training on this slot; null when free")


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


class WorkersOut(BaseModel):
    workers: list[WorkerOut]
    queue: list[QueuedRunOut]
