"""The error raised when a folder cannot be read as a dataset.

An unknown layout, a folder without image/mask pairs or a malformed classes file all raise
`DatasetLayoutError`. It has its own module so that the classes file can raise it without
importing layout discovery, which imports the classes file. Torch-free.
"""

from __future__ import annotations


class DatasetLayoutError(Exception):
    """A dataset folder whose layout is not recognised; the message says what was found."""
