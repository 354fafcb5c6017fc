"""Peers: other Python actor frameworks doing the same work, for context.

Both are optional: a peer that is not installed is skipped with a note. Thespian runs on its
``simpleSystemBase`` (everything in the calling thread, the fastest base it has); Pykka runs a
thread per actor, so its actor counts are kept small.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.harness import Metrics, Workload, clock, fastest_rate, rss_bytes, sliced_total
from benchmarks.workloads.baseline import MSG, Msg, Sink

_FLUSH = "flush"
_PING = "ping"

now = clock()


# --- Thespian ----------------------------------------------------------------------------------


def _thespian_system() -> tuple[Any, type[Any]]:
    from thespian.actors import Actor, ActorSystem

    class Counter(Actor):  # type: ignore[misc]  # thespian ships no type hints: Actor is Any
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.sink = Sink()

        def receiveMessage(self, msg: object, sender: Any) -> None:
            if isinstance(msg, Msg):
                self.sink.handle(msg)
            elif msg == _PING:
                self.send(sender, self.sink.handle(MSG))
            elif msg == _FLUSH:
                self.send(sender, self.sink.count)

    return ActorSystem("simpleSystemBase"), Counter


def _thespian_tell(n: int) -> Metrics:
    system, counter = _thespian_system()
    try:
        addr = system.createActor(counter)

        def batch(count: int) -> float:
            started = now()
            for _ in range(count):
                system.tell(addr, MSG)
            system.ask(addr, _FLUSH, 60)
            return now() - started

        rate = fastest_rate(batch, n)
        assert system.ask(addr, _FLUSH, 60) == sliced_total(n), "messages were lost"
        return {"msgs_per_s": rate}
    finally:
        system.shutdown()


def _thespian_ask(n: int) -> Metrics:
    system, counter = _thespian_system()
    try:
        addr = system.createActor(counter)

        def batch(count: int) -> float:
            started = now()
            for _ in range(count):
                system.ask(addr, _PING, 60)
            return now() - started

        return {"round_trips_per_s": fastest_rate(batch, n)}
    finally:
        system.shutdown()


def _thespian_idle(n: int) -> Metrics:
    system, counter = _thespian_system()
    try:
        system.createActor(counter)  # the first actor pays for the system's own setup
        before = rss_bytes()
        started = now()
        addrs = [system.createActor(counter) for _ in range(n)]
        elapsed = now() - started
        after = rss_bytes()
        assert len(addrs) == n
        return {"actors_per_s": n / elapsed, "bytes_per_actor": (after - before) / n}
    finally:
        system.shutdown()


# --- Pykka -------------------------------------------------------------------------------------


def _pykka_counter() -> type[Any]:
    import pykka

    class Counter(pykka.ThreadingActor):  # type: ignore[misc,unused-ignore]  # Any without pykka
        def __init__(self) -> None:
            super().__init__()
            self.sink = Sink()

        def on_receive(self, message: Any) -> Any:
            if isinstance(message, Msg):
                return self.sink.handle(message)
            if message == _FLUSH:
                return self.sink.count
            return None

    return Counter


def _pykka_tell(n: int) -> Metrics:
    import pykka

    ref = _pykka_counter().start()
    try:

        def batch(count: int) -> float:
            started = time.perf_counter()
            for _ in range(count):
                ref.tell(MSG)
            ref.ask(_FLUSH, timeout=60)
            return time.perf_counter() - started

        rate = fastest_rate(batch, n)
        assert ref.ask(_FLUSH, timeout=60) == sliced_total(n), "messages were lost"
        return {"msgs_per_s": rate}
    finally:
        pykka.ActorRegistry.stop_all()


def _pykka_ask(n: int) -> Metrics:
    import pykka

    ref = _pykka_counter().start()
    try:

        def batch(count: int) -> float:
            started = time.perf_counter()
            for _ in range(count):
                ref.ask(MSG, timeout=60)
            return time.perf_counter() - started

        return {"round_trips_per_s": fastest_rate(batch, n)}
    finally:
        pykka.ActorRegistry.stop_all()


def _pykka_idle(n: int) -> Metrics:
    import pykka

    counter = _pykka_counter()
    try:
        counter.start().ask(_FLUSH, timeout=60)  # the first actor pays for pykka's own setup
        before = rss_bytes()
        started = time.perf_counter()
        refs = [counter.start() for _ in range(n)]
        elapsed = time.perf_counter() - started
        after = rss_bytes()
        assert len(refs) == n
        return {"actors_per_s": n / elapsed, "bytes_per_actor": (after - before) / n}
    finally:
        pykka.ActorRegistry.stop_all()


# --- the list the runner reads -----------------------------------------------------------------

_TELL_VS = {"msgs_per_s": "baseline.asyncio_queue[asyncio]:msgs_per_s"}
_ASK_VS = {"round_trips_per_s": "baseline.asyncio_pingpong[asyncio]:round_trips_per_s"}
_IDLE_VS = {
    "actors_per_s": "baseline.asyncio_idle_task_queue:tasks_per_s",
    "bytes_per_actor": "baseline.asyncio_idle_task_queue:bytes_per_task",
}

WORKLOADS = [
    Workload(
        name="thespian_tell",
        title="Thespian (simpleSystemBase): tell to one actor",
        run=_thespian_tell,
        size=50_000,
        quick_size=5_000,
        metrics=("msgs_per_s",),
        group="peer",
        requires=("thespian.actors",),
        compare=_TELL_VS,
    ),
    Workload(
        name="thespian_ask",
        title="Thespian (simpleSystemBase): sequential ask",
        run=_thespian_ask,
        size=20_000,
        quick_size=2_000,
        metrics=("round_trips_per_s",),
        group="peer",
        requires=("thespian.actors",),
        compare=_ASK_VS,
    ),
    Workload(
        name="thespian_idle",
        title="Thespian (simpleSystemBase): idle actors",
        run=_thespian_idle,
        size=10_000,
        quick_size=5_000,
        metrics=("actors_per_s", "bytes_per_actor"),
        group="peer",
        requires=("thespian.actors",),
        compare=_IDLE_VS,
    ),
    Workload(
        name="pykka_tell",
        title="Pykka (a thread per actor): tell to one actor",
        run=_pykka_tell,
        size=50_000,
        quick_size=5_000,
        metrics=("msgs_per_s",),
        group="peer",
        requires=("pykka",),
        compare=_TELL_VS,
    ),
    Workload(
        name="pykka_ask",
        title="Pykka (a thread per actor): sequential ask",
        run=_pykka_ask,
        size=10_000,
        quick_size=1_000,
        metrics=("round_trips_per_s",),
        group="peer",
        requires=("pykka",),
        compare=_ASK_VS,
    ),
    Workload(
        name="pykka_idle",
        title="Pykka (a thread per actor): idle actors",
        run=_pykka_idle,
        size=2_000,
        quick_size=200,
        metrics=("actors_per_s", "bytes_per_actor"),
        group="peer",
        requires=("pykka",),
        compare=_IDLE_VS,
    ),
]
