"""Epoch lists in messages, short however many there are: `1-40, 42, 45-50`."""

from __future__ import annotations

from collections.abc import Sequence

MAX_RANGES = 20


def epochs_text(epochs: Sequence[int]) -> str:
    """Sorted `epochs` as ranges of consecutive numbers; 'none' when empty."""
    if not epochs:
        return "none"
    ranges: list[tuple[int, int]] = []
    for epoch in sorted(epochs):
        if ranges and epoch == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], epoch)
        else:
            ranges.append((epoch, epoch))
    shown = [str(first) if first == last else f"{first}-{last}" for first, last in ranges]
    if len(shown) > MAX_RANGES:
        shown = [*shown[: MAX_RANGES // 2], "...", *shown[-MAX_RANGES // 2 :]]
    return ", ".join(shown)
