"""The embedded broker's message files, each one whole or not there.

Kombu's filesystem transport creates a message's file and then writes it; a consumer polling
the folder in between takes the still empty file, cannot decode it (which ends the worker)
and has already removed it, so the message is lost: a queued job or run waits for ever. Here
a message is written under a name consumers skip and renamed into place once complete
(a rename, atomic within one file system).

Kombu also falls back to folders of the current directory (`control/`, `data_in/`, ...) for
any folder option not given; here every folder must be given, so the broker never writes
outside the data folder it was pointed at.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

TRANSPORT = "server.broker_files:Transport"
"""Celery's `broker_transport` for a `filesystem://` broker URL."""
PARTIAL_PREFIX = "."
"""A message being written: consumers take only `<stamp>_<id>.<queue>.msg` names."""


FOLDER_OPTIONS = ("data_folder_in", "data_folder_out", "control_folder")
"""The transport options naming the broker's folders; each is required."""


class Channel(filesystem.Channel):
    """Kombu's filesystem channel, writing each message whole before it can be taken."""

    def _given_folder(self, option: str) -> str:
        folder = self.transport_options.get(option)
        if not folder:
            raise ChannelError(
                f"The embedded broker's transport option {option!r} is not set (needed: "
                f"{', '.join(FOLDER_OPTIONS)}); kombu would use a folder of the current directory"
            )
        return str(folder)

    @property
    def data_folder_in(self) -> str:
        return self._given_folder("data_folder_in")

    @property
    def data_folder_out(self) -> str:
        return self._given_folder("data_folder_out")

    @property
    def control_folder(self) -> Path:
        return Path(self._given_folder("control_folder"))

    # kombu's base channels declare `_put` with and without `**kwargs`; this matches the
    # filesystem channel's.
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        # The name kombu gives (its order is the delivery order), under which the file appears
        # only once complete.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = Path(self.data_folder_out) / name
        partial = final.with_name(f"{PARTIAL_PREFIX}{name}.part")
        try:
            partial.write_bytes(str_to_bytes(dumps(payload)))  # type: ignore[no-untyped-call]
            partial.replace(final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
