"""`segtrack db upgrade` never shows the database password: not in what it prints, not in the
migration log (even with -v), not when the database cannot be reached."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import create_scratch_database, drop_scratch_database

PASSWORD = "Pw-s3cret-91"
ROOT = Path(__file__).parents[2]


@pytest.fixture
def url_with_password() -> Iterator[str]:
    """A scratch database's URL carrying a password (trust auth ignores it)."""
    name = f"segtrack_test_{os.getpid()}_upgrade_cli"
    url = make_url(create_scratch_database(name)).set(password=PASSWORD)
    yield url.render_as_string(hide_password=False)
    drop_scratch_database(name)


def _upgrade(url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "SEGTRACK_DATABASE_URL": url,
        "SEGTRACK_DATA_DIR": str(tmp_path),
        "NO_ALBUMENTATIONS_UPDATE": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "segtrack", "-v", "db", "upgrade"],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_upgrade_hides_the_password(url_with_password: str, tmp_path: Path) -> None:
    result = _upgrade(url_with_password, tmp_path)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert PASSWORD not in output
    assert "database at the current schema: postgresql+psycopg://postgres:***@" in result.stdout
    assert "migrating postgresql+psycopg://postgres:***@" in result.stderr


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://segtrack:{PASSWORD}@127.0.0.1:{port}/segtrack"
    result = _upgrade(url, tmp_path)
    assert result.returncode == 2
    assert PASSWORD not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    shown = f"postgresql+psycopg://segtrack:***@127.0.0.1:{port}/segtrack"
    assert f"error: cannot reach the database at {shown}: " in result.stderr
    assert "SEGTRACK_DATABASE_URL" in result.stderr
