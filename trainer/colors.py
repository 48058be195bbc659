"""Default class colours: background black, then well-separated hues."""

from __future__ import annotations

import colorsys

FIRST_COLORS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (255, 225, 25),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
)

GOLDEN_RATIO_CONJUGATE = 0.618033988749895


def default_palette(num_classes: int) -> list[tuple[int, int, int]]:
    """`num_classes` RGB colours; beyond the hand-picked ones, hues step by the golden ratio."""
    colors = list(FIRST_COLORS[:num_classes])
    hue = 0.0
    while len(colors) < num_classes:
        hue = (hue + GOLDEN_RATIO_CONJUGATE) % 1.0
        red, green, blue = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
        colors.append((round(red * 255), round(green * 255), round(blue * 255)))
    return colors
