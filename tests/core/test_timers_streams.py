"""Timers and streams belong to their actor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Self

import anyio
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream

from cinema import (
    Actor,
    ActorStopped,
    ActorSystem,
    Context,
    HandlerDefinitionError,
    Message,
    StreamHandler,
    SupervisorStrategy,
    TimerHandle,
    UnhandledMessage,
    handler,
)
from cinema.testing import wait_stopped

pytestmark = pytest.mark.anyio


@dataclass
class Tick(Message[None]):
    label: str


@dataclass
class Schedule(Message[TimerHandle]):
    delay: float
    label: str
    interval: bool = False


@dataclass
class Unknown(Message[None]):
    pass


class Clock(Actor):
    def __init__(self) -> None:
        self.ticks: list[str] = []
        self.changed = anyio.Event()

    @handler
    def schedule(self, msg: Schedule, ctx: Context[Self]) -> TimerHandle:
        if msg.interval:
            return ctx.run_interval(msg.delay, Tick(msg.label))
        return ctx.run_later(msg.delay, Tick(msg.label))

    @handler
    def tick(self, msg: Tick, ctx: Context[Self]) -> None:
        self.ticks.append(msg.label)
        self.changed.set()
        self.changed = anyio.Event()


async def test_run_later_delivers_once_in_order_of_deadline() -> None:
    async with ActorSystem() as system:
        clock = Clock()
        addr = system.spawn(clock)
        await addr.send(Schedule(0.05, "late"))
        await addr.send(Schedule(0.01, "early"))
        while len(clock.ticks) < 2:
            await clock.changed.wait()
        assert clock.ticks == ["early", "late"]


async def test_cancelled_timer_never_fires() -> None:
    async with ActorSystem() as system:
        clock = Clock()
        addr = system.spawn(clock)
        handle = await addr.send(Schedule(0.01, "cancelled"))
        handle.cancel()
        assert handle.cancelled
        await addr.send(Schedule(0.03, "marker"))
        await clock.changed.wait()
        assert clock.ticks == ["marker"]


async def test_run_interval_repeats_until_cancelled() -> None:
    async with ActorSystem() as system:
        clock = Clock()
        addr = system.spawn(clock)
        handle = await addr.send(Schedule(0.005, "beat", interval=True))
        while len(clock.ticks) < 3:
            await clock.changed.wait()
        handle.cancel()
        count = len(clock.ticks)
        await addr.send(Schedule(0.03, "marker"))
        await clock.changed.wait()
        assert clock.ticks[count:] == ["marker"]
        assert set(clock.ticks[:count]) == {"beat"}


async def test_timers_end_with_their_actor() -> None:
    async with ActorSystem() as system:
        clock = Clock()
        addr = system.spawn(clock)
        handle = await addr.send(Schedule(0.005, "beat", interval=True))
        addr.stop()
        await anyio.sleep(0.03)
        assert handle.cancelled
        assert clock.ticks == []
        assert system.dead_letters == 0


async def test_run_later_needs_a_handler_for_the_message() -> None:
    class Lonely(Actor):
        @handler
        def go(self, msg: Tick, ctx: Context[Self]) -> None:
            with pytest.raises(UnhandledMessage):
                ctx.run_later(0.01, Unknown())  # type: ignore[cinema-unhandled]  # the run-time check is tested
            with pytest.raises(ValueError, match="period"):
                ctx.run_interval(0, msg)

    async with ActorSystem() as system:
        await system.spawn(Lonely()).send(Tick("x"))


class Summer(Actor, StreamHandler[int]):
    def __init__(self, numbers: AsyncIterator[int] | MemoryObjectReceiveStream[int]) -> None:
        self.numbers = numbers
        self.items: list[int] = []
        self.total = 0
        self.done = anyio.Event()
        self.handled = anyio.Event()

    def started(self, ctx: Context[Self]) -> None:
        ctx.add_stream(self.numbers)

    def handle(self, item: int, ctx: Context[Self]) -> None:
        self.items.append(item)
        self.total += item
        self.handled.set()
        self.handled = anyio.Event()

    def finished(self, ctx: Context[Self]) -> None:
        self.done.set()

    @handler
    def get(self, msg: Tick, ctx: Context[Self]) -> None:
        self.items.append(-1)


async def test_stream_items_in_order_then_finished() -> None:
    async def numbers() -> AsyncIterator[int]:
        for i in range(100):
            yield i

    async with ActorSystem() as system:
        summer = Summer(numbers())
        system.spawn(summer)
        await summer.done.wait()
        assert summer.items == list(range(100))
        assert summer.total == 4950


async def test_stream_is_pulled_no_faster_than_handled() -> None:
    pulled = 0
    release = anyio.Event()

    async def numbers() -> AsyncIterator[int]:
        nonlocal pulled
        for i in range(10):
            pulled += 1
            yield i

    class SlowSummer(Summer):
        async def handle(self, item: int, ctx: Context[Self]) -> None:  # type: ignore[override]  # an async override is allowed at run time
            await release.wait()
            super().handle(item, ctx)

    async with ActorSystem() as system:
        summer = SlowSummer(numbers())
        system.spawn(summer)
        await anyio.wait_all_tasks_blocked()
        assert pulled == 1  # the first item is being handled, nothing more was pulled
        release.set()
        await summer.done.wait()
        assert pulled == 10


async def test_stream_items_interleave_with_messages_but_never_overlap() -> None:
    send, receive = anyio.create_memory_object_stream[int](10)
    async with ActorSystem() as system:
        summer = Summer(receive)
        addr = system.spawn(summer)
        async with send:
            await send.send(1)
            await summer.handled.wait()
            await addr.send(Tick("x"))
            await send.send(2)
        await summer.done.wait()
        assert summer.items == [1, -1, 2]


async def test_stream_exception_is_the_actors_failure() -> None:
    async def broken() -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("stream broke")

    starts = 0
    restarted = anyio.Event()

    class Restarting(Summer):
        def started(self, ctx: Context[Self]) -> None:
            nonlocal starts
            starts += 1
            if starts == 1:
                ctx.add_stream(self.numbers)
            else:
                restarted.set()

    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(
            lambda: Restarting(broken()), SupervisorStrategy.restart(1, 10.0)
        )
        await restarted.wait()
        await addr.send(Tick("after restart"))
        assert addr.is_alive


async def test_streams_are_dropped_when_the_actor_stops() -> None:
    closed = anyio.Event()

    async def forever() -> AsyncIterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
                await anyio.sleep(0.001)
        finally:
            closed.set()

    async with ActorSystem() as system:
        summer = Summer(forever())
        addr = system.spawn(summer)
        await summer.handled.wait()
        addr.stop()
        await closed.wait()
        assert not summer.done.is_set()


async def test_add_stream_needs_a_stream_handler() -> None:
    class NoStreams(Actor):
        @handler
        def go(self, msg: Tick, ctx: Context[Self]) -> None:
            with pytest.raises(HandlerDefinitionError, match="StreamHandler"):
                ctx.add_stream(self._gen())  # type: ignore[cinema-unhandled]  # the mistake

        async def _gen(self) -> AsyncIterator[int]:
            yield 1

    async with ActorSystem() as system:
        await system.spawn(NoStreams()).send(Tick("x"))


async def test_failing_stream_handler_fails_the_actor() -> None:
    async def numbers() -> AsyncIterator[int]:
        for i in range(3):
            yield i

    class Picky(Summer):
        def handle(self, item: int, ctx: Context[Self]) -> None:
            raise ValueError("no thanks")

    async with ActorSystem() as system:
        addr = system.spawn(Picky(numbers()))
        await wait_stopped(system, addr)
        with pytest.raises(ActorStopped):
            await addr.send(Tick("x"))
