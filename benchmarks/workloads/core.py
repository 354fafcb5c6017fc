"""Cinema core workloads, on every anyio backend, with the targets from PERFORMANCE.md.

The measuring code lives in :mod:`benchmarks.workloads._core_actors`, imported only inside the
worker, so that this list loads (and the workloads are skipped with a note) without Cinema.
"""

from __future__ import annotations

from functools import partial

from benchmarks.harness import Metrics, Target, Workload, run_anyio

#: Where each backend's references live: (tell, ask, idle task creation, idle task bytes).
_REFERENCES = {
    "asyncio": (
        "baseline.asyncio_queue[asyncio]:msgs_per_s",
        "baseline.asyncio_pingpong[asyncio]:round_trips_per_s",
        "baseline.asyncio_idle_task:tasks_per_s",
        "baseline.asyncio_idle_task_queue:bytes_per_task",
    ),
    "asyncio+uvloop": (
        "baseline.asyncio_queue[asyncio+uvloop]:msgs_per_s",
        "baseline.asyncio_pingpong[asyncio+uvloop]:round_trips_per_s",
        "baseline.asyncio_idle_task:tasks_per_s",
        "baseline.asyncio_idle_task_queue:bytes_per_task",
    ),
    "trio": (
        "baseline.trio_channel_drain:msgs_per_s",
        "baseline.trio_pingpong:round_trips_per_s",
        "baseline.trio_idle_task:tasks_per_s",
        "baseline.trio_idle_task:bytes_per_task",
    ),
}

_REQUIRES: dict[str, tuple[str, ...]] = {
    "asyncio": ("cinema:ActorSystem",),
    "asyncio+uvloop": ("cinema:ActorSystem", "uvloop"),
    "trio": ("cinema:ActorSystem", "trio"),
}

TELL_TARGET = Target(">=", 2.5, relative=True)
ASK_TARGET = Target(">=", 1.0, relative=True)
SPAWN_RATE_TARGET = Target(">=", 200_000)
BYTES_PER_ACTOR_TARGET = Target("<=", 600)
RSS_1M_TARGET = Target("<=", 1e9)


def _tell(n: int, backend: str, async_handler: bool = False) -> Metrics:
    from benchmarks.workloads import _core_actors

    return run_anyio(partial(_core_actors.tell, n, async_handler=async_handler), backend)


def _ask(n: int, backend: str, async_handler: bool = False) -> Metrics:
    from benchmarks.workloads import _core_actors

    return run_anyio(partial(_core_actors.ask, n, async_handler=async_handler), backend)


def _spawn_idle(n: int, backend: str) -> Metrics:
    from benchmarks.workloads import _core_actors

    return run_anyio(partial(_core_actors.spawn_idle, n), backend)


def _many(n: int, backend: str) -> Metrics:
    from benchmarks.workloads import _core_actors

    return run_anyio(partial(_core_actors.many, n), backend)


def _workloads() -> list[Workload]:
    found: list[Workload] = []
    for backend in ("asyncio", "trio", "asyncio+uvloop"):
        tell_vs, ask_vs, spawn_vs, bytes_vs = _REFERENCES[backend]
        requires = _REQUIRES[backend]
        found += [
            Workload(
                name=f"tell[{backend}]",
                title="Cinema tell: do_send to one actor, sync handler",
                run=partial(_tell, backend=backend),
                size=500_000,
                quick_size=50_000,
                metrics=("msgs_per_s",),
                backend=backend,
                requires=requires,
                compare={"msgs_per_s": tell_vs},
                targets={"msgs_per_s": TELL_TARGET},
            ),
            Workload(
                name=f"ask[{backend}]",
                title="Cinema ask: sequential await addr.send() from a task",
                run=partial(_ask, backend=backend),
                size=50_000,
                quick_size=5_000,
                metrics=("round_trips_per_s",),
                backend=backend,
                requires=requires,
                compare={"round_trips_per_s": ask_vs},
                targets={"round_trips_per_s": ASK_TARGET},
            ),
        ]
        if backend == "asyncio+uvloop":
            continue  # uvloop changes the cost of a task switch, not of an idle actor
        found += [
            Workload(
                name=f"tell_async_handler[{backend}]",
                title="Cinema tell: do_send to one actor, async def handler",
                run=partial(_tell, backend=backend, async_handler=True),
                size=200_000,
                quick_size=20_000,
                metrics=("msgs_per_s",),
                backend=backend,
                requires=requires,
                compare={"msgs_per_s": tell_vs},
            ),
            Workload(
                name=f"ask_async_handler[{backend}]",
                title="Cinema ask: sequential await addr.send(), async def handler",
                run=partial(_ask, backend=backend, async_handler=True),
                size=50_000,
                quick_size=5_000,
                metrics=("round_trips_per_s",),
                backend=backend,
                requires=requires,
                compare={"round_trips_per_s": ask_vs},
            ),
            Workload(
                name=f"spawn_idle[{backend}]",
                title="Cinema: spawn 100k idle actors",
                run=partial(_spawn_idle, backend=backend),
                size=100_000,
                quick_size=20_000,
                metrics=("actors_per_s", "bytes_per_actor", "bytes_per_used_actor", "stop_all_s"),
                backend=backend,
                requires=requires,
                compare={
                    "actors_per_s": spawn_vs,
                    "bytes_per_actor": bytes_vs,
                    "bytes_per_used_actor": bytes_vs,
                },
                targets={
                    "actors_per_s": SPAWN_RATE_TARGET,
                    "bytes_per_actor": BYTES_PER_ACTOR_TARGET,
                },
            ),
            Workload(
                name=f"many_actors[{backend}]",
                title="Cinema: 1000 actors, messages sent round-robin",
                run=partial(_many, backend=backend),
                size=300_000,
                quick_size=30_000,
                metrics=("msgs_per_s", "max_burst_msgs"),
                backend=backend,
                requires=requires,
                compare={"msgs_per_s": tell_vs},
            ),
        ]
    found.append(
        Workload(
            name="idle_1m[asyncio]",
            title="Cinema: 1M idle actors (total process RSS)",
            run=partial(_spawn_idle, backend="asyncio"),
            size=1_000_000,
            quick_size=100_000,
            metrics=(
                "rss_total_bytes",
                "bytes_per_actor",
                "rss_total_used_bytes",
                "bytes_per_used_actor",
                "actors_per_s",
                "stop_all_s",
            ),
            backend="asyncio",
            requires=_REQUIRES["asyncio"],
            targets={
                "rss_total_bytes": RSS_1M_TARGET,
                "bytes_per_actor": BYTES_PER_ACTOR_TARGET,
            },
            full_only=True,
            timeout=300.0,
            max_runs=1,
        )
    )
    return found


WORKLOADS = _workloads()
