"""Which requests are an upload of images to predict on, for the access middleware that runs
before routing: these carry `multipart/form-data`, not JSON. Other sites still cannot send one:
the middleware's Origin and CSRF checks come first and hold for them too."""

from __future__ import annotations

import re

from starlette.types import Scope

PREDICT_INPUTS_PATH = re.compile(r"/api/v1/runs/[^/]+/predict-inputs")


def is_predict_inputs_form(scope: Scope, content_type: str) -> bool:
    """Whether the request is a multipart `POST /api/v1/runs/{run_id}/predict-inputs`."""
    return (
        scope.get("method") == "POST"
        and content_type == "multipart/form-data"
        and PREDICT_INPUTS_PATH.fullmatch(scope.get("path", "")) is not None
    )
