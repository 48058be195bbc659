"""Server-side paths that requests name, confined to configured root folders.

Relative paths are looked up under each root in turn; symlinks and '..' are resolved first, so
neither can lead outside the roots. A path accepted once is checked again (`is_inside`) each time
its files are read: a folder can be swapped for a symlink after it was accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def paths_inside(raw: str, roots: Sequence[Path]) -> list[Path] | None:
    """The resolved paths `raw` can mean inside `roots` (existing or not), in root order.

    None when `raw` leads outside every root, or when one of its meanings is an existing path
    outside them (a symlink or '..' escape), which is refused even if another meaning is inside.
    """
    given = Path(raw).expanduser()
    candidates = [given] if given.is_absolute() else [root / given for root in roots]
    resolved = [candidate.resolve() for candidate in candidates]
    inside = [path for path in resolved if any(path.is_relative_to(root) for root in roots)]
    escapes = [path for path in resolved if path not in inside and path.exists()]
    return None if escapes or not inside else inside


def is_inside(path: Path, roots: Sequence[Path]) -> bool:
    """Whether `path`, with symlinks and '..' resolved now, lies inside one of `roots`."""
    resolved = path.resolve()
    return any(resolved.is_relative_to(root.resolve()) for root in roots)
