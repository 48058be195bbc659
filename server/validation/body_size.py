"""The body limit of an epoch's validation detail, which the body-size middleware applies before
routing: a set of about 5,000 images of 30 classes, three counts each, is 5 to 10 MB of JSON."""

from __future__ import annotations

import re

from starlette.types import Scope

VALIDATION_BODY_BYTES = 64 * 1024 * 1024
"""5,000 images x 30 classes x 3 counts of up to 13 digits (2^40) with separators is about
9 MB, plus names and the matrix; four times that leaves room for bigger sets, up to the limit
on counts per epoch (`server.validation.service.MAX_CELLS`)."""
VALIDATION_PATH = re.compile(r"/api/v1/runs/[^/]+/validation/[^/]+")


def is_validation_put(scope: Scope) -> bool:
    """Whether the request is a `PUT /api/v1/runs/{run_id}/validation/{epoch}`."""
    return (
        scope.get("method") == "PUT"
        and VALIDATION_PATH.fullmatch(scope.get("path", "")) is not None
    )
