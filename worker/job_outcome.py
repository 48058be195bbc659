"""The files through which a worker and a job's process talk: `request.json` (what to do,
written by the worker) and `outcome.json` (how it went, written by the job process), both in
the job's folder (`server.job.paths`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

REQUEST_NAME = "request.json"

JobStatus = Literal["succeeded", "failed", "cancelled"]


@dataclass(frozen=True)
class JobRequest:
    """One job for the job process: its kind, the checkpoint file and the job's parameters."""

    job_id: int
    run_id: int
    kind: str
    checkpoint: str
    parameters: dict[str, Any]

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self)), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> JobRequest:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended: its result and the output files (relative to the job's folder)."""

    status: JobStatus
    reason: str | None = None
    details: str | None = None
    result: dict[str, Any] | None = None
    files: list[str] = field(default_factory=list)

    def write(self, path: Path) -> None:
        """Write atomically: the worker never reads half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(asdict(self)), encoding="utf-8")
        temporary.replace(path)

    @classmethod
    def read(cls, path: Path) -> JobOutcome | None:
        """The outcome at `path`; None when there is none (or it is not one)."""
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None
