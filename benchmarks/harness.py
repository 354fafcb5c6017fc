"""The common interface between the benchmark runner and the workload modules.

A workload module is any ``benchmarks/workloads/<name>.py`` (names starting with ``_`` are
private helpers) that exposes ``WORKLOADS: list[Workload]``. The runner imports it, runs each
workload in a fresh subprocess (``Workload.run(size)`` returns a dict of metrics), takes the
median over the runs and computes ratios against the references named in ``compare``, all
measured in the same run of the harness.

Metric names carry their unit in a suffix, which the runner uses for formatting:
``*_per_s`` (a rate), ``*bytes*`` (a size), ``*_s`` (seconds); anything else is a plain number.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import os
import pkgutil
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

T = TypeVar("T")

Metrics = dict[str, float]
Group = Literal["baseline", "peer", "cinema"]

#: Display order of the groups in the table.
GROUPS: tuple[Group, ...] = ("baseline", "peer", "cinema")


class Skip(Exception):
    """Raised by a workload that cannot run here; the runner shows the message as a note."""


@dataclass(frozen=True)
class Target:
    """A goal for one metric.

    :param op: ``">="`` (higher is better) or ``"<="`` (lower is better).
    :param value: the threshold.
    :param relative: compare the ratio against the metric's ``compare`` reference (``True``) or
        the absolute figure (``False``).
    """

    op: Literal[">=", "<="]
    value: float
    relative: bool = False

    def met(self, value: float, ratio: float | None) -> bool | None:
        """Whether the target is met; ``None`` when a relative target has no ratio."""
        subject = ratio if self.relative else value
        if subject is None:
            return None
        return subject >= self.value if self.op == ">=" else subject <= self.value

    def describe(self, metric: str) -> str:
        """Short human form, e.g. ``>= 2.5x`` or ``<= 600 B``."""
        if self.relative:
            return f"{self.op} {self.value:g}x"
        return f"{self.op} {format_value(metric, self.value)}"


@dataclass(frozen=True)
class Workload:
    """One measurement, run in a fresh subprocess.

    :param name: unique within its module; the workload's id is ``<module>.<name>``.
    :param run: called with the size (number of messages, actors, ...); returns the metrics.
    :param size: the size of a default run.
    :param quick_size: the size under ``--quick``.
    :param metrics: the metric names ``run`` returns (checked by the smoke test).
    :param title: what is measured, for the table.
    :param group: ``baseline``, ``peer`` or ``cinema``.
    :param backend: the event loop it runs on (``asyncio``, ``asyncio+uvloop``, ``trio``), if any.
    :param requires: importable modules (``"pkg"``) or attributes (``"pkg:Name"``) it needs; when
        one is missing the workload is skipped with a note instead of failing.
    :param compare: metric -> ``"<workload id>:<metric>"`` to divide by, for the ratio column.
    :param targets: metric -> the goal the figure is marked PASS/MISS against.
    :param full_only: run only in a default (non ``--quick``) run.
    :param timeout: seconds before the subprocess is killed and the workload counts as failed.
    :param max_runs: run at most this many times, whatever ``--runs`` says (for long workloads
        whose figures hardly vary, such as memory footprints).
    :param smoke_size: the size ``tests/test_benchmarks_smoke.py`` runs it with, when
        ``quick_size`` is still too big for a check that the workload works (the simulated
        clusters: the code path is the same at 20 nodes as at 3000).
    """

    name: str
    run: Callable[[int], Metrics]
    size: int
    quick_size: int
    metrics: tuple[str, ...]
    title: str
    group: Group = "cinema"
    backend: str | None = None
    requires: tuple[str, ...] = ()
    compare: Mapping[str, str] = field(default_factory=dict)
    targets: Mapping[str, Target] = field(default_factory=dict)
    full_only: bool = False
    timeout: float = 180.0
    max_runs: int | None = None
    smoke_size: int | None = None


#: The environment variable through which the runner tells its workers which clock to use.
CLOCK_ENV = "CINEMA_BENCH_CLOCK"
CLOCKS = ("cpu", "wall")


def clock() -> Callable[[], float]:
    """The clock a single-threaded, single-process workload times itself with.

    ``cpu`` (the default) is this process's CPU time: on a machine shared with other busy
    processes it does not count the time the scheduler gave the cores to someone else, which
    is most of the noise of a wall clock there. It also does not count time this process spent
    blocked, so a workload that waits on threads, other processes or timers must use the wall
    clock (``time.perf_counter``) itself. ``wall`` (``run.py --clock wall``) times everything
    on the wall clock, to confirm that nothing idles.
    """
    return time.perf_counter if os.environ.get(CLOCK_ENV) == "wall" else time.process_time


#: A throughput workload times a warm-up slice (a tenth of its size, not counted), then SLICES
#: equal slices, and reports the rate of the fastest: noise on a shared machine only ever slows
#: a slice down (the reasoning of :mod:`timeit`). The runner then takes the median over runs.
SLICES = 5


def slice_sizes(n: int) -> tuple[int, int]:
    """(warm-up size, slice size) for a workload of size ``n``."""
    return max(1, n // 10), max(1, n // SLICES)


def sliced_total(n: int) -> int:
    """How many operations :func:`fastest_rate` or :func:`fastest_rate_async` perform in all."""
    warmup, size = slice_sizes(n)
    return warmup + SLICES * size


def fastest_rate(batch: Callable[[int], float], n: int) -> float:
    """Operations per second of the fastest slice; ``batch(k)`` does ``k`` and returns seconds."""
    warmup, size = slice_sizes(n)
    batch(warmup)
    return size / min(batch(size) for _ in range(SLICES))


async def fastest_rate_async(batch: Callable[[int], Awaitable[float]], n: int) -> float:
    """:func:`fastest_rate` for a coroutine ``batch``."""
    warmup, size = slice_sizes(n)
    await batch(warmup)
    return size / min([await batch(size) for _ in range(SLICES)])


def discover() -> dict[str, Workload]:
    """Import every public module of :mod:`benchmarks.workloads`; map workload id -> workload."""
    from benchmarks import workloads

    found: dict[str, Workload] = {}
    for info in sorted(pkgutil.iter_modules(workloads.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{workloads.__name__}.{info.name}")
        for workload in getattr(module, "WORKLOADS", []):
            wid = f"{info.name}.{workload.name}"
            if wid in found:
                raise ValueError(f"duplicate workload id {wid!r}")
            found[wid] = workload
    return found


def missing_requirement(workload: Workload) -> str | None:
    """The first requirement of ``workload`` that cannot be imported, or ``None``."""
    for requirement in workload.requires:
        module_name, _, attribute = requirement.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            return requirement
        if attribute and not hasattr(module, attribute):
            return requirement
    return None


def rss_bytes() -> int:
    """The resident set size of this process now, after a full garbage collection."""
    gc.collect()
    try:
        with open("/proc/self/statm") as statm:
            resident_pages = int(statm.read().split()[1])
        return resident_pages * resource.getpagesize()
    except OSError:
        # No procfs (macOS): the peak RSS is the best the standard library offers; deltas
        # taken while memory only grows are still right. ru_maxrss is bytes on macOS.
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)


def run_asyncio(main: Callable[[], Awaitable[T]], backend: str) -> T:
    """Run a native asyncio coroutine on ``asyncio`` or ``asyncio+uvloop``."""
    import asyncio

    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if backend == "asyncio+uvloop":
        import uvloop

        loop_factory = uvloop.new_event_loop
    elif backend != "asyncio":
        raise ValueError(f"not an asyncio backend: {backend!r}")

    async def wrapper() -> T:
        return await main()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(wrapper())


def run_anyio(main: Callable[[], Awaitable[T]], backend: str) -> T:
    """Run ``main`` under anyio on ``asyncio``, ``asyncio+uvloop`` or ``trio``."""
    import anyio

    if backend == "asyncio+uvloop":
        return anyio.run(main, backend="asyncio", backend_options={"use_uvloop": True})
    return anyio.run(main, backend=backend)


def format_value(metric: str, value: float) -> str:
    """Format a figure by its metric's unit suffix."""
    if "bytes" in metric:
        for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
            if abs(value) >= scale:
                return f"{value / scale:.2f} {unit}"
        return f"{value:.0f} B"
    if metric.endswith("_per_s"):
        for unit, scale in (("M", 1e6), ("k", 1e3)):
            if abs(value) >= scale:
                return f"{value / scale:.2f}{unit}/s"
        return f"{value:.1f}/s"
    if metric.endswith("_s"):
        return f"{value:.3f} s"
    return f"{value:.3g}"
