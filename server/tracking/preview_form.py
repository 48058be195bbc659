"""Which requests are a tracking client's preview upload, for the access middleware that runs
before routing: these carry `multipart/form-data` (three PNGs), not JSON. Other sites still
cannot send one: the middleware's Origin and CSRF checks come first and hold for them too."""

from __future__ import annotations

import re

from starlette.types import Scope

from server.tracking.schemas import MAX_PREVIEW_FILE_BYTES

PREVIEW_FORM_BYTES = 3 * MAX_PREVIEW_FILE_BYTES + 1024 * 1024
"""The body limit of a preview form: its three PNGs at their largest, plus the form's fields."""
PREVIEW_PATH = re.compile(r"/api/v1/runs/[^/]+/previews")


def is_preview_form(scope: Scope, content_type: str) -> bool:
    """Whether the request is a multipart `POST /api/v1/runs/{run_id}/previews`."""
    return (
        scope.get("method") == "POST"
        and content_type == "multipart/form-data"
        and PREVIEW_PATH.fullmatch(scope.get("path", "")) is not None
    )
