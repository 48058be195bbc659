"""`segtrack sync`: send spooled runs to their server now, e.g. runs trained offline or on a node
that could not reach the server. Syncing twice sends nothing the second time, and a run
created offline gets its server id on first contact (the same run on every later sync)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from segtrack.tracking.api import TrackingApi
from segtrack.tracking.heartbeat import Heartbeat
from segtrack.tracking.sender import Aborted, GaveUp, Halted, Sender
from segtrack.tracking.spool import RUN_FILE, SentMark, Spool, SpoolError, spool_folders
from segtrack.tracking.start import default_spool_dir

logger = logging.getLogger(__name__)

ATTEMPTS = 8
"""Failed attempts in a row (about a minute of back-off) before a sync gives a server up."""


@dataclass(frozen=True)
class SyncResult:
    """What syncing one spool did; `problem` says why it stopped early (None: all sent)."""

    folder: Path
    key: str
    url: str | None
    sent: int
    left: int
    problem: str | None = None


def default_dirs() -> list[Path]:
    """./runs/*/spool (what `segtrack train --server` spools) and the scripts' spool dir."""
    return [*sorted(Path("runs").glob("*/spool")), default_spool_dir()]


def find_spools(dirs: Iterable[Path]) -> list[Path]:
    """The run spools in `dirs`: each is a run's folder or a folder of them."""
    found: list[Path] = []
    for folder in dirs:
        candidates = [folder] if (folder / RUN_FILE).is_file() else list(spool_folders(folder))
        found += [candidate for candidate in candidates if candidate not in found]
    return found


def _same_server(first: str, second: str) -> bool:
    return first.rstrip("/") == second.rstrip("/")


def sync_spool(
    folder: Path,
    *,
    server: str | None = None,
    token: str | None = None,
    attempts: int = ATTEMPTS,
) -> SyncResult:
    """Send what `folder`'s run has not sent yet, to `server` or the URL it was started with."""
    try:
        spool = Spool.open(folder)
    except SpoolError as error:
        return SyncResult(folder, folder.name, None, 0, 0, str(error))
    meta = spool.meta
    if server is not None and (meta.server is None or not _same_server(server, meta.server)):
        if meta.run_id is not None:
            # The ids of another server mean nothing here: start over (the client key makes
            # the run the same one if this is that server under another name).
            logger.info("run %s: sending it to %s from the start", meta.client_key, server)
            meta.run_id = None
            spool.save_sent(SentMark())
        meta.server = server.rstrip("/")
        spool.save_meta()
    left = spool.unsent()
    if meta.server is None:
        return SyncResult(
            folder,
            meta.client_key,
            None,
            0,
            left,
            "it was spooled without a server: give --server URL",
        )
    api = TrackingApi(meta.server, token=token)
    if not left and meta.run_id is not None:
        api.close()
        return SyncResult(folder, meta.client_key, api.run_url(meta.run_id), 0, 0)
    if not spool.try_lock():
        api.close()
        return SyncResult(
            folder, meta.client_key, None, 0, left, "a running process is sending it right now"
        )
    sender = Sender(spool, api, attempts=attempts)
    # A long upload must not let the server take the run for dead while it arrives.
    heartbeat = Heartbeat(
        TrackingApi(meta.server, token=token), lambda: meta.run_id, lambda status: None
    )
    problem = None
    try:
        sender.ensure_run()
        heartbeat.beat_now()
        sender.drain(lambda: True)
    except (Halted, GaveUp, Aborted) as error:
        problem = str(error)
    finally:
        sender.close()
        heartbeat.stop()
        api.close()
        spool.unlock()
    url = api.run_url(meta.run_id) if meta.run_id is not None else None
    return SyncResult(folder, meta.client_key, url, sender.sent, spool.unsent(), problem)


def sync_all(
    dirs: Sequence[Path], *, server: str | None = None, token: str | None = None
) -> list[SyncResult]:
    """`sync_spool` of every spool found in `dirs`."""
    spools = find_spools(dirs)
    return [sync_spool(folder, server=server, token=token) for folder in spools]
