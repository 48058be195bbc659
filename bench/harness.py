"""What the API benchmarks share: a scratch PostgreSQL database, segtrack's API started the way an
operator starts it (schema, admin account and token made with the CLI, then `segtrack serve`),
process-tree CPU readings to tell when a server has settled, and latency percentiles.

Everything listens on 127.0.0.1 only. Run the benchmarks from the repository root as modules
(`.venv/bin/python -m bench.api_bench`), so `bench.harness` is importable.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN = os.environ.get(
    "SEGTRACK_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
"""The shared server's admin URL; the benchmarks create and drop their own databases on it."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SEGTRACK_CLI = Path(sys.executable).with_name("segtrack")
"""The console script next to this interpreter (`.venv/bin/segtrack`)."""


# --- databases and ports ------------------------------------------------------------------------


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """An empty PostgreSQL database `<prefix>_<pid>` (dropped first if a crashed run left it,
    and dropped again at the end); yields its URL with the psycopg 3 driver. The process id
    keeps two benchmarks running at once from dropping each other's database."""
    name = f"{prefix}_{os.getpid()}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(POSTGRES_ADMIN).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def database_name(url: str) -> str:
    return make_url(url).database or ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_ready(url: str, process: subprocess.Popen[bytes], limit_s: float) -> float:
    """Seconds until GET `url` answers 200; raises if the process exits or `limit_s` passes."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} not ready after {limit_s:.0f} s")


def stop_process_group(process: subprocess.Popen[bytes], grace_s: float = 15.0) -> None:
    """SIGTERM to the group `process` leads (it was started with `start_new_session`), SIGKILL
    to what is left after `grace_s`; so helpers it spawned (MLflow's job runner) go too."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(grace_s)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(5)


# --- segtrack as an operator runs it --------------------------------------------------------------


@dataclass(frozen=True)
class SegtrackApi:
    """A running `segtrack serve` and the bearer token of its admin account."""

    url: str
    token: str
    pid: int
    ready_s: float

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def segtrack_env(
    database_url: str, data_dir: Path, redis_url: str | None, extra: Mapping[str, str] = {}
) -> dict[str, str]:
    """This process's environment less any SEGTRACK_* of the caller's, plus the bench's own."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SEGTRACK_")}
    env.update(
        SEGTRACK_DATABASE_URL=database_url,
        SEGTRACK_DATA_DIR=str(data_dir),
        SEGTRACK_BROKER_URL="memory://",
        NO_ALBUMENTATIONS_UPDATE="1",
    )
    if redis_url is not None:
        env["SEGTRACK_REDIS_URL"] = redis_url
    env.update(extra)
    return env


def _cli(env: Mapping[str, str], *args: str) -> str:
    command = [str(SEGTRACK_CLI), *args]
    done = subprocess.run(
        command, check=False, env=dict(env), cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"segtrack {' '.join(args)} failed:\n{done.stderr.strip()}")
    return done.stdout


def create_admin_token(env: Mapping[str, str]) -> str:
    """The schema, an admin `bench` without a password and a token for it, made with the CLI
    against the bench's database (as an operator would); returns the token."""
    _cli(env, "db", "upgrade")
    _cli(env, "user", "create", "bench", "--role", "admin", "--no-password")
    token = _cli(env, "token", "create", "--user", "bench", "--name", "bench").strip()
    if not token or len(token.split()) != 1:
        raise RuntimeError(f"`segtrack token create` printed no token: {token!r}")
    return token


@contextmanager
def segtrack_api(env: Mapping[str, str], log_path: Path, workers: int = 1) -> Iterator[SegtrackApi]:
    """`segtrack serve` on 127.0.0.1 with `env` (its output to `log_path`) and `workers` API
    processes, once its database has an admin token; stopped at the end."""
    token = create_admin_token(env)
    port = free_port()
    command = [str(SEGTRACK_CLI), "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            ready = wait_ready(f"{url}/healthz", process, 60)
            yield SegtrackApi(url=url, token=token, pid=process.pid, ready_s=ready)
        finally:
            stop_process_group(process)


# --- process CPU ---------------------------------------------------------------------------------


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (by /proc parent ids)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time so far of the processes still alive among `pids`."""
    total = 0
    for pid in pids:
        try:
            # Fields after the command name, which is in parentheses and may hold spaces.
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def command_lines(pids: Sequence[int]) -> list[str]:
    lines = []
    for pid in pids:
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        lines.append(raw.replace(b"\0", b" ").decode(errors="replace").strip())
    return lines


def wait_quiet(
    roots: Sequence[int],
    *,
    max_share: float = 0.1,
    window_s: float = 1.0,
    windows: int = 3,
    limit_s: float = 180.0,
) -> float:
    """Wait until the process trees of `roots` together use under `max_share` of one core for
    `windows` consecutive windows (start-up work done: migrations, job runners, imports).

    Returns the seconds waited; raises RuntimeError after `limit_s`.
    """
    started = time.perf_counter()
    quiet = 0
    while quiet < windows:
        if time.perf_counter() - started > limit_s:
            raise RuntimeError(f"servers still busy after {limit_s:.0f} s")
        pids = [pid for root in roots for pid in process_tree(root)]
        before = cpu_seconds(pids)
        time.sleep(window_s)
        quiet = quiet + 1 if cpu_seconds(pids) - before < max_share * window_s else 0
    return time.perf_counter() - started


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- latencies -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (`fraction` 0.5 is the median) of unsorted `values`."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    # The tolerance keeps 0.95 * 100 (95.00000000000001 in floating point) at rank 95.
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered) - 1e-9)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    table = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(row[index]) for row in table) for index in range(len(headers))]
    line = "  ".join("-" * width for width in widths)
    print(f"\n{title}\n{line}")
    for number, row in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if number == 0:
            print(line)
    print(line, flush=True)
