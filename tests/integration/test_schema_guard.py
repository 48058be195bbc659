"""Server and worker refuse an outdated database schema and say how to upgrade it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import create_scratch_database, drop_scratch_database


@pytest.fixture
def empty_database() -> Iterator[str]:
    name = f"segtrack_unmigrated_{os.getpid()}"
    yield create_scratch_database(name)
    drop_scratch_database(name)


@pytest.mark.parametrize("command", [["worker"], ["serve", "--port", "0"]])
def test_refuses_an_outdated_schema_and_names_the_upgrade(
    empty_database: str, tmp_path: Path, command: list[str]
) -> None:
    environment = {
        **os.environ,
        "SEGTRACK_DATABASE_URL": empty_database,
        "SEGTRACK_DATA_DIR": str(tmp_path),
        "NO_ALBUMENTATIONS_UPDATE": "1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "segtrack", *command],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "segtrack db upgrade" in result.stderr
    assert "Traceback" not in result.stderr
