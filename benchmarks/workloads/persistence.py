"""Persistent actors beside the raw drivers, on the same database, in the same run.

- ``raw_sqlite_insert`` / ``raw_psycopg_insert`` (baselines): one row inserted and committed per
  iteration with the driver alone (``sqlite3`` in WAL mode with ``synchronous=FULL``, as the
  journal's default; psycopg's sync API on a PostgreSQL with ``fsync`` on), into the journal's
  own table (the same row, indexes and constraints: the ratio is Cinema's overhead).
- ``*_persist[...]``: one persistent actor, one ``await addr.send(...)`` per event, each handler
  awaiting ``persist``: message, protobuf encoding, the journal's group-commit path, the thread
  or async driver, and the commit. Compared with the raw insert (target >= 0.9x).
- ``*_group_commit[...]``: 64 actors persisting at once (one event per message each): their
  writes share transactions. Compared with one actor (target >= 3x).
- ``raw_*_select`` / ``*_recover[...]``: recovering 10,000 events (a new instance's first
  reply to a read-only message: read, decode, apply) against a raw ``SELECT`` of the same rows
  and columns from the journal's table (sequence number, serializer, type, payload), not
  decoded (target >= 0.5x).
- ``sqlite_snapshot_recovery``: recovery time with a snapshot every 1,000 events, at N and 10N
  events of history (flat: the two times are close).

PostgreSQL workloads start their own throwaway server (``tests/persistence/postgres_server.py``:
the system's PostgreSQL binaries, else the ``pgserver`` wheel's) with ``fsync`` on, unless
``CINEMA_BENCH_PG_URL`` names a running one to share (the smoke test does), where each makes
and drops its own database; every workload uses a fresh database file or table. All time with
the wall clock: the work happens in driver threads and the server.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, Self
from urllib.parse import urlsplit

import anyio

from benchmarks.harness import SLICES, Metrics, Target, Workload, run_anyio, slice_sizes
from cinema import ActorSystem, Context, Message, handler
from cinema.persistence import PersistentActor, open_journal, use_journal
from examples.persistence.events_pb2 import CounterState, Incremented

GROUP_ACTORS = 64
PAYLOAD = Incremented(by=1).SerializeToString()
TYPE_NAME = Incremented.DESCRIPTOR.full_name


@dataclass(frozen=True)
class Inc(Message[int]):
    pass


@dataclass(frozen=True)
class Get(Message[int]):
    pass


class Counter(PersistentActor[Incremented]):
    def __init__(self, pid: str, snapshot_every: int | None = None) -> None:
        self.persistence_id = pid
        self.total = 0
        self.every = snapshot_every

    def apply(self, event: Incremented) -> None:
        self.total += event.by

    def snapshot_state(self) -> CounterState:
        return CounterState(total=self.total)

    def restore(self, state: CounterState) -> None:
        self.total = state.total

    @handler
    async def inc(self, msg: Inc, ctx: Context[Self]) -> int:
        await self.persist(Incremented(by=1))
        if self.every is not None and self.last_sequence_nr % self.every == 0:
            await self.save_snapshot()
        return self.total

    @handler
    def get(self, msg: Get, ctx: Context[Self]) -> int:
        return self.total


# -- where the data goes ---------------------------------------------------------------------


@contextlib.contextmanager
def _sqlite_file() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="cinema-bench-") as tmp:
        yield f"{tmp}/bench.db"


#: A running PostgreSQL server to share (its URL, any database): the workloads then each use a
#: fresh database on it instead of starting their own server (the smoke test sets it).
SHARED_PG_ENV = "CINEMA_BENCH_PG_URL"


@contextlib.contextmanager
def _postgres() -> Iterator[str]:
    shared = os.environ.get(SHARED_PG_ENV)
    if not shared:
        from tests.persistence.postgres_server import postgres_server

        with postgres_server(fsync=True) as url:
            yield url
        return
    import psycopg

    name = f"bench_{uuid.uuid4().hex}"
    with psycopg.connect(shared, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield urlsplit(shared)._replace(path=f"/{name}").geturl()
        finally:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _fastest(batch: Callable[[int], float], n: int) -> float:
    warmup, size = slice_sizes(n)
    batch(warmup)
    return size / min(batch(size) for _ in range(SLICES))


# -- raw drivers -------------------------------------------------------------------------------


def _create_tables(url: str) -> None:
    """Create the journal's tables (the raw baselines write and read the same rows)."""

    async def create() -> None:
        async with open_journal(url):
            pass

    anyio.run(create)


_SQLITE_INSERT = (
    "INSERT INTO cinema_journal (persistence_id, sequence_nr, ordering, serializer, type_name,"
    " payload, tags) VALUES (?, ?, ?, ?, ?, ?, '')"
)
_PG_INSERT = (
    "INSERT INTO cinema_journal (persistence_id, sequence_nr, serializer, type_name, payload,"
    " tags) VALUES (%s, %s, %s, %s, %s, '')"
)
_SELECT = (
    "SELECT sequence_nr, serializer, type_name, payload FROM cinema_journal WHERE"
    " persistence_id = {p} AND sequence_nr >= 1 ORDER BY sequence_nr"
)


def _raw_sqlite_insert(n: int) -> Metrics:
    with _sqlite_file() as path:
        _create_tables(f"sqlite:///{path}")
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        seq = 0

        def batch(k: int) -> float:
            nonlocal seq
            start = time.perf_counter()
            for _ in range(k):
                seq += 1
                conn.execute("BEGIN")
                conn.execute(_SQLITE_INSERT, ("p", seq, seq, "protobuf", TYPE_NAME, PAYLOAD))
                conn.execute("COMMIT")
            return time.perf_counter() - start

        rate = _fastest(batch, n)
        conn.close()
    return {"events_per_s": rate}


def _raw_sqlite_select(n: int) -> Metrics:
    with _sqlite_file() as path:
        _create_tables(f"sqlite:///{path}")
        conn = sqlite3.connect(path, isolation_level=None)
        with conn:
            conn.executemany(
                _SQLITE_INSERT,
                [("p", i, i, "protobuf", TYPE_NAME, PAYLOAD) for i in range(1, n + 1)],
            )
        query = _SELECT.format(p="?")
        best = min(_timed(lambda: conn.execute(query, ("p",)).fetchall()) for _ in range(SLICES))
        conn.close()
    return {"events_per_s": n / best}


def _timed(func: Any) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def _raw_psycopg_insert(n: int) -> Metrics:
    import psycopg

    with _postgres() as url:
        _create_tables(url)
        with psycopg.connect(url) as conn:
            seq = 0

            def batch(k: int) -> float:
                nonlocal seq
                start = time.perf_counter()
                for _ in range(k):
                    seq += 1
                    conn.execute(_PG_INSERT, ("p", seq, "protobuf", TYPE_NAME, PAYLOAD))
                    conn.commit()
                return time.perf_counter() - start

            return {"events_per_s": _fastest(batch, n)}


def _raw_psycopg_select(n: int) -> Metrics:
    import psycopg

    with _postgres() as url:
        _create_tables(url)
        with psycopg.connect(url) as conn:
            with conn.cursor() as cur:
                cur.executemany(
                    _PG_INSERT, [("p", i, "protobuf", TYPE_NAME, PAYLOAD) for i in range(1, n + 1)]
                )
            conn.commit()
            query = _SELECT.format(p="%s")

            def select() -> None:
                conn.execute(query, ("p",)).fetchall()
                conn.commit()

            best = min(_timed(select) for _ in range(SLICES))
            return {"events_per_s": n / best}


# -- Cinema ------------------------------------------------------------------------------------


async def _persist(url: str, n: int) -> Metrics:
    async with open_journal(url) as journal, ActorSystem() as system:
        use_journal(system, journal)
        addr = system.spawn(Counter(f"bench-{uuid.uuid4().hex}"))
        msg = Inc()
        warmup, size = slice_sizes(n)
        for _ in range(warmup):
            await addr.send(msg)
        best = float("inf")
        for _ in range(SLICES):
            start = time.perf_counter()
            for _ in range(size):
                await addr.send(msg)
            best = min(best, time.perf_counter() - start)
        return {"events_per_s": size / best}


async def _group(url: str, n: int) -> Metrics:
    per_actor = max(1, n // GROUP_ACTORS)
    async with open_journal(url) as journal, ActorSystem() as system:
        use_journal(system, journal)
        addrs = [system.spawn(Counter(f"bench-{uuid.uuid4().hex}")) for _ in range(GROUP_ACTORS)]
        msg = Inc()

        async def run(addr: Any, count: int) -> None:
            for _ in range(count):
                await addr.send(msg)

        async def round_(count: int) -> float:
            start = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for addr in addrs:
                    tg.start_soon(run, addr, count)
            return time.perf_counter() - start

        await round_(max(1, per_actor // 10))
        best = min([await round_(per_actor) for _ in range(3)])
        return {"events_per_s": per_actor * GROUP_ACTORS / best}


async def _recover(url: str, n: int) -> Metrics:
    pid = f"bench-{uuid.uuid4().hex}"
    async with open_journal(url) as journal:
        for first in range(1, n + 1, 1000):
            count = min(1000, n - first + 1)
            await journal.append(pid, first, [Incremented(by=1)] * count)
        best = float("inf")
        async with ActorSystem() as system:
            use_journal(system, journal)
            for _ in range(SLICES):
                start = time.perf_counter()
                total = await system.spawn(Counter(pid)).send(Get())
                best = min(best, time.perf_counter() - start)
                assert total == n
        return {"events_per_s": n / best}


async def _snapshot_recovery(url: str, n: int) -> Metrics:
    times = []
    async with open_journal(url) as journal, ActorSystem() as system:
        use_journal(system, journal)
        for history in (n, 10 * n):
            pid = f"bench-{uuid.uuid4().hex}"
            # Write the history in batches with a snapshot every 1000 events, as the actor
            # would have left it.
            for first in range(1, history + 1, 1000):
                count = min(1000, history - first + 1)
                await journal.append(pid, first, [Incremented(by=1)] * count)
                if count == 1000:
                    await journal.save_snapshot(pid, first + 999, CounterState(total=first + 999))
            best = float("inf")
            for _ in range(SLICES):
                start = time.perf_counter()
                assert await system.spawn(Counter(pid)).send(Get()) == history
                best = min(best, time.perf_counter() - start)
            times.append(best)
    return {"small_history_s": times[0], "large_history_s": times[1]}


def _sqlite(main: Any, backend: str, n: int) -> Metrics:
    with _sqlite_file() as path:
        result: Metrics = run_anyio(partial(main, f"sqlite:///{path}", n), backend)
        return result


def _pg(main: Any, backend: str, n: int) -> Metrics:
    with _postgres() as url:
        result: Metrics = run_anyio(partial(main, url, n), backend)
        return result


RATE = ("events_per_s",)
PG = ("psycopg", "cinema.persistence:open_journal")
SQ = ("cinema.persistence:open_journal",)

WORKLOADS = [
    Workload(
        name="raw_sqlite_insert",
        title="sqlite3: insert + commit per row (WAL, FULL)",
        run=_raw_sqlite_insert,
        size=2000,
        quick_size=30,
        metrics=RATE,
        group="baseline",
    ),
    Workload(
        name="raw_sqlite_select",
        title="sqlite3: SELECT 10k rows of one key",
        run=_raw_sqlite_select,
        size=10_000,
        quick_size=1000,
        metrics=RATE,
        group="baseline",
    ),
    Workload(
        name="raw_psycopg_insert",
        title="psycopg: insert + commit per row",
        run=_raw_psycopg_insert,
        size=2000,
        quick_size=30,
        metrics=RATE,
        group="baseline",
        requires=("psycopg",),
    ),
    Workload(
        name="raw_psycopg_select",
        title="psycopg: SELECT 10k rows of one key",
        run=_raw_psycopg_select,
        size=10_000,
        quick_size=1000,
        metrics=RATE,
        group="baseline",
        requires=("psycopg",),
    ),
]

#: What each store is measured on: (name, run, size, quick size, title, the figure it is compared
#: with, "{store}" standing for sqlite/postgresql and "{raw}" for sqlite/psycopg, the target ratio).
_PER_STORE: list[tuple[str, Callable[[str, int], Any], int, int, str, str, float]] = [
    ("persist", _persist, 2000, 30, "one actor, await persist per event",
     "persistence.raw_{raw}_insert", 0.9),
    ("group_commit", _group, 8000, 128, f"{GROUP_ACTORS} actors persisting at once",
     "persistence.{store}_persist[{backend}]", 3.0),
    ("recover", _recover, 10_000, 1000, "recover 10k events (new instance)",
     "persistence.raw_{raw}_select", 0.5),
]  # fmt: skip
_STORES = {"sqlite": (_sqlite, SQ, "sqlite"), "postgresql": (_pg, PG, "psycopg")}
for _name, _run, _size, _quick, _title, _reference, _goal in _PER_STORE:
    for _backend in ("asyncio", "trio"):
        for _store, (_runner, _requires, _raw) in _STORES.items():
            _ref = _reference.format(store=_store, raw=_raw, backend=_backend)
            WORKLOADS.append(
                Workload(
                    name=f"{_store}_{_name}[{_backend}]",
                    title=_title,
                    run=partial(_runner, _run, _backend),
                    size=_size,
                    quick_size=_quick,
                    metrics=RATE,
                    backend=_backend,
                    requires=_requires,
                    compare={"events_per_s": f"{_ref}:events_per_s"},
                    targets={"events_per_s": Target(">=", _goal, relative=True)},
                )
            )
WORKLOADS.append(
    Workload(
        name="sqlite_snapshot_recovery[asyncio]",
        title="recovery with a snapshot every 1000 events: N vs 10N history",
        run=partial(_sqlite, _snapshot_recovery, "asyncio"),
        size=10_000,
        quick_size=1000,
        metrics=("small_history_s", "large_history_s"),
        backend="asyncio",
        requires=SQ,
    )
)
