"""Settings from the environment, and an app that starts without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from server.settings import Settings


def test_defaults_follow_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGTRACK_DATA_DIR", str(tmp_path / "data"))
    settings = Settings()
    root = (tmp_path / "data").resolve()
    assert settings.data_dir == root
    assert settings.database_url == f"sqlite:///{root / 'segtrack.db'}"
    assert settings.artifacts_dir == root / "artifacts"
    assert settings.dataset_roots == [root / "datasets"]
    assert settings.redis_url is None and settings.default_queue == "default"
    assert settings.max_body_bytes == 16 * 1024 * 1024


@pytest.mark.parametrize("value", ["/a:/b", '["/a", "/b"]'])
def test_dataset_roots_from_the_environment(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGTRACK_DATASET_ROOTS", value)
    assert Settings().dataset_roots == [Path("/a"), Path("/b")]


def test_create_app_does_not_import_torch(settings: Settings) -> None:
    code = (
        "import sys\n"
        "from server.app import create_app\n"
        "from server.settings import Settings\n"
        f"create_app(Settings(data_dir={str(settings.data_dir)!r}))\n"
        "heavy = ('torch', 'albumentations', 'cv2', 'worker')\n"
        "loaded = [name for name in heavy if name in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
