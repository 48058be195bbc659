"""Response bodies of the compare endpoints."""

from __future__ import annotations

from pydantic import BaseModel, Field

from server.run.schemas import RunOut


class CompareRunsOut(BaseModel):
    """The runs asked for, in the order given (each as `GET /api/v1/runs/{id}` gives it), and
    the ids that name no run."""

    items: list[RunOut]
    missing: list[int] = Field(description="Ids asked for that name no run, in the order given")
