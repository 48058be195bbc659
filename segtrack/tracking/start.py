"""`segtrack.track(...)`: start a tracked run, with the server, token and spool folder found
the way the command line finds them."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from segtrack.local_tokens import HOME_ENV
from segtrack.tracking import environment
from segtrack.tracking.run import FINISH_TIMEOUT_S, TrackedRun
from segtrack.tracking.script_end import script_end
from segtrack.tracking.spool import RunMeta, Spool
from segtrack.tracking.upload import PIECE_BYTES

logger = logging.getLogger(__name__)

SERVER_ENV = "SEGTRACK_SERVER"
SPOOL_ENV = "SEGTRACK_SPOOL_DIR"
DEFAULT_HEARTBEAT_TIMEOUT_S = 120
"""Without a heartbeat for this long the server fails the run: long enough to ride out a
network hiccup, short enough that a killed process shows as failed within minutes."""


def default_spool_dir() -> Path:
    """$SEGTRACK_SPOOL_DIR, else `spool` in segtrack's home folder (~/.segtrack)."""
    configured = os.environ.get(SPOOL_ENV)
    if configured:
        return Path(configured)
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".segtrack") / "spool"


def _plain(value: object, what: str) -> dict[str, Any] | None:
    """`value` (a mapping, or a pydantic model such as TrainConfig) as a JSON-safe dict."""
    if value is None:
        return None
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        value = dump(mode="json")
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping or a pydantic model, not {type(value).__name__}")
    plain: dict[str, Any] = json.loads(json.dumps(dict(value), default=str))
    return plain


def track(
    name: str | None = None,
    config: object = None,
    params: Mapping[str, Any] | None = None,
    tags: Sequence[str] = (),
    *,
    server: str | None = None,
    token: str | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
    resumed_from: int | None = None,
    heartbeat_timeout_s: int | None = DEFAULT_HEARTBEAT_TIMEOUT_S,
    finish_timeout_s: float = FINISH_TIMEOUT_S,
    capture_logs: bool = False,
    origin: environment.Origin = "script",
    piece_bytes: int = PIECE_BYTES,
) -> TrackedRun:
    """Start a tracked run.

    Args:
        name: The run's name on the dashboard.
        config: A TrainConfig (or its dict): the server validates it, and the run page shows
            and can clone it. A dict the server does not take as a TrainConfig is kept as
            params instead.
        params: Free-form parameters.
        tags: The run's tags.
        server: The server's URL; default $SEGTRACK_SERVER. None of both: the run is only
            spooled (send it later with `segtrack sync`).
        token: An API token; default $SEGTRACK_TOKEN, else the token `segtrack up` on this
            machine remembered for the server.
        spool_dir: Where the run's spool folder goes; default $SEGTRACK_SPOOL_DIR, else
            ~/.segtrack/spool.
        resumed_from: The server's id of the run this one continues (lineage).
        heartbeat_timeout_s: The server fails the run after this long without a heartbeat
            (10-86400; None: never).
        finish_timeout_s: How long `finish` waits for the server.
        capture_logs: Also send the root logger's lines to the run's log.
        origin: What started the run ("script", or "cli" for `segtrack train`).
        piece_bytes: Bytes per upload request.
    """
    server = server or os.environ.get(SERVER_ENV) or None
    meta = RunMeta(
        client_key=uuid.uuid4().hex,
        server=server.rstrip("/") if server else None,
        name=name,
        tags=[str(tag) for tag in tags],
        config=_plain(config, "config"),
        params=_plain(params, "params"),
        environment=environment.collect(origin),
        created_at=datetime.now(UTC).isoformat(),
        heartbeat_timeout_s=heartbeat_timeout_s,
        resumed_from=resumed_from,
    )
    spool = Spool.create(Path(spool_dir) if spool_dir is not None else default_spool_dir(), meta)
    spool.try_lock()
    if server is None:
        logger.info(
            "no server given (server= or $%s): run %s is only spooled in %s; send it later "
            "with `segtrack sync %s --server URL`",
            SERVER_ENV,
            meta.client_key,
            spool.folder,
            spool.folder.parent,
        )
    script_end.install()
    run = TrackedRun(spool, token=token, finish_timeout_s=finish_timeout_s, piece_bytes=piece_bytes)
    if capture_logs:
        run.capture_logs()
    return run
