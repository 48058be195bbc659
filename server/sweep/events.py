"""A sweep's `sweep` event: recorded whenever the sweep changed (runs queued or pruned by its
controller, its status or settings), so that its page reads it again instead of polling."""

from __future__ import annotations

from sqlalchemy.orm import Session

from server.events import record_event
from server.models import Sweep


def sweep_changed(session: Session, sweep: Sweep, action: str) -> None:
    """Record that `sweep` changed (`action`: what happened, e.g. `paused`, `step`)."""
    record_event(
        session, "sweep", None, {"action": action, "sweep_id": sweep.id, "status": sweep.status}
    )
