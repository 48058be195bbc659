"""A JSON response encoded by orjson, for the big payloads (metric series, run lists)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z


class OrjsonResponse(JSONResponse):
    """`application/json` rendered with orjson (numpy arrays and datetimes included).

    A JSONResponse, so that the OpenAPI document types its body as JSON, not as a string.
    """

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=_OPTIONS)
