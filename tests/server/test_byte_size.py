"""Size limits read in binary units, with the exact bytes beside them."""

from __future__ import annotations

import pytest

from server.byte_size import byte_size


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 bytes"),
        (1023, "1023 bytes"),
        (1536, "1.5 KiB (1536 bytes)"),
        (16777216, "16 MiB (16777216 bytes)"),
        (64 * 1024**3, "64 GiB (68719476736 bytes)"),
    ],
)
def test_a_byte_count_is_given_in_its_largest_unit_and_in_bytes(count: int, text: str) -> None:
    assert byte_size(count) == text
