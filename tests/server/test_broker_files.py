"""The embedded broker writes each message whole: a consumer polling the folder never takes a
message that is still being written (kombu's own transport creates the file first, so a
consumer could take it empty, fail to decode it and lose the message)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kombu.connection import Connection
from kombu.exceptions import ChannelError

from server import broker_files
from server.queue import broker_transport, broker_transport_options, celery_client
from server.settings import Settings


def _connection(folder: Path, control: Path) -> Connection:
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(control),
    }
    return _connection_with(options)


def _connection_with(options: dict[str, Any]) -> Connection:
    return Connection(  # type: ignore[no-untyped-call]
        "filesystem://", transport=broker_files.TRANSPORT, transport_options=options
    )


def test_a_message_appears_only_once_written_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen_before_rename: list[list[str]] = []
    replace = Path.replace

    def watching_replace(source: Path, target: Any) -> Path:
        # What a consumer listing the folder finds while the message is written.
        seen_before_rename.append([p.name for p in messages.iterdir() if p.name.endswith(".msg")])
        assert source.read_bytes()  # complete before it gets its name
        return replace(source, target)

    messages = tmp_path / "messages"
    messages.mkdir()
    monkeypatch.setattr(Path, "replace", watching_replace)
    with _connection(messages, tmp_path / "control") as connection:
        queue = connection.SimpleQueue("default")
        queue.put({"run_id": 7})
        assert seen_before_rename == [[]]
        assert [p.name.endswith(".default.msg") for p in messages.iterdir()] == [True]
        message = queue.get(timeout=1)
        assert message.payload == {"run_id": 7}
        message.ack()
        queue.close()
    assert list(messages.iterdir()) == []


def test_the_embedded_broker_leaves_the_current_directory_clean(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kombu's own defaults put `control/<exchange>.exchange` in the current directory.
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    embedded = settings.model_copy(update={"broker_url": "filesystem://"})
    client = celery_client(embedded)
    client.send_task("training.run", args=[7], queue="default")
    with _connection_with(broker_transport_options(embedded)) as connection:
        queue = connection.SimpleQueue("default")
        message = queue.get(timeout=1)
        assert message.payload[0] == [7]
        message.ack()
        queue.close()
    client.close()
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize("missing", broker_files.FOLDER_OPTIONS)
def test_a_folder_not_given_is_refused_not_put_in_the_current_directory(
    tmp_path: Path, missing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    options = {option: str(tmp_path / option) for option in broker_files.FOLDER_OPTIONS}
    del options[missing]
    for folder in options.values():
        Path(folder).mkdir()
    with _connection_with(options) as connection:
        channel = connection.default_channel
        with pytest.raises(ChannelError, match=missing):
            getattr(channel, missing)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(options)


def test_the_embedded_broker_uses_it_and_redis_keeps_kombus_own(settings: Settings) -> None:
    embedded = settings.model_copy(update={"broker_url": "filesystem://"})
    assert broker_transport(embedded) == broker_files.TRANSPORT
    assert celery_client(embedded).conf.broker_transport == broker_files.TRANSPORT
    assert broker_transport_options(embedded)["data_folder_in"]
    redis = settings.model_copy(update={"broker_url": "redis://127.0.0.1:6379/0"})
    assert broker_transport(redis) is None
