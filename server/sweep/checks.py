"""Checks of sweep spec values, each refusing with an InvalidInput that names the field and
says what is allowed there."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from server.errors import InvalidInput


def refuse(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", [{"field": field, "message": message}])


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def whole(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise refuse(field, f"a whole number from {low} to {high}, got {value!r}")
    return value


def check_keys(raw: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    for key in raw:
        if key not in allowed:
            raise refuse(
                f"{where}{key}" if where else str(key),
                f"unknown key {key!r}; allowed keys are: {', '.join(allowed)}",
            )


def mapping(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise refuse(field, f"expected a mapping, got {type(value).__name__}")
    return value
