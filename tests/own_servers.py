"""Throw-away Redis and PostgreSQL servers on free ports, for tests that stop, kill or restart
them; the shared ones on 6379 and 5432 are never touched."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed daemon is reaped by init; until then it is a zombie, which is gone for us.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rpartition(")")[2].split()[0] != "Z"


class OwnRedis:
    """A throw-away redis-server on its own port, which a test may kill and start again."""

    def __init__(self, folder: Path) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("this test needs redis-server on the PATH (apt-get install redis-server)")
        self.port = free_port()
        self.folder = folder
        self.pidfile = folder / "redis.pid"
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        subprocess.run(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "yes",
                "--pidfile", str(self.pidfile), "--dir", str(self.folder),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    assert time.monotonic() < deadline, "redis-server did not start"
                    time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL, as a crash would: no goodbye to the clients."""
        if not self.pidfile.exists():
            return
        pid = int(self.pidfile.read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(pid):
            assert time.monotonic() < deadline, "redis-server did not stop"
            time.sleep(0.02)
        self.pidfile.unlink()


def _postgres_bin() -> Path:
    """The folder of the newest installed PostgreSQL's programs (Debian's layout, or PATH)."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name)
    )
    if versions:
        return versions[-1]
    on_path = shutil.which("pg_ctl")
    if on_path is None:
        pytest.fail("this test needs PostgreSQL's initdb and pg_ctl (apt-get install postgresql)")
    return Path(on_path).parent


class OwnPostgres:
    """A throw-away PostgreSQL cluster (trust auth, user `postgres`) on its own port and socket
    folder, which a test may stop and start again. Under root its programs run as the
    `postgres` user, as PostgreSQL refuses root; `remove()` deletes the cluster."""

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.port = free_port()
        # Not under pytest's tmp folder: the `postgres` user may not enter root's.
        self.folder = Path(tempfile.mkdtemp(prefix="segtrack-pg-"))
        self.data = self.folder / "data"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._as_owner: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            self._as_owner = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [*self._as_owner, str(self.bin / program), *args], check=True, capture_output=True
        )

    def start(self) -> None:
        """Start it and wait until it takes connections."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.folder / "postgres.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")
        engine = create_engine(self.url)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                try:
                    with engine.connect() as connection:
                        connection.execute(text("SELECT 1"))
                    return
                except OperationalError:
                    assert time.monotonic() < deadline, "PostgreSQL did not take connections"
                    time.sleep(0.05)
        finally:
            engine.dispose()

    def stop(self) -> None:
        """A fast shutdown: open connections are cut, as in a restart by an operator."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        """Stop it (when running) and delete its files."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)
