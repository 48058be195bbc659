"""Scripts on the machine that runs `segtrack up` find its token without being told."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from segtrack import local_tokens
from segtrack.client import SegtrackClient


def test_a_remembered_token_is_found_for_the_same_server_and_kept_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGTRACK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SEGTRACK_TOKEN", raising=False)
    path = local_tokens.remember("http://127.0.0.1:8000", "st_local")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert local_tokens.find("http://localhost:8000/") == "st_local"
    assert local_tokens.find("http://127.0.0.1:8001") is None
    with SegtrackClient("http://localhost:8000") as client:
        assert client._headers == {"Authorization": "Bearer st_local"}
    monkeypatch.setenv("SEGTRACK_TOKEN", "st_env")
    with SegtrackClient("http://127.0.0.1:8000") as client:
        assert client._headers == {"Authorization": "Bearer st_env"}
    with SegtrackClient("http://127.0.0.1:8000", token="") as client:
        assert client._headers == {}


def test_private_files_are_never_readable_by_others(tmp_path: Path) -> None:
    target = tmp_path / "data" / "token"
    target.parent.mkdir()
    target.write_text("old")
    target.chmod(0o644)
    local_tokens.write_private(target, "st_new")
    assert local_tokens.read_token_file(target) == "st_new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert local_tokens.read_token_file(tmp_path / "missing") is None
