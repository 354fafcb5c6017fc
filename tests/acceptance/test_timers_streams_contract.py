"""Acceptance: API.md timers (Context run_later/run_interval, fine print) and Streams."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Self

import anyio
import pytest

from cinema import (
    Actor,
    ActorFailed,
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
from tests.acceptance.support import EventLog, Gate, GetLog, Note, WatchingGate, hold

# A timer fires on the event loop's clock; allow for float rounding only.
EPSILON = 0.002


@dataclass
class Tick(Message[None]):
    pass


@dataclass
class Unknown(Message[None]):
    pass


@dataclass
class ArmLater(Message[None]):
    delay: float | timedelta


@dataclass
class ArmInterval(Message[None]):
    period: float | timedelta


@dataclass
class Cancel(Message[None]):
    pass


@dataclass(eq=False)
class ArmThenWait(Message[None]):
    """Arm a timer, wait for ``release`` (the tick gets queued meanwhile), cancel it."""

    interval: bool
    entered: anyio.Event = field(default_factory=anyio.Event)
    release: anyio.Event = field(default_factory=anyio.Event)


@dataclass
class TryUnknownTimer(Message[tuple[bool, bool]]):
    pass


class Clock(Gate):
    def __init__(self) -> None:
        super().__init__()
        self.armed_at = 0.0
        self.ticks: list[float] = []
        self.tick_events = [anyio.Event() for _ in range(5)]
        self.handle: TimerHandle | None = None

    @handler
    def arm_later(self, msg: ArmLater, ctx: Context[Self]) -> None:
        self.armed_at = anyio.current_time()
        self.handle = ctx.run_later(msg.delay, Tick())

    @handler
    def arm_interval(self, msg: ArmInterval, ctx: Context[Self]) -> None:
        self.armed_at = anyio.current_time()
        self.handle = ctx.run_interval(msg.period, Tick())

    @handler
    def cancel(self, msg: Cancel, ctx: Context[Self]) -> None:
        assert self.handle is not None
        self.handle.cancel()

    @handler
    async def arm_then_wait(self, msg: ArmThenWait, ctx: Context[Self]) -> None:
        arm = ctx.run_interval if msg.interval else ctx.run_later
        handle = arm(0.005, Tick())
        msg.entered.set()
        await msg.release.wait()
        handle.cancel()

    @handler
    def try_unknown(self, msg: TryUnknownTimer, ctx: Context[Self]) -> tuple[bool, bool]:
        refused = []
        for arm in (ctx.run_later, ctx.run_interval):
            try:
                arm(0.01, Unknown())
            except UnhandledMessage:
                refused.append(True)
            else:
                refused.append(False)
        return refused[0], refused[1]

    @handler
    def tick(self, msg: Tick, ctx: Context[Self]) -> None:
        self.log.append("tick")
        self.ticks.append(anyio.current_time())
        if len(self.ticks) <= len(self.tick_events):
            self.tick_events[len(self.ticks) - 1].set()


@pytest.mark.anyio
@pytest.mark.parametrize("delay", [0.03, timedelta(milliseconds=30)], ids=["float", "timedelta"])
async def test_run_later_delivers_once_after_the_delay(delay: float | timedelta) -> None:
    async with ActorSystem() as system:
        clock = Clock()
        addr = system.spawn(clock)
        await addr.send(ArmLater(delay))
        await clock.tick_events[0].wait()
        assert clock.ticks[0] - clock.armed_at >= 0.03 - EPSILON
        await anyio.sleep(0.1)  # no event for "nothing else happens"
        assert await addr.send(GetLog()) == ["tick"]


@pytest.mark.anyio
async def test_run_later_cancelled_before_it_fires_is_never_delivered() -> None:
    async with ActorSystem() as system:
        clock = Clock()
        addr = system.spawn(clock)
        await addr.send(ArmLater(0.02))
        await addr.send(Cancel())
        await anyio.sleep(0.1)  # no event for "nothing happens"
        assert await addr.send(GetLog()) == []


@pytest.mark.anyio
@pytest.mark.parametrize("period", [0.02, timedelta(milliseconds=20)], ids=["float", "timedelta"])
async def test_run_interval_first_fires_one_period_after_the_call_then_repeats(
    period: float | timedelta,
) -> None:
    async with ActorSystem() as system:
        clock = Clock()
        addr = system.spawn(clock)
        await addr.send(ArmInterval(period))
        await clock.tick_events[2].wait()
        assert clock.ticks[0] - clock.armed_at >= 0.02 - EPSILON  # not at once
        await addr.send(Cancel())
        count = len(clock.ticks)
        await anyio.sleep(0.1)  # no event for "no more ticks"
        assert len(clock.ticks) == count


@pytest.mark.anyio
@pytest.mark.parametrize("interval", [False, True], ids=["run_later", "run_interval"])
async def test_cancel_drops_a_tick_that_is_queued_but_not_yet_handled(interval: bool) -> None:
    async with ActorSystem() as system:
        clock = Clock()
        addr = system.spawn(clock)
        msg = ArmThenWait(interval)
        addr.do_send(msg)
        await msg.entered.wait()
        await anyio.sleep(0.1)  # the timer fires while the actor is busy: its tick is queued
        msg.release.set()  # the handler now cancels the timer before returning
        await anyio.sleep(0.05)
        assert await addr.send(GetLog()) == []


@pytest.mark.anyio
async def test_timer_with_a_message_the_actor_cannot_handle_raises_at_the_call() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Clock())
        assert await addr.send(TryUnknownTimer()) == (True, True)
        assert addr.is_alive


@pytest.mark.anyio
async def test_timers_are_dropped_when_the_actor_stops() -> None:
    async with ActorSystem() as system:
        clock = Clock()
        addr = system.spawn(clock)
        await addr.send(ArmInterval(0.005))
        await clock.tick_events[0].wait()
        addr.stop()
        await wait_stopped(system, addr)
        await anyio.sleep(0.05)  # several periods: a live timer would make dead letters
        assert system.dead_letters == 0


@dataclass
class Fail(Message[None]):
    pass


@dataclass
class Number(Message[int]):
    pass


class RestartingClock(Clock):
    def __init__(self, number: int, log: EventLog) -> None:
        super().__init__()
        self.number = number
        self.log = log

    @handler
    def tick(self, msg: Tick, ctx: Context[Self]) -> None:
        self.log.append(f"tick#{self.number}")

    @handler
    def fail(self, msg: Fail, ctx: Context[Self]) -> None:
        raise RuntimeError("failure on purpose")

    @handler
    def which(self, msg: Number, ctx: Context[Self]) -> int:
        return self.number


@pytest.mark.anyio
async def test_timers_are_dropped_on_restart() -> None:
    log = EventLog()
    numbers = iter(range(1, 10))
    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(
            lambda: RestartingClock(next(numbers), log), SupervisorStrategy.restart(3, within=60)
        )
        await addr.send(ArmLater(0.05))
        await addr.send(ArmInterval(0.02))
        with pytest.raises(ActorFailed):
            await addr.send(Fail())
        assert await addr.send(Number()) == 2
        await anyio.sleep(0.15)  # past the timers: neither may reach the fresh instance
        assert [e for e in log if e.startswith("tick")] == []


# --- streams -------------------------------------------------------------------------------


async def numbers(n: int) -> AsyncGenerator[int, None]:
    for i in range(1, n + 1):
        yield i


@dataclass
class Attach(Message[None]):
    stream: AsyncIterable[int]


class Collector(Gate, StreamHandler[int]):
    """Collects stream items; can park on an item, fail on an item, and attach streams."""

    def __init__(
        self, *, park_on: int | None = None, fail_on: int | None = None, use_async: bool = False
    ) -> None:
        super().__init__()
        self.items: list[int] = []
        self.finished_count = 0
        self.finished_event = anyio.Event()
        self.finished_twice = anyio.Event()
        self.park_on, self.fail_on, self.use_async = park_on, fail_on, use_async
        self.parked = anyio.Event()
        self.unpark = anyio.Event()
        self.item_events: dict[int, anyio.Event] = {}

    def item_event(self, item: int) -> anyio.Event:
        return self.item_events.setdefault(item, anyio.Event())

    @handler
    def attach(self, msg: Attach, ctx: Context[Self]) -> None:
        ctx.add_stream(msg.stream)

    async def handle(self, item: int, ctx: Context[Self]) -> None:
        self.log.append(f"item-{item}")
        if item == self.park_on:
            self.parked.set()
            await self.unpark.wait()
        if item == self.fail_on:
            raise ValueError(f"item {item} failed on purpose")
        self.items.append(item)
        self.item_event(item).set()

    async def finished(self, ctx: Context[Self]) -> None:
        self.log.append("finished")
        self.finished_count += 1
        self.finished_event.set()
        if self.finished_count == 2:
            self.finished_twice.set()


class SyncCollector(Actor, StreamHandler[int]):
    def __init__(self, stream: AsyncIterable[int]) -> None:
        self.stream = stream
        self.items: list[int] = []
        self.done = anyio.Event()

    def started(self, ctx: Context[Self]) -> None:
        ctx.add_stream(self.stream)

    def handle(self, item: int, ctx: Context[Self]) -> None:
        self.items.append(item)

    def finished(self, ctx: Context[Self]) -> None:
        self.done.set()


@pytest.mark.anyio
async def test_stream_items_arrive_in_order_and_finished_runs_at_the_natural_end() -> None:
    async with ActorSystem() as system:
        actor = SyncCollector(numbers(200))
        system.spawn(actor)
        await actor.done.wait()
        assert actor.items == list(range(1, 201))


@pytest.mark.anyio
async def test_async_handle_and_finished() -> None:
    async with ActorSystem() as system:
        actor = Collector()
        addr = system.spawn(actor)
        await addr.send(Attach(numbers(50)))
        await actor.finished_event.wait()
        assert actor.items == list(range(1, 51))
        assert actor.finished_count == 1


@pytest.mark.anyio
async def test_each_attached_stream_finishes_on_its_own() -> None:
    async with ActorSystem() as system:
        actor = Collector()
        addr = system.spawn(actor)
        send, receive = anyio.create_memory_object_stream[int]()
        async with send, receive:
            await addr.send(Attach(receive))
            await addr.send(Attach(numbers(3)))
            await actor.finished_event.wait()  # the short stream ended
            assert sorted(actor.items) == [1, 2, 3]
            await send.send(7)  # the other stream is still attached
            await actor.item_event(7).wait()
            assert actor.finished_count == 1
            send.close()
            with anyio.fail_after(10):
                await actor.finished_twice.wait()


@pytest.mark.anyio
async def test_a_stream_is_pulled_only_as_fast_as_items_are_handled() -> None:
    produced: list[int] = []

    async def counting() -> AsyncIterator[int]:
        for i in range(1, 1001):
            produced.append(i)
            yield i

    async with ActorSystem() as system:
        actor = Collector(park_on=1)
        addr = system.spawn(actor)
        await addr.send(Attach(counting()))
        await actor.parked.wait()
        await anyio.wait_all_tasks_blocked()
        # The actor is stuck on item 1: at most one more may have been pulled ahead.
        assert len(produced) <= 2
        actor.unpark.set()
        await actor.finished_event.wait()
        assert actor.items == list(range(1, 1001))


@pytest.mark.anyio
async def test_memory_stream_sender_returns_once_the_actor_pulled_the_item() -> None:
    send, receive = anyio.create_memory_object_stream[int]()  # no buffer
    async with ActorSystem() as system, send, receive:
        actor = Collector(park_on=1)
        addr = system.spawn(actor)
        await addr.send(Attach(receive))
        await send.send(1)
        await actor.parked.wait()
        with pytest.raises(anyio.WouldBlock):  # item 2 is not taken while item 1 is handled
            send.send_nowait(2)
        assert actor.items == []
        actor.unpark.set()
        await send.send(2)
        await actor.item_event(2).wait()
        assert actor.items == [1, 2]


@pytest.mark.anyio
async def test_stream_items_interleave_with_messages_but_never_run_concurrently() -> None:
    send, receive = anyio.create_memory_object_stream[int]()
    async with ActorSystem() as system, send, receive:
        actor = Collector(park_on=2)
        addr = system.spawn(actor)
        await addr.send(Attach(receive))
        await send.send(1)
        await actor.item_event(1).wait()
        # The stream is open and idle: messages still get through.
        assert await addr.send(Note("between")) == "between"
        await send.send(2)
        await actor.parked.wait()
        addr.do_send(Note("during-item"))
        await anyio.wait_all_tasks_blocked()
        assert "during-item" not in actor.log  # not while an item is being handled
        actor.unpark.set()
        await actor.item_event(2).wait()
        # ... and an item does not run while a handler is running.
        held = await hold(addr)
        async with anyio.create_task_group() as tg:
            tg.start_soon(send.send, 3)
            await anyio.wait_all_tasks_blocked()
            assert "item-3" not in actor.log
            held.release.set()
        await actor.item_event(3).wait()
        log = actor.log
        assert log == [
            "item-1",
            "between",
            "item-2",
            "during-item",
            "hold-start",
            "hold-end",
            "item-3",
        ]


@pytest.mark.anyio
async def test_finished_does_not_run_when_the_actor_stops() -> None:
    send, receive = anyio.create_memory_object_stream[int]()
    async with ActorSystem() as system, send, receive:
        actor = Collector()
        addr = system.spawn(actor)
        await addr.send(Attach(receive))
        await send.send(1)
        await actor.item_event(1).wait()
        addr.stop()
        await wait_stopped(system, addr)
        await actor.stopped_event.wait()
        assert actor.finished_count == 0
        assert "finished" not in actor.log


async def failing_stream() -> AsyncIterator[int]:
    yield 1
    raise ValueError("the stream broke")


@pytest.mark.anyio
async def test_an_exception_raised_by_the_stream_is_the_actors_failure() -> None:
    async with ActorSystem() as system:
        actor = Collector()
        addr = system.spawn(actor)  # default strategy: stop
        watcher = WatchingGate(addr)
        system.spawn(watcher)
        await anyio.wait_all_tasks_blocked()
        await addr.send(Attach(failing_stream()))
        await wait_stopped(system, addr)
        await watcher.got_terminated.wait()
        assert actor.items == [1]
        assert actor.finished_count == 0  # a failing stream did not end by itself


@pytest.mark.anyio
async def test_an_exception_raised_by_handle_is_the_actors_failure() -> None:
    async with ActorSystem() as system:
        actor = Collector(fail_on=2)
        addr = system.spawn(actor)
        await addr.send(Attach(numbers(5)))
        await wait_stopped(system, addr)
        assert actor.items == [1]
        assert actor.finished_count == 0


class StreamWorker(Collector):
    def __init__(self, number: int, log: EventLog, stream: AsyncIterable[int] | None) -> None:
        super().__init__()
        self.number = number
        self.log = log
        self.stream = stream

    def started(self, ctx: Context[Self]) -> None:
        self.log.append(f"started#{self.number}")
        if self.stream is not None:
            ctx.add_stream(self.stream)

    async def handle(self, item: int, ctx: Context[Self]) -> None:
        self.log.append(f"item-{item}#{self.number}")
        if item < 0:
            raise ValueError("negative item")

    @handler
    def which(self, msg: Number, ctx: Context[Self]) -> int:
        return self.number


@pytest.mark.anyio
async def test_a_failing_stream_under_restart_restarts_the_actor() -> None:
    log = EventLog()
    streams: list[AsyncIterable[int] | None] = [failing_stream(), None]
    numbers_ = iter(range(1, 10))
    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(
            lambda: StreamWorker(next(numbers_), log, streams.pop(0)),
            SupervisorStrategy.restart(3, within=60),
        )
        with anyio.fail_after(10):
            await log.wait_for("started#2")
        assert await addr.send(Number()) == 2
        assert log[:2] == ["started#1", "item-1#1"]
        assert "started#2" in log


@pytest.mark.anyio
async def test_streams_are_dropped_on_restart() -> None:
    log = EventLog()
    more = anyio.Event()

    async def two_phase() -> AsyncIterator[int]:
        yield -1  # handle() fails on it: the actor restarts
        await more.wait()
        yield 2

    streams: list[AsyncIterable[int] | None] = [two_phase(), None]
    numbers_ = iter(range(1, 10))
    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(
            lambda: StreamWorker(next(numbers_), log, streams.pop(0)),
            SupervisorStrategy.restart(3, within=60),
        )
        with anyio.fail_after(10):
            await log.wait_for("started#2")
        more.set()
        await anyio.wait_all_tasks_blocked()
        await anyio.sleep(0.02)
        assert await addr.send(Number()) == 2
        assert not any(entry.startswith("item-2") for entry in log)
        assert "finished" not in log


@dataclass
class TryAttach(Message[bool]):
    stream: AsyncIterable[int]


class NotAStreamHandler(Actor):
    @handler
    def attach(self, msg: TryAttach, ctx: Context[Self]) -> bool:
        try:
            ctx.add_stream(msg.stream)  # type: ignore[cinema-unhandled]  # the mistake
        except HandlerDefinitionError:
            return True
        return False


@pytest.mark.anyio
async def test_add_stream_on_an_actor_that_is_not_a_stream_handler_raises() -> None:  # README
    async with ActorSystem() as system:
        stream = numbers(1)
        try:
            assert await system.spawn(NotAStreamHandler()).send(TryAttach(stream)) is True
        finally:
            await stream.aclose()


@pytest.mark.anyio
async def test_an_endless_fast_stream_does_not_starve_messages() -> None:
    async def endless() -> AsyncIterator[int]:
        i = 0
        while True:
            i += 1
            yield i

    async with ActorSystem() as system:
        actor = Collector()
        addr = system.spawn(actor)
        await addr.send(Attach(endless()))
        await actor.item_event(10).wait()
        with anyio.fail_after(10):
            assert await addr.send(Note("through")) == "through"
        addr.stop()
        await actor.stopped_event.wait()


@pytest.mark.anyio
async def test_interval_ticks_do_not_pile_up_while_the_actor_is_busy() -> None:  # README
    async with ActorSystem() as system:
        clock = Clock()
        addr = system.spawn(clock)
        await addr.send(ArmInterval(0.002))
        await clock.tick_events[0].wait()
        held = await hold(addr)
        await anyio.sleep(0.1)  # ~50 periods pass while the actor is busy
        addr.do_send(Note("marker"))
        held.release.set()
        log = await addr.send(GetLog())
        await addr.send(Cancel())
        marker = log.index("marker")
        # Between the end of the busy handler and the marker: at most the one queued tick.
        assert log[log.index("hold-end") : marker].count("tick") <= 1
