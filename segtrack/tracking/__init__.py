"""Tracking runs that train outside the queue: `segtrack.track(...)` for scripts, the trainer's
HttpReporter for `segtrack train --server`, the local spool and `segtrack sync`.

Torch-free at import: nothing here loads torch (import-linter checks it).
"""

from segtrack.tracking.run import TrackedRun
from segtrack.tracking.start import track

__all__ = ["TrackedRun", "track"]
