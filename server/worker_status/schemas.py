"""Response bodies of the workers endpoint."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class RunRef(BaseModel):
    id: int
    name: str


class WorkerOut(BaseModel):
    name: str
    hostname: str
    pid: int
    device: str
    queues: list[str]
    current_run: RunRef | None
    idle_since: datetime | None
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
