"""Byte counts as people read them: `16 MiB (16777216 bytes)` in the messages of size limits."""

from __future__ import annotations

UNITS = (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))


def byte_size(count: int) -> str:
    """`count` in the largest binary unit it reaches (one decimal at most), then in bytes.

    >>> byte_size(16777216)
    '16 MiB (16777216 bytes)'
    >>> byte_size(1536)
    '1.5 KiB (1536 bytes)'
    """
    for unit, size in UNITS:
        if count >= size:
            amount = f"{count / size:.1f}".removesuffix(".0")
            return f"{amount} {unit} ({count} bytes)"
    return f"{count} bytes"
