"""Many concurrent writers against segtrack's API on PostgreSQL: do they all succeed, is anything
lost or doubled, how long do writes take, and are other requests served meanwhile?

    .venv/bin/python -m bench.concurrent_writers                  # 500 writers x 10 batches x 20
    .venv/bin/python -m bench.concurrent_writers --pause 10 --batches 3   # a batch per 10 s each
    .venv/bin/python -m bench.concurrent_writers --writers 100 --batches 5

Starts the API as an operator would: a scratch PostgreSQL database of its own on the shared
server at 127.0.0.1:5432 (`segtrack_bench_writers_<pid>`, dropped at the end), the schema, an
admin and its token made with the CLI, then `segtrack serve --host 127.0.0.1` with the production
settings, its own Redis db number and the in-memory broker. Every request carries the token.

Two phases, one after the other:
- one run: N writers (asyncio tasks, each with an httpx client of its own) all post M
  batches of P points in sequence to ONE external run; writer w writes key `writer/<w mod 10>`,
  so each key's summary row is shared by a tenth of the writers, and steps no other writer uses;
- distinct runs: the same to N runs, one each (created before the phase, untimed).
Meanwhile one more client, in turn, lists runs (`GET /api/v1/runs?limit=20`) and creates a run
(`POST /api/v1/runs`), 10 ms apart, until the writers are done.

Printed per phase: requests, errors (non-2xx or transport errors), p50/p95/p99/max latency of the
writes and of the other requests, the wall time; the points read back in SQL: lost = answered 2xx
but not stored, the points of failed writes (and how many of them were stored all the same),
duplicated = rows - distinct, and the per-key summary counts and the "new" counts the server
reported against the distinct rows; from pg_stat_activity sampled every 0.2 s, the most sessions
that were active, waiting on a lock and idle in a transaction at once, and what active sessions
waited for; the CPU the server used (cores, and milliseconds per request) and this client's.

Bounded: each request times out after --request-timeout s, each phase after --phase-limit s;
all traffic goes to 127.0.0.1. With writers posting back to back the latency is set by the
server's throughput (Little's law: latency ~ writers / requests per second); `--pause` gives each
writer a think time between its batches, as a training script has, and spreads the writers'
starts over one pause.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from bench.harness import (
    POSTGRES_ADMIN,
    SegtrackApi,
    cpu_seconds,
    database_name,
    ms,
    percentile,
    print_table,
    process_tree,
    scratch_database,
    segtrack_api,
    segtrack_env,
)

DATABASE = "segtrack_bench_writers"
"""Prefix of the scratch database's name (the process id follows)."""
REDIS_URL = "redis://127.0.0.1:6379/15"
"""segtrack's Redis db number in this bench: none of the tests' or the other benches'."""
KEYS_PER_RUN = 10
StoredPoint = tuple[int, str, int]
"""(run id, key, step)"""
REQUEST_HEADERS = (
    "phase / requests",
    "n",
    "errors",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "max ms",
    "req/s",
)
SESSION_HEADERS = (
    "phase", "active", "waiting on a lock", "idle in transaction", "server cores",
    "server CPU ms/request", "this client's cores",
)  # fmt: skip
POINT_HEADERS = (
    "phase", "expected", "stored", "lost (acknowledged)", "in failed writes", "dup rows",
    "dup summary", "dup reported", "unfinished writers", "wall s",
)  # fmt: skip
OTHER_PAUSE_S = 0.01
KEEPALIVE_S = 2.0


@dataclass
class Requests:
    """Latencies and outcomes of one kind of request."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    async def send(
        self, http: httpx.AsyncClient, method: str, path: str, body: Any = None
    ) -> httpx.Response | None:
        """The response when it is 2xx; otherwise None, with the error counted. Timed from
        sending to having read the whole response."""
        started = time.perf_counter()
        try:
            response = await http.request(method, path, json=body)
        except httpx.HTTPError as error:
            self.latencies.append(time.perf_counter() - started)
            self.errors[type(error).__name__] += 1
            return None
        self.latencies.append(time.perf_counter() - started)
        if not response.is_success:
            self.errors[f"HTTP {response.status_code}"] += 1
            return None
        return response

    def row(self, label: str, wall_s: float) -> tuple[str, ...]:
        values = self.latencies
        quantiles = (ms(percentile(values, q)) for q in (0.5, 0.95, 0.99))
        errors = sum(self.errors.values())
        shown = f"{errors}" + (
            f" ({', '.join(f'{k} x{n}' for k, n in self.errors.items())})" * bool(errors)
        )
        return (
            label, str(len(values)), shown, *quantiles, ms(max(values, default=float("nan"))),
            f"{len(values) / wall_s:,.0f}",
        )  # fmt: skip


@dataclass
class DatabaseSampler:
    """Sessions of one database sampled from pg_stat_activity every `interval_s`, in a thread of
    its own: the most that were active, waiting on a lock or idle inside a transaction at once,
    and what active sessions were waiting for (`wait_event_type:wait_event`, summed over
    samples)."""

    database: str
    interval_s: float = 0.2
    most: Counter[str] = field(default_factory=Counter)
    waits: Counter[str] = field(default_factory=Counter)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    QUERY = text("""
        SELECT state, wait_event_type, wait_event FROM pg_stat_activity
        WHERE datname = :database AND pid <> pg_backend_pid()
    """)

    def __enter__(self) -> DatabaseSampler:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _sample(self) -> None:
        engine = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT", pool_size=1)
        try:
            with engine.connect() as connection:
                while not self._stop.wait(self.interval_s):
                    now: Counter[str] = Counter()
                    for state, wait_type, wait in connection.execute(
                        self.QUERY, {"database": self.database}
                    ):
                        if state == "active":
                            now["active"] += 1
                            self.waits[f"{wait_type}:{wait}" if wait_type else "on CPU"] += 1
                        elif (state or "").startswith("idle in transaction"):
                            now["idle_tx"] += 1
                        if wait_type == "Lock":
                            now["lock"] += 1
                    self.most |= now  # the larger count of each
                    self.samples += 1
        finally:
            engine.dispose()

    def top_waits(self, count: int = 4) -> str:
        """The commonest states of active sessions, as average sessions in each."""
        if not self.samples:
            return ""
        return ", ".join(
            f"{name} {total / self.samples:.1f}" for name, total in self.waits.most_common(count)
        )


@dataclass
class Phase:
    """What one phase sent and got back."""

    name: str
    writes: Requests = field(default_factory=Requests)
    lists: Requests = field(default_factory=Requests)
    creates: Requests = field(default_factory=Requests)
    reported_new: int = 0
    acknowledged: set[StoredPoint] = field(default_factory=set)
    """Points of writes answered 2xx."""
    refused: set[StoredPoint] = field(default_factory=set)
    """Points of writes that failed (non-2xx or a transport error): maybe stored, maybe not."""
    unfinished: int = 0
    wall_s: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    database: DatabaseSampler | None = None
    stored: Stored | None = None


def batch_points(writer: int, batch: int, args: argparse.Namespace, one_run: bool) -> list[Any]:
    """Writer `writer`'s batch `batch`: P points of one key on steps no other writer uses."""
    points, per_writer = args.points, args.batches * args.points
    if one_run:
        key = f"writer/{writer % KEYS_PER_RUN}"
        first = (writer // KEYS_PER_RUN) * per_writer + batch * points
    else:
        key, first = "loss", batch * points
    return [
        {"key": key, "step": first + index, "value": (writer + index) / per_writer}
        for index in range(points)
    ]


async def create_runs(http: httpx.AsyncClient, count: int, prefix: str) -> list[int]:
    """`count` external runs, 16 requests at a time (before the timed phase)."""
    gate = asyncio.Semaphore(16)

    async def create(index: int) -> int:
        async with gate:
            body = {"name": f"{prefix}-{index}", "external": True}
            response = await http.post("/api/v1/runs", json=body)
            response.raise_for_status()
            run_id: int = response.json()["id"]
            return run_id

    return list(await asyncio.gather(*(create(index) for index in range(count))))


async def run_phase(
    clients: list[httpx.AsyncClient], phase: Phase, run_ids: list[int], args: argparse.Namespace
) -> None:
    """Every writer posts its batches in sequence (writer i through `clients[i]`) while the
    other client (the last one) lists and creates runs."""
    one_run = len(run_ids) == 1
    done = asyncio.Event()

    async def writer(number: int) -> None:
        http = clients[number]
        run_id = run_ids[0 if one_run else number]
        path = f"/api/v1/runs/{run_id}/metrics"
        # Paced writers start spread over one pause, as independent scripts would; back-to-back
        # writers all start at once.
        await asyncio.sleep(args.pause * number / args.writers)
        for batch in range(args.batches):
            if batch:
                await asyncio.sleep(args.pause)
            points = batch_points(number, batch, args, one_run)
            response = await phase.writes.send(http, "POST", path, {"points": points})
            sent = {(run_id, point["key"], point["step"]) for point in points}
            if response is None:
                phase.refused |= sent
            else:
                phase.acknowledged |= sent
                phase.reported_new += response.json()["new"]

    async def other() -> None:
        http = clients[-1]
        created = 0
        while not done.is_set():
            await phase.lists.send(http, "GET", "/api/v1/runs?limit=20")
            await asyncio.sleep(OTHER_PAUSE_S)
            body = {"name": f"{phase.name}-other-{created}", "external": True}
            created += 1
            await phase.creates.send(http, "POST", "/api/v1/runs", body)
            await asyncio.sleep(OTHER_PAUSE_S)

    other_task = asyncio.create_task(other())
    tasks = [asyncio.create_task(writer(number)) for number in range(args.writers)]
    _, pending = await asyncio.wait(tasks, timeout=args.phase_limit)
    phase.unfinished = len(pending)
    for task in pending:
        task.cancel()
    done.set()
    await asyncio.gather(other_task, *pending, return_exceptions=True)


@dataclass(frozen=True)
class Stored:
    """What the database holds for a phase's runs, read in SQL after the phase."""

    rows: int
    points: set[StoredPoint]
    """Distinct (run, key, step)."""
    summarised: int
    """The per-key summaries' point counts, added up."""


def read_stored(database_url: str, run_ids: list[int]) -> Stored:
    engine = create_engine(database_url)
    ids = {"ids": run_ids}
    try:
        with engine.connect() as connection:
            triples = connection.execute(
                text("SELECT run_id, key, step FROM metrics WHERE run_id = ANY(:ids)"), ids
            ).all()
            summarised = connection.execute(
                text(
                    "SELECT coalesce(sum(count), 0) FROM metric_summaries WHERE run_id = ANY(:ids)"
                ),
                ids,
            ).scalar_one()
    finally:
        engine.dispose()
    return Stored(
        rows=len(triples),
        points={(int(run), str(key), int(step)) for run, key, step in triples},
        summarised=int(summarised),
    )


@asynccontextmanager
async def http_clients(
    api: SegtrackApi, count: int, timeout_s: float
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """`count` clients of one connection each. One client per writer, as independent scripts
    would be: a single httpx client pooling 500 connections spent more CPU than the server and
    halved the throughput measured. They share one TLS context (unused on http://, but httpx
    builds one per client otherwise)."""
    tls = ssl.create_default_context()
    # Idle connections are dropped before uvicorn's 5 s keep-alive closes them, so a writer never
    # sends on a connection the server is closing (a ReadError of the client's own making).
    limits = httpx.Limits(max_connections=1, keepalive_expiry=KEEPALIVE_S)
    clients = [
        httpx.AsyncClient(
            base_url=api.url, headers=api.headers, timeout=timeout_s, limits=limits, verify=tls
        )
        for _ in range(count)
    ]
    try:
        yield clients
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))


async def measure(api: SegtrackApi, database_url: str, args: argparse.Namespace) -> list[Phase]:
    phases = []
    async with (
        http_clients(api, args.writers + 1, args.request_timeout) as clients,
        httpx.AsyncClient(base_url=api.url, headers=api.headers, timeout=60) as setup,
    ):
        for name in ("one run", "distinct runs"):
            phase = Phase(name)
            count = 1 if name == "one run" else args.writers
            run_ids = await create_runs(setup, count, name.replace(" ", "-"))
            server = process_tree(api.pid)
            server_before, client_before = cpu_seconds(server), time.process_time()
            started = time.perf_counter()
            with DatabaseSampler(database_name(database_url)) as sampler:
                await run_phase(clients, phase, run_ids, args)
            phase.wall_s = time.perf_counter() - started
            phase.server_cpu_s = cpu_seconds(server) - server_before
            phase.client_cpu_s = time.process_time() - client_before
            phase.database = sampler
            phase.stored = read_stored(database_url, run_ids)
            phases.append(phase)
            print(f"{name}: done in {phase.wall_s:.1f} s", flush=True)
    return phases


def report(phases: list[Phase], args: argparse.Namespace) -> None:
    shape = f"{args.writers} writers x {args.batches} batches x {args.points} points"
    pause = f", {args.pause:g} s between a writer's batches" if args.pause else ", back to back"
    print_table(
        f"Concurrent writers on PostgreSQL ({shape}{pause})",
        REQUEST_HEADERS,
        [
            row
            for phase in phases
            for row in (
                phase.writes.row(f"{phase.name}: metric writes", phase.wall_s),
                phase.lists.row("  meanwhile: list runs", phase.wall_s),
                phase.creates.row("  meanwhile: create run", phase.wall_s),
            )
        ],
    )
    expected = args.writers * args.batches * args.points
    print_table(
        "Points read back in SQL (lost: answered 2xx but not stored; dup: rows, summary counts "
        "and reported new minus distinct stored)",
        POINT_HEADERS,
        [_points_row(phase, expected) for phase in phases],
    )
    print_table(
        "Database sessions at once (pg_stat_activity, most seen) and CPU",
        SESSION_HEADERS,
        [_sessions_row(phase) for phase in phases],
    )
    for phase in phases:
        assert phase.database is not None
        print(f"{phase.name}: active sessions on average: {phase.database.top_waits()}")


def _points_row(phase: Phase, expected: int) -> tuple[str, ...]:
    assert phase.stored is not None
    stored = phase.stored
    distinct = len(stored.points)
    return (
        phase.name,
        f"{expected:,}",
        f"{distinct:,}",
        f"{len(phase.acknowledged - stored.points):,}",
        f"{len(phase.refused):,} ({len(phase.refused & stored.points):,} stored)",
        f"{stored.rows - distinct:,}",
        f"{stored.summarised - distinct:,}",
        f"{phase.reported_new - distinct:,}",
        str(phase.unfinished),
        f"{phase.wall_s:.1f}",
    )


def _sessions_row(phase: Phase) -> tuple[str, ...]:
    assert phase.database is not None
    most = phase.database.most
    sent = sum(len(kind.latencies) for kind in (phase.writes, phase.lists, phase.creates))
    return (
        phase.name,
        str(most["active"]),
        str(most["lock"]),
        str(most["idle_tx"]),
        f"{phase.server_cpu_s / phase.wall_s:.2f}",
        f"{1000 * phase.server_cpu_s / max(sent, 1):.1f}",
        f"{phase.client_cpu_s / phase.wall_s:.2f}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--writers", type=int, default=500)
    parser.add_argument("--batches", type=int, default=10, help="batches per writer, in sequence")
    parser.add_argument("--points", type=int, default=20, help="points per batch")
    parser.add_argument("--pause", type=float, default=0.0, help="s between a writer's batches")
    parser.add_argument("--request-timeout", type=float, default=60.0)
    parser.add_argument("--phase-limit", type=float, default=300.0, help="s per phase at most")
    parser.add_argument("--redis-url", default=REDIS_URL, help="segtrack's own Redis db")
    parser.add_argument("--server-workers", type=int, default=1, help="segtrack serve --workers")
    args = parser.parse_args()
    if not 1 <= args.writers <= 2000 or not 1 <= args.batches <= 1000:
        parser.error("--writers is 1 to 2000 and --batches 1 to 1000")
    if not 1 <= args.points <= 10_000:
        parser.error("--points is 1 to 10,000 (the API's limit per call)")

    with (
        tempfile.TemporaryDirectory(prefix="segtrack-writers-") as folder,
        scratch_database(DATABASE) as database_url,
    ):
        env = segtrack_env(database_url, Path(folder) / "data", args.redis_url)
        with segtrack_api(env, Path(folder) / "segtrack.log", args.server_workers) as api:
            print(f"segtrack serve on PostgreSQL answered after {api.ready_s:.1f} s", flush=True)
            phases = asyncio.run(measure(api, database_url, args))
    report(phases, args)


if __name__ == "__main__":
    main()
