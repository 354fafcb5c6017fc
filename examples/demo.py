"""A tour of Cinema's core in a few seconds: ``python examples/demo.py`` (or ``hatch run demo``).

Each numbered step prints what it does and checks what it claims; the program exits with 0 only
if every check held. Actors report what happens to them on a memory stream, and the demo waits
on those reports, never on sleeps. Pass ``trio`` as the first argument to run it on trio.
"""

from __future__ import annotations

import itertools
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Self

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from cinema import (
    Actor,
    ActorFailed,
    ActorStopped,
    ActorSystem,
    Addr,
    Context,
    MailboxFull,
    Message,
    StreamHandler,
    SupervisorStrategy,
    Terminated,
    TimerHandle,
    UnhandledMessage,
    handler,
)

# The failures and the slow shutdown in this demo are on purpose: no crash reports or shutdown
# warnings on stderr.
logging.getLogger("cinema").setLevel(logging.CRITICAL)

Reports = MemoryObjectSendStream[str]

# -- messages ---------------------------------------------------------------------------------


@dataclass
class Add(Message[None]):
    n: int


@dataclass
class Get(Message[int]):
    pass


@dataclass
class Fail(Message[None]):
    reason: str


@dataclass
class StartTicking(Message[None]):
    period: float
    times: int


@dataclass
class Tick(Message[None]):
    pass


@dataclass
class Nap(Message[None]):
    seconds: float


@dataclass
class Unknown(Message[None]):
    pass


@dataclass
class Follow(Message[None]):
    source: AsyncIterator[int]


# -- actors -----------------------------------------------------------------------------------


class Counter(Actor, StreamHandler[int]):
    """Owns one integer. Made by a factory, so that it can be restarted."""

    def __init__(self, reports: Reports, generation: int) -> None:
        self.reports, self.generation, self.value = reports, generation, 0
        self.ticker: TimerHandle | None = None
        self.ticks_left = 0

    def started(self, ctx: Context[Self]) -> None:
        self.reports.send_nowait(f"counter instance #{self.generation} started")

    def stopped(self, ctx: Context[Self]) -> None:
        print(f"      counter instance #{self.generation} stopped (value {self.value})")

    @handler
    def add(self, msg: Add, ctx: Context[Self]) -> None:
        self.value += msg.n

    @handler
    def get(self, msg: Get, ctx: Context[Self]) -> int:
        return self.value

    @handler
    def fail(self, msg: Fail, ctx: Context[Self]) -> None:
        raise RuntimeError(msg.reason)

    @handler
    def follow(self, msg: Follow, ctx: Context[Self]) -> None:
        ctx.add_stream(msg.source)  # items go to handle(), then finished() runs

    @handler
    def start_ticking(self, msg: StartTicking, ctx: Context[Self]) -> None:
        self.ticks_left = msg.times
        self.ticker = ctx.run_interval(msg.period, Tick())

    @handler
    def tick(self, msg: Tick, ctx: Context[Self]) -> None:
        self.value += 1
        self.ticks_left -= 1
        self.reports.send_nowait(f"tick (value {self.value})")
        if self.ticks_left == 0 and self.ticker is not None:
            self.ticker.cancel()

    def handle(self, item: int, ctx: Context[Self]) -> None:  # StreamHandler
        self.value += item

    def finished(self, ctx: Context[Self]) -> None:
        self.reports.send_nowait(f"stream finished (value {self.value})")


class Watcher(Actor):
    def __init__(self, reports: Reports) -> None:
        self.reports = reports

    @handler
    def on_terminated(self, msg: Terminated, ctx: Context[Self]) -> None:
        self.reports.send_nowait(f"Terminated({msg.addr})")

    @handler
    def watch(self, msg: Addr[Counter], ctx: Context[Self]) -> None:
        ctx.watch(msg)

    def stopped(self, ctx: Context[Self]) -> None:
        print("      watcher stopped")


class Sleeper(Actor):
    @handler
    async def nap(self, msg: Nap, ctx: Context[Self]) -> None:
        await anyio.sleep(msg.seconds)  # an async handler holds the mailbox until it returns

    def stopped(self, ctx: Context[Self]) -> None:
        print("      sleeper stopped (its nap was cancelled at the end of the grace period)")


async def numbers(upto: int) -> AsyncIterator[int]:
    for n in range(1, upto + 1):
        await anyio.lowlevel.checkpoint()
        yield n


# -- the tour ---------------------------------------------------------------------------------


class DemoFailed(Exception):
    """A check of the demo did not hold."""


class Demo:
    def __init__(self, reports: MemoryObjectReceiveStream[str]) -> None:
        self.reports = reports
        self.step = 0

    def title(self, text: str) -> None:
        self.step += 1
        print(f"[{self.step}] {text}")

    @staticmethod
    def check(ok: bool, text: str) -> None:
        if not ok:
            raise DemoFailed(text)
        print(f"      ok: {text}")

    @contextmanager
    def raises(self, error: type[BaseException], text: str) -> Iterator[None]:
        """Check that the block raises ``error``."""
        try:
            yield
        except error as exc:
            detail = f": {exc}" if str(exc) else ""
            self.check(True, f"{text}: {type(exc).__name__}{detail}")
        else:
            self.check(False, f"{text}: no {error.__name__} was raised")

    async def report(self, expected: str) -> None:
        """Wait for the next report and check that it starts with ``expected``."""
        with anyio.fail_after(5):
            got = await self.reports.receive()
        self.check(got.startswith(expected), got)


async def tour(system: ActorSystem, send_reports: Reports, demo: Demo) -> None:
    demo.title("spawn: a Counter, restarted on failure (at most 3 times in 10 s)")
    generations = itertools.count(1)  # the factory numbers the instances it makes
    counter = system.spawn_with_strategy(
        lambda: Counter(send_reports, next(generations)), SupervisorStrategy.restart(3, 10.0)
    )
    await demo.report("counter instance #1 started")

    demo.title("stream: the numbers 1..100 flow into the counter")
    counter.do_send(Follow(numbers(100)))
    await demo.report("stream finished (value 5050)")

    demo.title("tell and ask: do_send never waits, send returns the typed reply")
    counter.do_send(Add(10))
    value = await counter.send(Get())  # mypy knows: int
    demo.check(value == 5060, f"Get() -> {value}")
    # Addr[Any] hides the actor type from mypy: with the cinema.mypy plugin enabled, mypy
    # would reject Unknown() sent to an Addr[Counter] before the program ever ran.
    untyped: Addr[Any] = counter
    with demo.raises(UnhandledMessage, "a message type it has no handler for, at the call"):
        untyped.do_send(Unknown())

    demo.title("registry: register by name, look up by name and type")
    system.register("counter", counter)
    found = system.lookup("counter", Counter)
    demo.check(found == counter, "lookup('counter', Counter) is the same Addr")
    demo.check(system.lookup("counter", Watcher) is None, "lookup with another type -> None")

    demo.title("crash and restart: the failure stays inside the actor")
    with demo.raises(ActorFailed, "send of a message whose handler raised"):
        await counter.send(Fail("boom"))
    await demo.report("counter instance #2 started")
    value = await counter.send(Get())
    demo.check(value == 0, f"a fresh instance behind the same Addr: Get() -> {value}")
    demo.check(system.lookup("counter", Counter) == counter, "the registry entry survived")

    demo.title("timer: run_interval ticks 3 times, then the actor cancels it")
    await counter.send(StartTicking(0.05, 3))
    for n in (1, 2, 3):
        await demo.report(f"tick (value {n})")

    demo.title("watch: a watcher gets Terminated when the counter stops for good")
    watcher = system.spawn(Watcher(send_reports))
    await watcher.send(counter)  # the Watcher's handler calls ctx.watch(counter)
    counter.stop()
    demo.check(not counter.is_alive, "is_alive is False from the moment stop() is called")
    await demo.report(f"Terminated({counter})")
    demo.check(system.lookup("counter") is None, "the registry entry went away by itself")

    demo.title("dead letters: messages for a stopped actor are counted, never queued")
    before = system.dead_letters
    for n in range(3):
        counter.do_send(Add(n))
    after = system.dead_letters
    demo.check(after - before == 3, f"3 do_send: dead_letters {before} -> {after}")
    with demo.raises(ActorStopped, "send to a stopped actor"):
        await counter.send(Get())

    demo.title("bounded mailbox: do_send raises MailboxFull, send waits for room")
    sleeper = system.spawn(Sleeper(), mailbox_capacity=2)
    sleeper.do_send(Nap(0.01))
    sleeper.do_send(Nap(0.01))
    with demo.raises(MailboxFull, "a third do_send with capacity 2"):
        sleeper.do_send(Nap(0.01))
    await sleeper.send(Nap(0.01))
    demo.check(True, "send waited for room, then got its reply")
    with demo.raises(TimeoutError, "send(Nap(10.0), timeout=0.05)"):
        await sleeper.send(Nap(10.0), timeout=0.05)


async def main() -> None:
    send_reports, reports = anyio.create_memory_object_stream[str](100)
    demo = Demo(reports)
    with send_reports, reports:
        async with ActorSystem(shutdown_timeout=0.5) as system:
            await tour(system, send_reports, demo)
            demo.title("shutdown: leaving `async with ActorSystem()` stops every actor")
            began = anyio.current_time()
        took = anyio.current_time() - began
        # The Sleeper is still in its 10 s nap: it gets the 0.5 s grace period, then is cancelled.
        demo.check(took < 5.0, f"every actor stopped in {took:.1f} s (grace period 0.5 s)")
    print(f"demo finished: {demo.step} steps, all checks passed")


if __name__ == "__main__":
    try:
        anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
    except* DemoFailed as failed:
        sys.exit(f"      FAILED: {failed.exceptions[0]}")
