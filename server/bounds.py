"""The bounds every input is held to before it reaches the database.

PostgreSQL refuses an integer beyond its column's type, a NUL character in text and a NaN in
jsonb, but only deep inside a statement, as a 500. The types and checks here refuse them at the
edge instead, as a 422 naming the field: integers within what their column stores (ids and
epochs are int4, steps int8), text without NUL, integers written in ASCII digits only (Python's
`int()` also reads '٣' and `str.isdigit()` is true for '²'), JSON values with finite numbers.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from annotated_types import Interval
from pydantic import AfterValidator

from server.errors import InvalidInput

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

Int32 = Annotated[int, Interval(ge=INT32_MIN, le=INT32_MAX)]
"""Any value an int4 column stores."""
Int64 = Annotated[int, Interval(ge=INT64_MIN, le=INT64_MAX)]
"""Any value an int8 column stores."""
Count32 = Annotated[int, Interval(ge=0, le=INT32_MAX)]
"""A non-negative int4: epochs, sample indices, offsets."""
Count64 = Annotated[int, Interval(ge=0, le=INT64_MAX)]
"""A non-negative int8: metric steps."""
Id32 = Annotated[int, Interval(ge=1, le=INT32_MAX)]
"""A row id of an int4 primary key (runs, datasets)."""

RunIdPath = Id32
"""A run id in a path: FastAPI reads a parameter named like the path's `{run_id}` from the path.
(No `fastapi.Path` here: the worker imports this module and never the web framework.)"""

NUL_MESSAGE = "text must not contain NUL characters (\\x00)"
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
"""Linux's PATH_MAX and NAME_MAX (macOS allows less)."""
_ASCII_DIGITS = re.compile(r"[0-9]+", re.ASCII)


def text_problem(text: str) -> str | None:
    """Why a text column could not store `text` (a NUL character, or a lone surrogate that has
    no UTF-8 form), or None."""
    if "\x00" in text:
        return NUL_MESSAGE
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "text must be valid Unicode (no lone surrogates such as \\ud800)"
    return None


def _refuse_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    return value


NoNul = AfterValidator(_refuse_nul)
"""Refuses text holding a NUL character (PostgreSQL text and jsonb cannot store one)."""
Text = Annotated[str, NoNul]
"""Any text a text column stores."""


def server_path_problem(raw: str) -> str | None:
    """Why `raw` cannot name a path on the server, or None: a '~user' for a user the server
    does not have, a name longer than any file system allows, or text `text_problem` refuses
    (the OS raises for each instead of answering that nothing is there)."""
    text = text_problem(raw)
    if text is not None:
        return text
    if raw.startswith("~"):
        try:
            Path(raw).expanduser()
        except RuntimeError:
            user = raw.split("/", 1)[0]
            shown = user if len(user) <= 40 else user[:40] + "…"
            return (
                f"{shown!r} names no user on the server; give an absolute path or one relative "
                "to a dataset root"
            )
    if len(raw.encode()) > MAX_PATH_BYTES or any(
        len(part.encode()) > MAX_NAME_BYTES for part in raw.split("/")
    ):
        return (
            f"paths are at most {MAX_PATH_BYTES} bytes, each folder or file name at most "
            f"{MAX_NAME_BYTES}"
        )
    return None


def _refuse_bad_path(value: Any) -> Any:
    problem = server_path_problem(value) if isinstance(value, str) else None
    if problem is not None:
        raise ValueError(problem)
    return value


ServerPath = AfterValidator(_refuse_bad_path)
"""Refuses text that cannot name a path on the server (see `server_path_problem`)."""


def ascii_int(text: str) -> int | None:
    """The integer `text` spells in ASCII digits (surrounding spaces allowed), or None.

    `int()` alone is not enough: it also reads other scripts' digits ('٣'), and `isdigit()`
    accepts superscripts ('²') that `int()` then refuses.
    """
    stripped = text.strip()
    return int(stripped) if _ASCII_DIGITS.fullmatch(stripped) else None


def ascii_id(text: str) -> int | None:
    """The int4 row id `text` spells in ASCII digits, or None (other text, or out of range)."""
    value = ascii_int(text)
    return value if value is not None and 1 <= value <= INT32_MAX else None


def json_problems(value: Any, field: str, *, limit: int = 20) -> list[dict[str, str]]:
    """Where a JSON value holds what jsonb cannot store: text `text_problem` refuses in keys or
    strings, and numbers that are not finite (JSON has no NaN, but Python's parser reads
    `NaN`). At most `limit` items, each `{field, message}` with the dotted path of the value."""
    found = itertools.islice(_json_problems(value, field), limit)
    return [{"field": path, "message": message} for path, message in found]


def _json_problems(value: Any, path: str) -> Iterator[tuple[str, str]]:
    # Iterative, so a deeply nested value cannot exhaust the stack.
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                yield where, problem
        elif isinstance(item, float):
            if not math.isfinite(item):
                yield where, "numbers must be finite (no NaN or Infinity)"
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                problem = text_problem(str(key))
                if problem is not None:
                    yield where, f"a key: {problem}"
                    continue
                stack.append((f"{where}.{key}", child))
        elif isinstance(item, list | tuple):
            stack.extend(
                (f"{where}.{index}", child) for index, child in reversed(list(enumerate(item)))
            )


def check_json(value: Any, field: str) -> None:
    """InvalidInput naming every path of `value` that jsonb cannot store (see `json_problems`)."""
    problems = json_problems(value, field)
    if problems:
        first = problems[0]
        raise InvalidInput(f"{first['field']}: {first['message']}", problems)
