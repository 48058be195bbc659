"""Which requests are pieces of an upload, for the middlewares that run before routing: a piece
is raw bytes (not JSON) bounded by its upload's own size, not by SEGTRACK_MAX_BODY_BYTES.

A browser page of another site cannot send one: PATCH is never a "simple" request, so it needs
a CORS preflight, which only SEGTRACK_CORS_ORIGINS pass.
"""

from __future__ import annotations

import re

from starlette.types import Scope

PIECE_PATH = re.compile(r"/api/v1/runs/[^/]+/uploads/[^/]+")


def is_upload_piece(scope: Scope) -> bool:
    """Whether the request is a `PATCH /api/v1/runs/{run_id}/uploads/{upload_id}`."""
    return (
        scope.get("method") == "PATCH" and PIECE_PATH.fullmatch(scope.get("path", "")) is not None
    )
