"""Schemathesis over the OpenAPI document: generated requests to every operation, in-process on
the rolled-back database, are never answered with a server error, nor with a status, a content
type or a body that the document does not describe.

Bounded and repeatable: a fixed seed, derandomized generation, MAX_EXAMPLES per operation (plus
schemathesis' boundary cases), no example database. One test per operation, each with its own
rolled-back transaction holding a few runs and a dataset, so that generated requests reach real
rows and not only 404s: in positive cases, ids in paths are replaced by those of the seeded rows.
"""

from __future__ import annotations

import tempfile
import zlib
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import CheckFunction
from schemathesis.specs.openapi import checks as openapi_checks

from server.app import create_app
from server.settings import Settings
from tests.server.helpers import ApiClient, bearer, create_external, valid_config

SEED = 20_260_901
MAX_EXAMPLES = 25


def _document() -> dict[str, Any]:
    """The app's OpenAPI document, from an app that is never started (collection needs it)."""
    with tempfile.TemporaryDirectory(prefix="segtrack-openapi-") as name:
        folder = Path(name)
        settings = Settings(
            data_dir=folder,
            database_url=f"sqlite:///{folder / 'unused.db'}",
            broker_url="memory://",
            reaper_interval_s=0,
        )
        app = create_app(settings)
        document = app.openapi()
        app.state.engine.dispose()
    return document


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "phases": {"stateful": {"enabled": False}},
    }
)
# The event streams never end and read the database from a background poller, which the test's
# one rolled-back connection cannot share; tests/server/test_events_live.py covers them live.
schema = schemathesis.openapi.from_dict(_document(), config=CONFIG).exclude(tag="events")

CHECKS: list[CheckFunction] = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.negative_data_rejection,
]


@pytest.fixture
def api_headers(admin_token: str) -> dict[str, str]:
    """What every generated request carries: the one place its credentials come from."""
    return bearer(admin_token)


@pytest.fixture
def seeded(client: ApiClient, shapes_dataset: Path) -> dict[str, list[Any]]:
    """Rows for generated requests to reach: a registered dataset, a queued run, an external
    run with a few metric points; path values by parameter name."""
    dataset = client.post("/api/v1/datasets", json={"name": "shapes", "path": "shapes"})
    assert dataset.status_code == 201, dataset.text
    queued = client.post("/api/v1/runs", json={"config": valid_config()})
    assert queued.status_code == 201, queued.text
    external = create_external(client, params={"lr": 0.1})
    points = [
        {"key": "val/iou", "step": step, "value": step / 10, "epoch": step} for step in (1, 2)
    ]
    ingested = client.post(f"/api/v1/runs/{external['id']}/metrics", json={"points": points})
    assert ingested.status_code == 200, ingested.text
    return {
        "run_id": [queued.json()["id"], external["id"]],
        "id_or_name": ["shapes", str(dataset.json()["id"])],
    }


def _aim_at_seeded_rows(case: schemathesis.Case[Any], seeded: dict[str, list[Any]]) -> None:
    """In a positive case, point path ids at seeded rows (chosen by the generated value, so the
    choice is as repeatable as the case)."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    parameters = case.path_parameters or {}
    for name, values in seeded.items():
        if name in parameters:
            parameters[name] = values[zlib.crc32(repr(parameters[name]).encode()) % len(values)]


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_generated_requests_get_documented_answers(
    case: schemathesis.Case[Any],
    app: FastAPI,
    api_headers: dict[str, str],
    seeded: dict[str, list[Any]],
) -> None:
    _aim_at_seeded_rows(case, seeded)
    case.call_and_validate(app=app, headers=api_headers, checks=CHECKS)
