"""What idle Server-Sent Events streams cost the server, and how fast one event reaches them all.

    .venv/bin/python bench/sse_idle.py                  # PostgreSQL + Redis, 200 streams, 20 s
    .venv/bin/python bench/sse_idle.py --sqlite         # embedded mode: SQLite, events by polling
    .venv/bin/python bench/sse_idle.py --streams 500 --window 30

Starts the API with uvicorn (one worker) in a subprocess on a throw-away database (PostgreSQL
database `segtrack_bench_sse`, or SQLite in a temporary folder), opens N idle streams on
`/api/v1/events` from 127.0.0.1, waits until every one has its `retry:` line (subscribed), then
reads the server process's CPU time from /proc over a fixed window and prints it as a share of
one core, with its threads and memory. Then one metric write is sent and the time until every
stream has received its event is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from server.auth.service import create_token, create_user
from server.db import create_db_engine, make_session_factory, session_scope, upgrade_database

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BENCH_DATABASE = "segtrack_bench_sse"
REDIS_URL = "redis://127.0.0.1:6379/13"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    # Fields after the command name, which is in parentheses and may hold spaces.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _status(pid: int, name: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    return "?"


@contextmanager
def bench_database(sqlite: bool, data_dir: Path) -> Iterator[str]:
    if sqlite:
        url = f"sqlite:///{data_dir / 'segtrack.db'}"
        upgrade_database(url)
        yield url
        return
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {BENCH_DATABASE}"))
    url = make_url(POSTGRES_ADMIN).set(database=BENCH_DATABASE).render_as_string(False)
    upgrade_database(url)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)"))
        admin.dispose()


def admin_token(database_url: str) -> str:
    """A token of a new admin in the bench's database, for every request of the bench."""
    engine = create_db_engine(database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            user = create_user(session, "bench", "admin", None)
            return create_token(session, user.id, "sse bench", "write").token
    finally:
        engine.dispose()


@contextmanager
def server(env: dict[str, str]) -> Iterator[tuple[str, int]]:
    port = _free_port()
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "server.app:build_app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--log-level", "warning",
        "--timeout-graceful-shutdown", "2",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with code {process.returncode}")
            try:
                if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not ready after 30 s")
            time.sleep(0.05)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(10)


class Stream:
    """One idle SSE connection read with bare asyncio, so the client side costs little."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.ready = asyncio.Event()
        self.events = 0
        self.got_event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(
            b"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
            b"Authorization: Bearer %s\r\n\r\n" % self.token.encode()
        )
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"stream refused: {status.decode().strip()}")
        try:
            while line := await reader.readline():
                if line.startswith(b"retry:"):
                    self.ready.set()
                elif line.startswith(b"data:"):
                    self.events += 1
                    self.got_event.set()
        finally:
            writer.close()


async def measure(url: str, token: str, pid: int, streams: int, window: float) -> None:
    port = int(url.rsplit(":", 1)[1])
    opened = [Stream(port, token) for _ in range(streams)]
    for stream in opened:
        stream.task = asyncio.create_task(stream.run())
    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(stream.ready.wait() for stream in opened)), 60)
    print(f"{streams} streams subscribed in {time.perf_counter() - started:.2f} s")
    await asyncio.sleep(2.0)  # let start-up work settle before the window

    cpu_before, wall_before = _cpu_seconds(pid), time.perf_counter()
    await asyncio.sleep(window)
    cpu = _cpu_seconds(pid) - cpu_before
    wall = time.perf_counter() - wall_before
    print(f"server CPU while {streams} streams idle for {wall:.0f} s: {cpu:.2f} s")
    print(f"  = {100 * cpu / wall:.1f} % of one core")
    print(f"  threads: {_status(pid, 'Threads')}, resident memory: {_status(pid, 'VmRSS')}")

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=10, headers=headers) as http:
        created = await http.post("/api/v1/runs", json={"name": "sse-bench", "external": True})
        created.raise_for_status()
        await asyncio.sleep(1.0)  # the run's own event reaches every stream first
        for stream in opened:
            stream.got_event.clear()
        point = {"key": "loss", "step": 1, "value": 0.5}
        sent = time.perf_counter()
        response = await http.post(
            f"/api/v1/runs/{created.json()['id']}/metrics", json={"points": [point]}
        )
        response.raise_for_status()
        await asyncio.wait_for(asyncio.gather(*(stream.got_event.wait() for stream in opened)), 30)
        print(
            f"one metric write reached all {streams} streams in {_ms(time.perf_counter() - sent)}"
        )
    for stream in opened:
        assert stream.task is not None
        stream.task.cancel()
    await asyncio.gather(*(stream.task for stream in opened if stream.task), return_exceptions=True)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--window", type=float, default=20.0, help="seconds of CPU measuring")
    parser.add_argument("--sqlite", action="store_true", help="embedded mode (no Redis)")
    parser.add_argument("--redis-url", default=REDIS_URL)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        with bench_database(args.sqlite, data_dir) as database_url:
            token = admin_token(database_url)
            env = {
                "SEGTRACK_DATA_DIR": str(data_dir),
                "SEGTRACK_DATABASE_URL": database_url,
                "SEGTRACK_BROKER_URL": "memory://",
                "SEGTRACK_REAPER_INTERVAL_S": "0",
                # Every stream comes from 127.0.0.1: lift the caps above the bench's count.
                "SEGTRACK_SSE_MAX_STREAMS": str(args.streams + 10),
                "SEGTRACK_SSE_MAX_STREAMS_PER_CLIENT": str(args.streams + 10),
            }
            if not args.sqlite:
                env["SEGTRACK_REDIS_URL"] = args.redis_url
            mode = "SQLite, polling" if args.sqlite else "PostgreSQL + Redis"
            print(f"segtrack SSE idle bench ({mode})")
            with server(env) as (url, pid):
                asyncio.run(measure(url, token, pid, args.streams, args.window))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
