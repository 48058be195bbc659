"""segtrack: train, track and inspect image segmentation models.

`segtrack.track(...)` starts a tracked run (see segtrack.tracking); it is imported on first
use, so `import segtrack` stays light and never loads torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from segtrack.tracking import TrackedRun, track

__all__ = ["TrackedRun", "track"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        import segtrack.tracking  # noqa: PLC0415 (on first use: numpy, httpx, threads)

        return getattr(segtrack.tracking, name)
    raise AttributeError(f"module 'segtrack' has no attribute {name!r}")
