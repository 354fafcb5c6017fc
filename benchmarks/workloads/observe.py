"""What observability costs: tell and ask with OpenTelemetry's API but no SDK, with the SDK and a
no-op exporter, and (with ``CINEMA_BENCH_OTHER_SRC=<checkout>/packages``) beside another
checkout's Cinema, to see what the always-on statistics cost.

- ``observe.tell_api_only`` / ``ask_api_only``: ``opentelemetry-api`` imported, no provider set
  (the API's no-op default): compared with ``core.tell`` / ``core.ask`` of the same run (the
  target is >= 0.95x).
- ``observe.tell_sdk`` / ``ask_sdk``: the SDK's tracer provider with a span processor that drops
  every span: the cost of recording spans (compared with the same ``core`` workloads).
- ``observe.tell_here`` / ``ask_here`` / ``many_here`` and their ``_other`` twins: the same
  workload with this checkout's Cinema and with the other one, each in a process of its own; the
  ``_here`` rows carry the ratio (>= 0.95x expected: the statistics counters are always on here).

Run: ``hatch run bench:run --only 'observe.*'`` (the ``core`` references come along).
"""

from __future__ import annotations

import os
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.harness import Metrics, Target, Workload, run_anyio

ROOT = Path(__file__).resolve().parents[2]
OTHER_SRC_ENV = "CINEMA_BENCH_OTHER_SRC"
CHEAP = Target(">=", 0.95, relative=True)


def _with_otel(mode: str) -> None:
    """Set OpenTelemetry up in this (worker) process: ``api`` or ``sdk`` (no-op export)."""
    from opentelemetry import trace

    if mode == "api":
        assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
        return
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    class Drop(SpanProcessor):
        """Receives every span and drops it: the cost of recording, not of exporting."""

        def on_end(self, span: Any) -> None:
            pass

    provider = TracerProvider()
    provider.add_span_processor(Drop())
    trace.set_tracer_provider(provider)


def _measure(kind: str, n: int, backend: str) -> Metrics:
    from benchmarks.workloads import _core_actors

    if kind == "tell":
        return run_anyio(partial(_core_actors.tell, n, async_handler=False), backend)
    if kind == "ask":
        return run_anyio(partial(_core_actors.ask, n), backend)
    return run_anyio(partial(_core_actors.many, n), backend)


def _traced(n: int, *, kind: str, mode: str, backend: str) -> Metrics:
    _with_otel(mode)
    return _measure(kind, n, backend)


def _other(n: int, *, kind: str, backend: str) -> Metrics:
    # The other checkout's Cinema in a process of its own, measured by this checkout's code.
    src = Path(os.environ[OTHER_SRC_ENV])
    paths = [str(src / name / "src") for name in ("cinema-core", "cinema-remote", "cinema-cluster")]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(ROOT)])
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.workloads.observe", kind, backend, str(n)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=170,
    )
    metric, value = out.stdout.split()[-2:]
    return {metric: float(value)}


_SIZES = {"tell": (500_000, 50_000), "ask": (50_000, 5_000), "many": (300_000, 30_000)}
_METRIC = {"tell": "msgs_per_s", "ask": "round_trips_per_s", "many": "msgs_per_s"}
_CORE = {
    "tell": "core.tell[asyncio]",
    "ask": "core.ask[asyncio]",
    "many": "core.many_actors[asyncio]",
}


def _workloads() -> list[Workload]:
    found: list[Workload] = []
    backend = "asyncio"
    for kind in ("tell", "ask"):
        size, quick = _SIZES[kind]
        metric = _METRIC[kind]
        for mode, what in (("api", "OpenTelemetry API, no SDK"), ("sdk", "SDK, spans dropped")):
            found.append(
                Workload(
                    name=f"{kind}_{mode}{'_only' if mode == 'api' else ''}[{backend}]",
                    title=f"Cinema {kind} with the {what}",
                    run=partial(_traced, kind=kind, mode=mode, backend=backend),
                    size=size if mode == "api" else size // 5,
                    quick_size=quick if mode == "api" else quick // 5,
                    metrics=(metric,),
                    backend=backend,
                    requires=(
                        ("cinema:ActorSystem", "opentelemetry.trace")
                        if mode == "api"
                        else ("cinema:ActorSystem", "opentelemetry.sdk.trace")
                    ),
                    compare={metric: f"{_CORE[kind]}:{metric}"},
                    targets={metric: CHEAP} if mode == "api" else {},
                )
            )
    if os.environ.get(OTHER_SRC_ENV):
        for kind in ("tell", "ask", "many"):
            size, quick = _SIZES[kind]
            metric = _METRIC[kind]
            other_id = f"observe.{kind}_other[{backend}]"
            found += [
                Workload(
                    name=f"{kind}_other[{backend}]",
                    title=f"Cinema {kind}, the other checkout's ({OTHER_SRC_ENV})",
                    run=partial(_other, kind=kind, backend=backend),
                    size=size,
                    quick_size=quick,
                    metrics=(metric,),
                    backend=backend,
                    requires=("cinema:ActorSystem",),
                ),
                Workload(
                    name=f"{kind}_here[{backend}]",
                    title=f"Cinema {kind}, this checkout (statistics on), vs the other one",
                    run=partial(_measure, kind, backend=backend),
                    size=size,
                    quick_size=quick,
                    metrics=(metric,),
                    backend=backend,
                    requires=("cinema:ActorSystem",),
                    compare={metric: f"{other_id}:{metric}"},
                    targets={metric: CHEAP},
                ),
            ]
    return found


WORKLOADS = _workloads()


if __name__ == "__main__":
    # python -m benchmarks.workloads.observe tell|ask|many BACKEND N: prints "metric value".
    which, where, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    result = _measure(which, count, where)
    name = _METRIC[which]
    print(name, result[name])
