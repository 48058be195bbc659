"""segtrack.track against a real server: what a script logs shows through the REST API the run
page reads; the with block ends the run as the script ended; a cancel from the server reaches
should_stop; an upload cut halfway resumes; a corrupted file is refused with the server's
message and the rest still arrives; `segtrack sync` twice gives one run."""

from __future__ import annotations

import hashlib
import io
import logging
import socket
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from segtrack import TrackedRun, cli, track
from segtrack.tracking.spool import Spool
from segtrack.tracking.sync import sync_spool
from tests.server.helpers import LiveServer
from tests.tracking.helpers import rest, sample, series, wait_for
from tests.tracking.proxy import Proxy


def test_metrics_previews_files_and_logs_reach_the_run_page(
    server: LiveServer, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(np.random.default_rng(0).bytes(300_000))
    notes = tmp_path / "notes.txt"
    notes.write_text("learning rate halved at epoch 2\n")
    with track(
        name="script-run",
        params={"lr": 0.1},
        tags=["tracked"],
        server=server.url,
        token=server.token,
        spool_dir=tmp_path / "spool",
    ) as run:
        run.log_info(class_names=["background", "thing"], epochs_planned=3, device="cpu")
        for epoch in range(1, 4):
            for step in range(10):
                run.log({"train/loss_step": 1.0 / (step + 1)}, step=(epoch - 1) * 10 + step)
            run.log({"val/iou": 0.1 * epoch, "train/loss": 1.0 / epoch}, epoch=epoch)
            run.log_previews(epoch, [sample(0, epoch), sample(1, epoch)])
        run.log_file(checkpoint, kind="best", epoch=3, metric=0.3)
        checkpoint.unlink()  # the spool holds its own link
        run.log_file(notes, kind="notes")
        run.log_lines(["first line", "second line"])

    assert run.id is not None and run.url == f"{server.url}/runs/{run.id}"
    got = rest(server.url, server.token, f"/api/v1/runs/{run.id}")
    assert got["status"] == "succeeded" and got["tags"] == ["tracked"]
    assert got["params"] == {"lr": 0.1} and got["epochs_planned"] == 3
    assert got["environment"]["host"] == socket.gethostname()
    assert got["environment"]["origin"] == "script"
    metrics = series(server.url, server.token, run.id)
    assert metrics["val/iou"]["step"] == [1, 2, 3]
    assert metrics["val/iou"]["value"] == pytest.approx([0.1, 0.2, 0.3])
    assert metrics["train/loss_step"]["count"] == 30
    previews = rest(server.url, server.token, f"/api/v1/runs/{run.id}/previews?epoch=3")
    assert previews["epochs"] == [1, 2, 3] and len(previews["samples"]) == 2
    png = rest(server.url, server.token, previews["samples"][1]["prediction_url"])
    assert np.array(Image.open(io.BytesIO(png.content))).max() == 1  # epoch 3 predicts 1
    best = rest(server.url, server.token, f"/api/v1/runs/{run.id}/checkpoints/best")
    assert (
        hashlib.sha256(best.content).hexdigest()
        == hashlib.sha256(np.random.default_rng(0).bytes(300_000)).hexdigest()
    )
    files = rest(server.url, server.token, f"/api/v1/runs/{run.id}/files")["items"]
    assert [(item["name"], item["kind"]) for item in files] == [("notes.txt", "notes")]
    logs = rest(server.url, server.token, f"/api/v1/runs/{run.id}/logs")["lines"]
    assert logs[-2:] == ["first line", "second line"]
    spool = Spool.open(tmp_path / "spool" / run.key)
    assert spool.unsent() == 0 and not list(spool.blobs.glob("*-best.pt"))


def test_a_config_the_server_does_not_take_is_kept_as_params(
    server: LiveServer, tmp_path: Path
) -> None:
    config = {"learning_rate": 0.01, "my_own_setting": 3}
    with track(config=config, server=server.url, token=server.token, spool_dir=tmp_path) as run:
        run.log({"loss": 1.0}, step=0)
    got = rest(server.url, server.token, f"/api/v1/runs/{run.id}")
    assert got["config"] is None and got["params"] == config


def test_the_with_block_ends_the_run_as_the_script_ended(
    server: LiveServer, tmp_path: Path
) -> None:
    def start(name: str) -> TrackedRun:
        return track(name=name, server=server.url, token=server.token, spool_dir=tmp_path)

    with pytest.raises(ValueError, match="boom"), start("crash") as crashed:
        crashed.log({"loss": 1.0}, step=0)
        raise ValueError("boom\nsecond line")
    with pytest.raises(KeyboardInterrupt), start("ctrl-c") as interrupted:
        raise KeyboardInterrupt
    failed = rest(server.url, server.token, f"/api/v1/runs/{crashed.id}")
    assert failed["status"] == "failed"
    assert failed["failure_reason"] == "ValueError: boom second line"
    cancelled = rest(server.url, server.token, f"/api/v1/runs/{interrupted.id}")
    assert cancelled["status"] == "cancelled"


def test_a_cancel_on_the_server_reaches_should_stop(server: LiveServer, tmp_path: Path) -> None:
    run = track(name="to-cancel", server=server.url, token=server.token, spool_dir=tmp_path)
    run.log({"loss": 1.0}, step=0)
    run_id = wait_for(lambda: run.id, "the run to be created")
    with server.http() as http:
        answer = http.post(f"/api/v1/runs/{run_id}/cancel")
    assert answer.status_code == 200 and answer.json()["status"] == "cancelling"
    wait_for(run.should_stop, "the heartbeat to bring the stop request")
    assert run.finish("cancelled")
    assert rest(server.url, server.token, f"/api/v1/runs/{run_id}")["status"] == "cancelled"


def test_an_upload_cut_halfway_resumes_where_the_server_copy_ends(
    server: LiveServer, tmp_path: Path
) -> None:
    proxy = Proxy(int(urlsplit(server.url).port or 0))
    data = np.random.default_rng(1).bytes(3 * 1024 * 1024)
    weights = tmp_path / "weights.bin"
    weights.write_bytes(data)
    try:
        run = track(
            server=proxy.url,
            token=server.token,
            spool_dir=tmp_path / "spool",
            piece_bytes=1024 * 1024,
        )
        run.log({"loss": 1.0}, step=0)
        wait_for(lambda: run.id, "the run to be created")
        proxy.cut_after(1024 * 1024 + 512 * 1024)  # halfway through the second piece
        run.log_file(weights, kind="last", epoch=1)
        assert run.finish()
    finally:
        proxy.close()
    # Pieces at 0 and 1 MiB, the cut, then on from what the server kept: never from 0 again.
    assert proxy.offsets[:2] == [0, 1024 * 1024] and len(proxy.offsets) > 3
    assert proxy.offsets == sorted(proxy.offsets) and proxy.offsets.count(0) == 1
    last = rest(server.url, server.token, f"/api/v1/runs/{run.id}/checkpoints/last")
    assert last.content == data


def test_a_corrupted_file_is_refused_with_the_servers_message_and_the_rest_arrives(
    server: LiveServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"a" * 5000)
    run = track(name="corrupted", spool_dir=tmp_path / "spool")  # offline: spooled only
    run.log({"loss": 1.0}, step=1)
    run.log_file(weights, kind="weights")
    run.log({"loss": 0.5}, step=2)
    run.finish()
    (blob,) = (tmp_path / "spool" / run.key / "blobs").glob("*-weights.bin")
    with blob.open("r+b") as handle:  # same size, other bytes: only the checksum can tell
        handle.write(b"b")
    with caplog.at_level(logging.WARNING, logger="segtrack.tracking"):
        result = sync_spool(blob.parent.parent, server=server.url, token=server.token)
    assert result.problem is None and result.left == 0
    assert "expected SHA-256" in caplog.text and "the upload was discarded" in caplog.text
    run_id = Spool.open(blob.parent.parent).meta.run_id
    assert run_id is not None
    assert rest(server.url, server.token, f"/api/v1/runs/{run_id}/files")["items"] == []
    assert series(server.url, server.token, run_id)["loss"]["step"] == [1, 2]
    assert rest(server.url, server.token, f"/api/v1/runs/{run_id}")["status"] == "succeeded"


def test_sync_twice_gives_one_run_and_sends_nothing_the_second_time(
    server: LiveServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spool_dir = tmp_path / "spool"
    name = f"air-gapped-{tmp_path.name}"
    run = track(name=name, spool_dir=spool_dir)  # no server anywhere: spooled only
    for epoch in range(1, 4):
        run.log({"val/iou": 0.2 * epoch}, epoch=epoch)
        run.log_previews(epoch, [sample(0, epoch)])
    run.finish()
    assert run.id is None
    created_at = Spool.open(spool_dir / run.key).meta.created_at
    monkeypatch.setenv("SEGTRACK_TOKEN", server.token or "")

    assert cli.main(["sync", str(spool_dir), "--server", server.url]) == 0
    run_id = Spool.open(spool_dir / run.key).meta.run_id
    assert run_id is not None
    first = capsys.readouterr().out.strip()
    assert first == f"run {run.key} -> {server.url}/runs/{run_id}: 7 records sent"
    assert cli.main(["sync", str(spool_dir)]) == 0  # the server is remembered now
    second = capsys.readouterr().out.strip()
    assert second == f"run {run.key} -> {server.url}/runs/{run_id}: 0 records sent"

    runs = rest(server.url, server.token, f"/api/v1/runs?q={name}")["items"]
    assert [item["id"] for item in runs] == [run_id]
    got = rest(server.url, server.token, f"/api/v1/runs/{run_id}")
    assert got["status"] == "succeeded"
    assert utc_second(got["started_at"]) == utc_second(created_at)
    assert series(server.url, server.token, run_id)["val/iou"]["count"] == 3
    assert rest(server.url, server.token, f"/api/v1/runs/{run_id}/previews")["epochs"] == [1, 2, 3]


def utc_second(text: str) -> str:
    """An ISO time to the second, in UTC (the server may drop the offset or the microseconds)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")
