"""Weight files in a config (`init_from`, `encoder_weights`): another run's checkpoint by reference,
or a file inside the artifacts root or a dataset root; anything else is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from server.artifacts import checkpoint_dir, relative_path
from server.preview.repository import upsert_checkpoint
from server.settings import Settings
from tests.server.helpers import ApiClient, valid_config

pytestmark = pytest.mark.usefixtures("shapes_dataset")


def _submit(client: ApiClient, **config: Any) -> Any:
    return client.post("/api/v1/runs", json={"config": valid_config(**config)})


def _error(response: Any) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


def _run_with_best(client: ApiClient, session: Session, settings: Settings) -> tuple[int, Path]:
    response = _submit(client)
    assert response.status_code == 201, response.text
    run_id: int = response.json()["id"]
    best = checkpoint_dir(settings.artifacts_dir, run_id) / "best.pt"
    best.parent.mkdir(parents=True)
    best.write_bytes(b"weights")
    upsert_checkpoint(
        session,
        run_id=run_id,
        kind="best",
        epoch=2,
        metric=0.9,
        path=relative_path(settings.artifacts_dir, best),
        size_bytes=7,
    )
    session.commit()
    return run_id, best


def test_a_run_reference_becomes_its_checkpoint(
    client: ApiClient, db_session: Session, settings: Settings
) -> None:
    source, best = _run_with_best(client, db_session, settings)
    for reference in (f"run:{source}", f"run:{source}:best"):
        response = _submit(client, init_from=reference)
        assert response.status_code == 201, response.text
        assert response.json()["config"]["init_from"] == str(best.resolve())

    response = _submit(client, init_from=f"run:{source}:last")
    assert response.status_code == 422
    assert (
        _error(response)["message"] == f"config.init_from: run {source} has no last checkpoint yet"
    )
    response = _submit(client, init_from="run:999999")
    assert response.status_code == 422
    assert "run 999999 does not exist" in _error(response)["message"]


def test_files_inside_the_allowed_folders_are_accepted(
    client: ApiClient, dataset_root: Path, settings: Settings
) -> None:
    weights = dataset_root / "pretrained" / "unet.pt"
    weights.parent.mkdir()
    weights.write_bytes(b"weights")
    for given in (str(weights), "pretrained/unet.pt"):
        response = _submit(client, init_from=given)
        assert response.status_code == 201, response.text
        assert response.json()["config"]["init_from"] == str(weights.resolve())

    response = _submit(client, init_from="pretrained/missing.pt")
    assert response.status_code == 422
    assert "no file 'pretrained/missing.pt'" in _error(response)["message"]


def test_files_elsewhere_on_the_server_are_refused(
    client: ApiClient, tmp_path: Path, dataset_root: Path, settings: Settings
) -> None:
    secret = tmp_path / "secret.pt"
    secret.write_bytes(b"not yours")
    (dataset_root / "escape.pt").symlink_to(secret)
    attempts: list[dict[str, object]] = [
        {"init_from": "/etc/passwd"},
        {"init_from": str(secret)},
        {"init_from": "../secret.pt"},
        {"init_from": "escape.pt"},
        {"model": "vgg16-unet", "encoder_weights": str(secret)},
    ]
    for config in attempts:
        response = _submit(client, **config)
        assert response.status_code == 403, (config, response.text)
        error = _error(response)
        assert error["code"] == "path_not_allowed"
        assert "run:<id>[:best|last]" in error["message"]
        assert str(settings.artifacts_dir) in error["message"]
