"""CSV cells no spreadsheet runs as a formula (torch-free: the server's exports use it too).

Text that users wrote (class names, image file names, run names, tags) could start a formula,
e.g. `=HYPERLINK(...)`, which a spreadsheet opening the CSV would run (CSV injection).
"""

from __future__ import annotations

import re
from typing import Any

FORMULA_STARTS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make spreadsheets read a cell as a formula (OWASP, CSV injection)."""

_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def spreadsheet_safe(value: Any) -> Any:
    """`value` as a CSV cell no spreadsheet runs: text starting with = + - @ tab or CR gets a
    leading `'`, as OWASP advises. Numbers, and text that is just a number such as "-0.5",
    stay as they are (a number is never a formula)."""
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_STARTS)
        and not _PLAIN_NUMBER.fullmatch(value)
    ):
        return f"'{value}"
    return value
