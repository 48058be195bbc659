"""Previews, checkpoints and logs are served from the files a worker wrote under the artifacts."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy.orm import Session

from server.artifacts import checkpoint_dir, log_path, preview_paths
from server.preview.repository import add_preview
from server.preview.service import PreviewSampleFiles, record_checkpoint, record_previews
from server.settings import Settings
from tests.server.helpers import ApiClient, create_external


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(path)


def test_previews_by_epoch(client: ApiClient, settings: Settings, db_session: Session) -> None:
    run = create_external(client)
    root = settings.artifacts_dir
    for epoch in (1, 2):
        samples = []
        for index in range(2):
            paths = preview_paths(root, run["id"], epoch, index)
            _png(paths.image, 10 + index)
            _png(paths.truth, index)
            _png(paths.prediction, epoch)
            samples.append(PreviewSampleFiles(index, f"sample-{index}.png", paths))
        record_previews(db_session, root, run["id"], epoch, samples)
    db_session.commit()

    latest = client.get(f"/api/v1/runs/{run['id']}/previews").json()
    assert latest["epochs"] == [1, 2] and latest["epoch"] == 2
    assert [sample["name"] for sample in latest["samples"]] == ["sample-0.png", "sample-1.png"]
    first = client.get(f"/api/v1/runs/{run['id']}/previews?epoch=1").json()
    url = first["samples"][1]["prediction_url"]
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert "immutable" in response.headers["cache-control"]
    with Image.open(io.BytesIO(response.content)) as image:
        assert np.asarray(image).max() == 1
    assert client.get(first["samples"][1]["image_url"]).status_code == 200
    assert client.get(f"/api/v1/runs/{run['id']}/previews?epoch=7").status_code == 404
    assert client.get(f"/api/v1/runs/{run['id']}/previews/1/9/image.png").status_code == 404
    assert client.get(f"/api/v1/runs/{run['id']}/previews/1/0/mask.png").status_code == 422


def test_preview_paths_cannot_leave_the_artifacts(
    client: ApiClient, db_session: Session, tmp_path: Path
) -> None:
    run = create_external(client)
    secret = tmp_path / "secret.png"
    _png(secret, 1)
    add_preview(
        db_session,
        run_id=run["id"],
        epoch=1,
        sample_index=0,
        name="x",
        image_path="../../secret.png",
        truth_path=str(secret),
        prediction_path="missing.png",
    )
    db_session.commit()
    for kind in ("image", "truth", "prediction"):
        response = client.get(f"/api/v1/runs/{run['id']}/previews/1/0/{kind}.png")
        assert response.status_code == 404, kind


def test_no_previews_yet(client: ApiClient) -> None:
    run = create_external(client)
    assert client.get(f"/api/v1/runs/{run['id']}/previews").json() == {
        "epochs": [],
        "epoch": None,
        "samples": [],
    }


def test_checkpoints_list_and_download(
    client: ApiClient, settings: Settings, db_session: Session
) -> None:
    run = create_external(client)
    folder = checkpoint_dir(settings.artifacts_dir, run["id"])
    folder.mkdir(parents=True)
    (folder / "best.pt").write_bytes(b"best-weights")
    record_checkpoint(
        db_session,
        settings.artifacts_dir,
        run["id"],
        "best",
        folder / "best.pt",
        epoch=3,
        metric=0.8,
    )
    db_session.commit()
    listed = client.get(f"/api/v1/runs/{run['id']}/checkpoints").json()["checkpoints"]
    assert listed == [
        {
            "kind": "best",
            "epoch": 3,
            "metric": 0.8,
            "size_bytes": 12,
            "url": f"/api/v1/runs/{run['id']}/checkpoints/best",
        }
    ]
    response = client.get(listed[0]["url"])
    assert response.status_code == 200 and response.content == b"best-weights"
    assert f"run-{run['id']}-best.pt" in response.headers["content-disposition"]
    missing = client.get(f"/api/v1/runs/{run['id']}/checkpoints/last")
    assert missing.status_code == 404 and "no last checkpoint" in missing.json()["error"]["message"]
    assert client.get(f"/api/v1/runs/{run['id']}/checkpoints/middle").status_code == 422


def test_logs_tail(client: ApiClient, settings: Settings) -> None:
    run = create_external(client)
    assert client.get(f"/api/v1/runs/{run['id']}/logs").json() == {"lines": []}
    path = log_path(settings.artifacts_dir, run["id"])
    path.parent.mkdir(parents=True)
    path.write_text("".join(f"line {index}\n" for index in range(5000)), encoding="utf-8")
    lines = client.get(f"/api/v1/runs/{run['id']}/logs?tail=3").json()["lines"]
    assert lines == ["line 4997", "line 4998", "line 4999"]
    assert len(client.get(f"/api/v1/runs/{run['id']}/logs").json()["lines"]) == 200
    assert client.get(f"/api/v1/runs/{run['id']}/logs?tail=-1").status_code == 422
