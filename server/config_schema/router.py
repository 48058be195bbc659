"""GET /api/v1/config/schema: TrainConfig's JSON schema, which the new-run form is built from."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter

from server.unit_of_work import UnitOfWorkRoute
from trainer.config import TrainConfig, config_json_schema

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/config", tags=["config"])


@cache
def form_schema() -> dict[str, Any]:
    """`config_json_schema()` with the defaults pydantic leaves out of it filled in.

    Fields with a `default_factory` (e.g. `milestones`) have no `default` in pydantic's schema;
    the form prefills every field, so their factory's value is written in. Weight-file fields
    also say how this server takes them.
    """
    schema = config_json_schema()
    properties: dict[str, dict[str, Any]] = schema["properties"]
    for name, field in TrainConfig.model_fields.items():
        if "default" not in properties[name] and field.default_factory is not None:
            properties[name]["default"] = field.get_default(call_default_factory=True)
    properties["init_from"]["description"] += (
        ". Here: run:<id> (its best checkpoint), run:<id>:last, or a file in a dataset root"
    )
    properties["encoder_weights"]["description"] += ". Here: a file in a dataset root"
    return schema


@router.get("/schema")
def get_config_schema() -> dict[str, Any]:
    """The JSON schema of a run's `config` (TrainConfig).

    Every property carries `group` (one of the top-level `groups`, in form order), `description`,
    `default` (except the required `dataset`) and its bounds or allowed values.
    """
    return form_schema()
