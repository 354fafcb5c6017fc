"""Baselines: what the event loops themselves do, with no framework in between.

Every Cinema figure is shown as a ratio against one of these, measured in the same run, so that
the machine's noise and speed cancel out. Each benchmark sends one pre-built message object
over and over (no allocation per message) and calls a handler method for it, like an actor
would; the timed section ends when the receiver has handled the last message.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from functools import partial
from itertools import islice
from typing import Any

from benchmarks.harness import (
    Metrics,
    Workload,
    clock,
    fastest_rate,
    fastest_rate_async,
    rss_bytes,
    run_asyncio,
    slice_sizes,
    sliced_total,
)

now = clock()


class Msg:
    """The message every throughput benchmark sends."""

    __slots__ = ()


class Sink:
    """The receiving side's handler: counts, so that the work cannot be optimised away."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def handle(self, msg: Msg) -> int:
        self.count += 1
        return self.count


MSG = Msg()

#: uvloop variants are listed always and skipped with a note where uvloop is not installed.
ASYNCIO_BACKENDS = ("asyncio", "asyncio+uvloop")


class _Flush:
    """Marks the end of a batch: the consumer completes ``fut`` when it reaches it."""

    __slots__ = ("fut",)

    def __init__(self, fut: asyncio.Future[None]) -> None:
        self.fut = fut


# --- asyncio -----------------------------------------------------------------------------------


async def _asyncio_queue(n: int) -> Metrics:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Msg | _Flush] = asyncio.Queue()
    sink = Sink()

    async def consumer() -> None:
        get, handle = queue.get, sink.handle
        while True:
            msg = await get()
            if isinstance(msg, _Flush):
                msg.fut.set_result(None)
            else:
                handle(msg)

    async def batch(count: int) -> float:
        put = queue.put_nowait
        started = now()
        for _ in range(count):
            put(MSG)
        done: asyncio.Future[None] = loop.create_future()
        put(_Flush(done))
        await done
        return now() - started

    task = loop.create_task(consumer())
    rate = await fastest_rate_async(batch, n)
    task.cancel()
    assert sink.count == sliced_total(n), "messages were lost"
    return {"msgs_per_s": rate}


async def _asyncio_pingpong(n: int) -> Metrics:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[Msg, asyncio.Future[int]]] = asyncio.Queue()
    sink = Sink()

    async def server() -> None:
        get, handle = queue.get, sink.handle
        while True:
            msg, reply = await get()
            reply.set_result(handle(msg))

    async def batch(count: int) -> float:
        put, create_future = queue.put_nowait, loop.create_future
        started = now()
        for _ in range(count):
            reply: asyncio.Future[int] = create_future()
            put((MSG, reply))
            await reply
        return now() - started

    task = loop.create_task(server())
    rate = await fastest_rate_async(batch, n)
    task.cancel()
    return {"round_trips_per_s": rate}


async def _asyncio_idle_tasks(n: int, *, with_queue: bool) -> Metrics:
    loop = asyncio.get_running_loop()
    event = asyncio.Event()

    async def idle_on_queue(queue: asyncio.Queue[Msg]) -> None:
        await queue.get()

    before = rss_bytes()
    started = now()
    tasks: list[asyncio.Task[Any]]
    if with_queue:
        tasks = [loop.create_task(idle_on_queue(asyncio.Queue())) for _ in range(n)]
    else:
        tasks = [loop.create_task(event.wait()) for _ in range(n)]
    await asyncio.sleep(0)  # every task runs to its first await and parks there
    elapsed = now() - started
    after = rss_bytes()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"tasks_per_s": n / elapsed, "bytes_per_task": (after - before) / n}


# --- trio --------------------------------------------------------------------------------------


def _trio_channel(n: int, *, drain: bool = False) -> Metrics:
    """``drain``: the consumer takes what is queued with ``receive_nowait`` and awaits only on
    an empty channel, as asyncio's ``Queue.get`` does; otherwise it uses ``async for``, which
    checkpoints (yields to the scheduler) on every message."""
    import trio

    sink = Sink()

    class Flush:
        __slots__ = ("event",)

        def __init__(self) -> None:
            self.event = trio.Event()

    async def main() -> float:
        send, receive = trio.open_memory_channel[Msg | Flush](math.inf)

        def handle(msg: Msg | Flush) -> None:
            if isinstance(msg, Flush):
                msg.event.set()
            else:
                sink.handle(msg)

        async def consumer() -> None:
            if not drain:
                async for msg in receive:
                    handle(msg)
                return
            take = receive.receive_nowait
            while True:
                handle(await receive.receive())
                try:
                    while True:
                        handle(take())
                except trio.WouldBlock:
                    pass

        async def batch(count: int) -> float:
            put = send.send_nowait
            started = now()
            for _ in range(count):
                put(MSG)
            flush = Flush()
            put(flush)
            await flush.event.wait()
            return now() - started

        async with trio.open_nursery() as nursery:
            nursery.start_soon(consumer)
            rate = await fastest_rate_async(batch, n)
            nursery.cancel_scope.cancel()
        return rate

    rate = trio.run(main)
    assert sink.count == sliced_total(n), "messages were lost"
    return {"msgs_per_s": rate}


def _trio_pingpong(n: int) -> Metrics:
    import trio

    sink = Sink()

    class Request:
        __slots__ = ("done", "msg", "result")

        def __init__(self, msg: Msg) -> None:
            self.msg, self.done, self.result = msg, trio.Event(), 0

    async def main() -> float:
        send, receive = trio.open_memory_channel[Request](math.inf)

        async def server() -> None:
            handle = sink.handle
            async for request in receive:
                request.result = handle(request.msg)
                request.done.set()

        async def batch(count: int) -> float:
            put = send.send_nowait
            started = now()
            for _ in range(count):
                request = Request(MSG)
                put(request)
                await request.done.wait()
            return now() - started

        async with trio.open_nursery() as nursery:
            nursery.start_soon(server)
            rate = await fastest_rate_async(batch, n)
            nursery.cancel_scope.cancel()
        return rate

    return {"round_trips_per_s": trio.run(main)}


def _trio_idle_tasks(n: int) -> Metrics:
    import trio
    import trio.testing

    async def main() -> Metrics:
        async with trio.open_nursery() as nursery:
            before = rss_bytes()
            started = now()
            for _ in range(n):
                nursery.start_soon(trio.sleep_forever)
            await trio.testing.wait_all_tasks_blocked()
            elapsed = now() - started
            after = rss_bytes()
            nursery.cancel_scope.cancel()
        return {"tasks_per_s": n / elapsed, "bytes_per_task": (after - before) / n}

    return trio.run(main)


# --- no event loop -----------------------------------------------------------------------------


class _A:
    __slots__ = ()


class _B:
    __slots__ = ()


class _C:
    __slots__ = ()


class _Dispatcher:
    __slots__ = ("a", "b", "c")

    def __init__(self) -> None:
        self.a = self.b = self.c = 0

    def on_a(self, msg: _A) -> None:
        self.a += 1

    def on_b(self, msg: _B) -> None:
        self.b += 1

    def on_c(self, msg: _C) -> None:
        self.c += 1


def _dispatch_loop(n: int) -> Metrics:
    target = _Dispatcher()
    table: dict[type, Callable[[Any], None]] = {_A: target.on_a, _B: target.on_b, _C: target.on_c}
    messages: list[object] = [_A(), _B(), _C()] * (slice_sizes(n)[1] // 3 + 1)

    def batch(count: int) -> float:
        started = now()
        for msg in islice(messages, count):
            table[type(msg)](msg)
        return now() - started

    rate = fastest_rate(batch, n)
    assert target.a + target.b + target.c == sliced_total(n)
    return {"msgs_per_s": rate}


# --- the list the runner reads -----------------------------------------------------------------


def _asyncio_queue_on(n: int, backend: str) -> Metrics:
    return run_asyncio(partial(_asyncio_queue, n), backend)


def _asyncio_pingpong_on(n: int, backend: str) -> Metrics:
    return run_asyncio(partial(_asyncio_pingpong, n), backend)


def _asyncio_idle_tasks_on(n: int, with_queue: bool) -> Metrics:
    return run_asyncio(partial(_asyncio_idle_tasks, n, with_queue=with_queue), "asyncio")


def _vs_plain_asyncio(backend: str, name: str, metric: str) -> dict[str, str]:
    """uvloop's figures as ratios against the default asyncio loop's."""
    if backend == "asyncio":
        return {}
    return {metric: f"baseline.{name}[asyncio]:{metric}"}


def _workloads() -> list[Workload]:
    found: list[Workload] = []
    for backend in ASYNCIO_BACKENDS:
        requires = ("uvloop",) if backend.endswith("uvloop") else ()
        found += [
            Workload(
                name=f"asyncio_queue[{backend}]",
                title="raw asyncio.Queue between two tasks (put_nowait)",
                run=partial(_asyncio_queue_on, backend=backend),
                size=500_000,
                quick_size=50_000,
                metrics=("msgs_per_s",),
                group="baseline",
                backend=backend,
                requires=requires,
                compare=_vs_plain_asyncio(backend, "asyncio_queue", "msgs_per_s"),
            ),
            Workload(
                name=f"asyncio_pingpong[{backend}]",
                title="raw asyncio Queue + Future ping-pong between two tasks",
                run=partial(_asyncio_pingpong_on, backend=backend),
                size=50_000,
                quick_size=5_000,
                metrics=("round_trips_per_s",),
                group="baseline",
                backend=backend,
                requires=requires,
                compare=_vs_plain_asyncio(backend, "asyncio_pingpong", "round_trips_per_s"),
            ),
        ]
    found += [
        Workload(
            name="asyncio_idle_task",
            title="idle asyncio task (waiting on a shared Event)",
            run=partial(_asyncio_idle_tasks_on, with_queue=False),
            size=100_000,
            quick_size=20_000,
            metrics=("tasks_per_s", "bytes_per_task"),
            group="baseline",
            backend="asyncio",
        ),
        Workload(
            name="asyncio_idle_task_queue",
            title="idle asyncio task + its own asyncio.Queue (a naive actor)",
            run=partial(_asyncio_idle_tasks_on, with_queue=True),
            size=100_000,
            quick_size=20_000,
            metrics=("tasks_per_s", "bytes_per_task"),
            group="baseline",
            backend="asyncio",
        ),
        Workload(
            name="trio_channel",
            title="raw trio memory channel between two tasks (send_nowait)",
            run=_trio_channel,
            size=300_000,
            quick_size=30_000,
            metrics=("msgs_per_s",),
            group="baseline",
            backend="trio",
            requires=("trio",),
        ),
        Workload(
            name="trio_channel_drain",
            title="raw trio memory channel, consumer drains with receive_nowait",
            run=partial(_trio_channel, drain=True),
            size=500_000,
            quick_size=50_000,
            metrics=("msgs_per_s",),
            group="baseline",
            backend="trio",
            requires=("trio",),
            compare={"msgs_per_s": "baseline.trio_channel:msgs_per_s"},
        ),
        Workload(
            name="trio_pingpong",
            title="raw trio memory channel + Event ping-pong between two tasks",
            run=_trio_pingpong,
            size=30_000,
            quick_size=3_000,
            metrics=("round_trips_per_s",),
            group="baseline",
            backend="trio",
            requires=("trio",),
            compare={"round_trips_per_s": "baseline.asyncio_pingpong[asyncio]:round_trips_per_s"},
        ),
        Workload(
            name="trio_idle_task",
            title="idle trio task (sleep_forever in a nursery)",
            run=_trio_idle_tasks,
            size=100_000,
            quick_size=20_000,
            metrics=("tasks_per_s", "bytes_per_task"),
            group="baseline",
            backend="trio",
            requires=("trio",),
        ),
        Workload(
            name="dispatch_loop",
            title="plain loop dispatching objects to methods by type (no async)",
            run=_dispatch_loop,
            size=3_000_000,
            quick_size=300_000,
            metrics=("msgs_per_s",),
            group="baseline",
        ),
    ]
    return found


WORKLOADS = _workloads()
