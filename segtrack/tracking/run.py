"""`TrackedRun`: the run a training script (or `segtrack train --server`) logs into; see
`segtrack.track` (segtrack.tracking.start) for starting one.

    import segtrack

    with segtrack.track(name="unet-lr3", config=cfg, server="http://gpu-box:8000") as run:
        for epoch in range(1, epochs + 1):
            ...
            run.log({"train/loss": loss, "val/iou": iou}, epoch=epoch)
            run.log_previews(epoch, samples)
            run.log_validation(detail)  # confusion matrix and every image's counts
            if run.should_stop():  # cancelled from the dashboard
                break
        run.log_file("best.pt", kind="best", epoch=best_epoch, metric=best_iou)

Logging never waits for the network: `log` appends to an in-memory queue; a spool thread
writes the queue to a local spool every FLUSH_S and a sender thread sends the spool. When the
server is away the spool keeps everything and the sender catches up once it is back; what is
still unsent when the run finishes stays spooled for `segtrack sync`. With no server at all
(neither `server=` nor $SEGTRACK_SERVER) the run is spooled only.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from segtrack.tracking import environment
from segtrack.tracking.api import TrackingApi
from segtrack.tracking.heartbeat import Heartbeat
from segtrack.tracking.log_handler import RunLogHandler
from segtrack.tracking.previews import check_sample
from segtrack.tracking.script_end import MAX_REASON, failure_reason, script_end
from segtrack.tracking.sender import Aborted, Halted, Sender
from segtrack.tracking.spool import Spool
from segtrack.tracking.spooler import (
    Entry,
    File,
    Finish,
    Info,
    Lines,
    Marker,
    Metrics,
    Previews,
    SpoolWriter,
    Validation,
)
from segtrack.tracking.upload import PIECE_BYTES
from segtrack.tracking.validation import check_detail

logger = logging.getLogger(__name__)

FINISH_TIMEOUT_S = 30.0
FINAL_STATUSES = ("succeeded", "failed", "cancelled")
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class TrackedRun:
    """A run logging into its spool and, when it has a server, to that server.

    Make one with `segtrack.track`. Every `log*` method returns at once; `finish` (or leaving
    the `with` block) sends what is left, for up to `finish_timeout_s`.
    """

    def __init__(
        self,
        spool: Spool,
        *,
        token: str | None = None,
        finish_timeout_s: float = FINISH_TIMEOUT_S,
        piece_bytes: int = PIECE_BYTES,
    ) -> None:
        self.spool = spool
        self.finish_timeout_s = finish_timeout_s
        self._entries: deque[Entry] = deque()
        self._next_step = 0
        self._finished = False
        self._finish_lock = threading.Lock()
        self._stop_requested = False
        self._pinned_images: tuple[int, ...] = ()
        self._log_handler: RunLogHandler | None = None
        self._log_logger: str | None = None
        self._new_records = threading.Event()
        self._spool_closed = threading.Event()
        self._writer = SpoolWriter(spool, self._entries, self._new_records.set)
        self._sender: Sender | None = None
        self._sender_thread: threading.Thread | None = None
        self._heartbeat: Heartbeat | None = None
        server = spool.meta.server
        if server is not None:
            self._sender = Sender(
                spool,
                TrackingApi(server, token=token),
                piece_bytes=piece_bytes,
                on_run=self._on_run,
            )
            self._heartbeat = Heartbeat(
                TrackingApi(server, token=token),
                lambda: self.spool.meta.run_id,
                self._on_stop_requested,
                name=f"segtrack-heartbeat-{self.key}",
                on_pins=self._on_pins,
            )
            self._sender_thread = threading.Thread(
                target=self._send_loop, name=f"segtrack-send-{self.key}", daemon=True
            )
            self._sender_thread.start()
        atexit.register(self._at_exit)

    # --- what it is -------------------------------------------------------------------------

    @property
    def key(self) -> str:
        """The run's client key: its spool folder's name and its identity on the server."""
        return self.spool.meta.client_key

    @property
    def server(self) -> str | None:
        return self.spool.meta.server

    @property
    def id(self) -> int | None:
        """The server's id of the run, once the server was reached."""
        return self.spool.meta.run_id

    @property
    def url(self) -> str | None:
        """The run's page, once the server was reached."""
        if self.server is None or self.id is None:
            return None
        return f"{self.server.rstrip('/')}/runs/{self.id}"

    @property
    def origin(self) -> environment.Origin:
        origin: environment.Origin = self.spool.meta.environment.get("origin", "script")
        return origin

    # --- logging (never blocks on the network) ----------------------------------------------

    def log(
        self, metrics: Mapping[str, float], step: int | None = None, epoch: int | None = None
    ) -> None:
        """Queue `metrics` at `step`; returns at once.

        `step` defaults to `epoch` when that is given, else to one past the previous call's
        step (0 first). Values are read as floats now; non-finite ones are skipped (logged
        once per key).
        """
        if self._finished:
            self._after_finish("log")
            return
        if step is None:
            step = self._next_step if epoch is None else epoch
        self._next_step = step + 1
        values = {key: float(value) for key, value in metrics.items()}
        self._entries.append(Metrics(int(step), None if epoch is None else int(epoch), values))

    def log_previews(self, epoch: int, samples: Iterable[object]) -> None:
        """Queue an epoch's mask previews: trainer PreviewSamples, or mappings with `index`,
        `name`, `image` (uint8 (H, W) or (H, W, 3)), `truth` and `prediction` (uint8 (H, W)
        class indices). The arrays are copied now (ValueError when they do not fit) and
        encoded as PNG on the spool thread."""
        if self._finished:
            self._after_finish("log_previews")
            return
        checked = [check_sample(sample) for sample in samples]
        if checked:
            self._entries.append(Previews(int(epoch), checked))

    def log_validation(self, detail: object) -> None:
        """Queue an epoch's validation detail: a trainer ValidationDetail, or a mapping with
        `epoch`, `class_names` (K), `confusion` (K x K pixels, rows truth, columns prediction)
        and `images` (a mapping of `names` (N) and `true_positive`, `false_positive`,
        `false_negative`, integers N x K). The arrays are copied now (ValueError when their
        shapes disagree); the server's run page then sorts every image by its score."""
        if self._finished:
            self._after_finish("log_validation")
            return
        self._entries.append(Validation(check_detail(detail)))

    def log_file(
        self,
        path: str | os.PathLike[str],
        kind: str = "file",
        epoch: int | None = None,
        metric: float | None = None,
    ) -> None:
        """Queue a file for upload: `kind` "best" or "last" makes it the run's checkpoint of
        that kind, any other label (lower-case, at most 32 characters) one of its files.

        The file is hard-linked into the spool now (copied where it cannot be), so it may be
        replaced or deleted as soon as this returns.
        """
        if self._finished:
            self._after_finish("log_file")
            return
        if not KIND_PATTERN.fullmatch(kind):
            raise ValueError(
                f"kind {kind!r}: 'best', 'last' or a label of lower-case letters, digits, "
                "'_' and '-' (at most 32, starting with a letter)"
            )
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"{source} is not a file")
        blob = self.spool.blobs / f"{uuid.uuid4().hex[:12]}-{source.name}"
        try:
            os.link(source, blob)
        except OSError:
            shutil.copyfile(source, blob)
        self._entries.append(
            File(blob, kind, source.name, epoch, None if metric is None else float(metric))
        )

    def log_info(
        self,
        *,
        class_names: Sequence[str] | None = None,
        epochs_planned: int | None = None,
        device: str | None = None,
        run_info: Mapping[str, Any] | None = None,
        environment: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue what the run is about to train (shown on the run page); fields left None are
        not sent."""
        fields = {
            "class_names": list(class_names) if class_names is not None else None,
            "epochs_planned": epochs_planned,
            "device": device,
            "run_info": dict(run_info) if run_info is not None else None,
            "environment": dict(environment) if environment is not None else None,
        }
        body = {name: value for name, value in fields.items() if value is not None}
        self._entries.append(Info(body))

    def log_lines(self, lines: Sequence[str]) -> None:
        """Queue lines for the run's log (numbered in order on the spool thread)."""
        if lines and not self._finished:
            self._entries.append(Lines(list(lines)))

    def heartbeat(self) -> None:
        """Send a heartbeat now rather than at the next interval (returns at once)."""
        if self._heartbeat is not None:
            self._heartbeat.beat_now()

    def should_stop(self) -> bool:
        """Whether the server asked the run to stop (a cancel from the dashboard or REST)."""
        return self._stop_requested

    def pinned_images(self) -> tuple[int, ...]:
        """The validation images (positions in the set) users pinned on the run, as of the
        latest heartbeat answer (every few seconds): a trainer previews them."""
        return self._pinned_images

    def capture_logs(self, logger_name: str | None = None) -> RunLogHandler:
        """Send the lines of `logger_name` (None: the root logger) to the run's log until the
        run finishes."""
        handler = RunLogHandler(self)
        logging.getLogger(logger_name).addHandler(handler)
        self._log_handler = handler
        self._log_logger = logger_name
        return handler

    # --- ending -----------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything logged so far is in the spool and, with a server, sent;
        False when that took longer than `timeout` seconds."""
        if self._finished:  # the spool is closed: what could be sent was
            return self.server is not None and self.spool.unsent() == 0
        marker = Marker()
        self._entries.append(marker)
        self._writer.wake()
        if not marker.reached.wait(timeout):
            return False
        sender, thread = self._sender, self._sender_thread
        if sender is None or thread is None:
            return True
        with sender.acked:
            sender.acked.wait_for(
                lambda: sender.mark.seq >= marker.seq or not thread.is_alive(), timeout
            )
            return sender.mark.seq >= marker.seq

    def finish(
        self, status: str = "succeeded", reason: str | None = None, timeout: float | None = None
    ) -> bool:
        """End the run with `status` (succeeded, failed or cancelled) and `reason`.

        Waits up to `timeout` (default: `finish_timeout_s`) for the server to have every
        record; what it does not have by then stays spooled, and `segtrack sync` sends it.
        Returns whether everything was sent. A second call does nothing.
        """
        if status not in FINAL_STATUSES:
            raise ValueError(f"status {status!r}: one of {', '.join(FINAL_STATUSES)}")
        with self._finish_lock:
            if self._finished:
                return False
            self._finished = True
        atexit.unregister(self._at_exit)
        if self._log_handler is not None:
            logging.getLogger(self._log_logger).removeHandler(self._log_handler)
        reason = None if reason is None else reason[:MAX_REASON]
        self._entries.append(Finish(status, reason))
        self._writer.close()
        self._spool_closed.set()
        self._new_records.set()
        wait_s = self.finish_timeout_s if timeout is None else timeout
        if self._sender_thread is not None:
            self._sender_thread.join(wait_s)
            if self._sender_thread.is_alive() and self._sender is not None:
                self._sender.abort.set()
                self._sender_thread.join(5)
        if self._heartbeat is not None:
            self._heartbeat.stop()
        left = self.spool.unsent()
        self.spool.unlock()
        root = self.spool.folder.parent
        if self.server is None:
            logger.info(
                "run %s (%s) is spooled in %s; send it with `segtrack sync %s --server URL`",
                self.key,
                status,
                self.spool.folder,
                root,
            )
        elif left:
            logger.warning(
                "run %s: %d records not sent to %s yet; they stay in %s and `segtrack sync %s` "
                "sends them",
                self.key,
                left,
                self.server,
                self.spool.folder,
                root,
            )
        else:
            logger.info("run %s finished %s: %s", self.key, status, self.url)
        return self.server is not None and left == 0

    def __enter__(self) -> TrackedRun:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.finish("succeeded")
        elif isinstance(exc, KeyboardInterrupt):
            self.finish("cancelled", "interrupted (Ctrl-C)")
        else:
            self.finish("failed", failure_reason(exc))

    # --- threads ----------------------------------------------------------------------------

    def _send_loop(self) -> None:
        sender = self._sender
        assert sender is not None

        def wait(seconds: float) -> None:
            self._new_records.wait(seconds)
            self._new_records.clear()

        try:
            sender.drain(self._spool_closed.is_set, wait)
        except Aborted:
            pass
        except Halted as error:
            logger.error(
                "run %s: stopped sending to %s: %s; its records stay in %s for `segtrack sync`",
                self.key,
                self.server,
                error,
                self.spool.folder,
            )
        except Exception:
            logger.exception("run %s: the sender failed; its records stay spooled", self.key)
        finally:
            sender.close()
            sender.api.close()
            with sender.acked:
                sender.acked.notify_all()

    def _on_run(self, run_id: int) -> None:
        if self._heartbeat is not None:
            self._heartbeat.beat_now()

    def _on_stop_requested(self, status: str) -> None:
        if not self._stop_requested:
            logger.info("run %s: the server asks it to stop (it is %s)", self.key, status)
        self._stop_requested = True

    def _on_pins(self, pins: tuple[int, ...]) -> None:
        if pins != self._pinned_images:
            logger.info("run %s: pinned validation images %s", self.key, list(pins) or "none")
        self._pinned_images = pins

    def _after_finish(self, what: str) -> None:
        logger.warning("run %s: %s after finish() is ignored", self.key, what)

    def _at_exit(self) -> None:
        """The script ended without finishing the run: finish it as the script ended."""
        status, reason = script_end.outcome or ("succeeded", None)
        self.finish(status, reason)
