"""The account commands an operator runs on the server's host, and `segtrack serve` refusing a
network address without accounts."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from segtrack.cli import main
from segtrack.serve_access import ServeRefused, is_loopback, prepare_serving
from server.auth.service import principal_from_token
from server.db import create_db_engine, make_session_factory, session_scope, upgrade_database
from server.settings import get_settings


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'segtrack.db'}"
    upgrade_database(url)
    # `segtrack serve` settles its settings in the environment: keep that inside the test.
    monkeypatch.setattr(os, "environ", dict(os.environ))
    monkeypatch.setenv("SEGTRACK_DATABASE_URL", url)
    monkeypatch.setenv("SEGTRACK_DATA_DIR", str(tmp_path))
    for name in ("SEGTRACK_AUTH", "SEGTRACK_ALLOWED_HOSTS", "SEGTRACK_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_users_and_tokens_from_the_command_line(
    database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long password\n"))
    assert main(["user", "create", "ada", "--role", "admin", "--password-stdin"]) == 0
    assert main(["user", "create", "bob", "--no-password"]) == 0
    assert main(["user", "create", "bob", "--no-password"]) == 2
    assert "exists already" in capsys.readouterr().err
    assert main(["user", "list"]) == 0
    listing = capsys.readouterr().out
    assert "ada" in listing and "admin" in listing and "token only" in listing
    assert main(["token", "create", "--user", "bob", "--name", "ci", "--scope", "read"]) == 0
    token = capsys.readouterr().out.strip()
    engine = create_db_engine(database)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        found = principal_from_token(session, token)
        assert found is not None and found[0].name == "bob" and found[0].scope == "read"
    assert main(["token", "revoke", "1"]) == 0
    with session_scope(factory) as session:
        assert principal_from_token(session, token) is None
    assert main(["user", "set-role", "ada", "member"]) == 2
    assert "last admin" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["user", "create", "eve"]) == 2
    assert "--password-stdin" in capsys.readouterr().err
    assert main(["invite", "--role", "viewer", "--url", "http://lab:8000"]) == 0
    assert capsys.readouterr().out.startswith("http://lab:8000/setup?code=")
    engine.dispose()


def test_serve_refuses_a_network_address_without_accounts(database: str) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    prepare_serving("127.0.0.1", 8000, insecure_no_auth=False)
    with pytest.raises(ServeRefused, match="segtrack user create NAME --role admin"):
        prepare_serving("0.0.0.0", 8000, insecure_no_auth=False)
    assert main(["user", "create", "ada", "--role", "admin", "--no-password"]) == 0
    os.environ.pop("SEGTRACK_ALLOWED_HOSTS")
    prepare_serving("10.1.2.3", 8000, insecure_no_auth=False)
    assert "10.1.2.3" in get_settings().allowed_hosts


def test_insecure_no_auth_is_explicit(database: str, caplog: pytest.LogCaptureFixture) -> None:
    prepare_serving("0.0.0.0", 8000, insecure_no_auth=True)
    assert get_settings().auth == "none"
    assert "WITHOUT accounts" in caplog.text
