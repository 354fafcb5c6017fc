"""The actors and measuring coroutines of the Cinema core workloads.

Kept apart from :mod:`benchmarks.workloads.core` because it imports ``cinema`` at the top: the
runner can then list (and skip, with a note) the core workloads where Cinema is not installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from benchmarks.harness import Metrics, clock, fastest_rate_async, rss_bytes, sliced_total
from cinema import Actor, ActorSystem, Addr, Context, Message, handler

now = clock()


@dataclass(frozen=True, slots=True)
class Tick(Message[None]):
    """The fire-and-forget message of the throughput benchmarks."""


@dataclass(frozen=True, slots=True)
class Ping(Message[int]):
    """The request of the round-trip benchmarks."""


@dataclass(frozen=True, slots=True)
class Flush(Message[int]):
    """Answered with the count so far: awaiting it means every earlier message was handled."""


@dataclass(frozen=True, slots=True)
class Report(Message[int]):
    """Asks a :class:`Member` how many messages it handled."""


TICK, PING, FLUSH, REPORT = Tick(), Ping(), Flush(), Report()


class Counter(Actor):
    """Counts with sync handlers."""

    def __init__(self) -> None:
        self.count = 0

    @handler
    def tick(self, msg: Tick, ctx: Context[Self]) -> None:
        self.count += 1

    @handler
    def ping(self, msg: Ping, ctx: Context[Self]) -> int:
        self.count += 1
        return self.count

    @handler
    def flush(self, msg: Flush, ctx: Context[Self]) -> int:
        return self.count


class AsyncCounter(Actor):
    """Counts with an ``async def`` handler (which holds the mailbox until it returns)."""

    def __init__(self) -> None:
        self.count = 0

    @handler
    async def tick(self, msg: Tick, ctx: Context[Self]) -> None:
        self.count += 1

    @handler
    async def ping(self, msg: Ping, ctx: Context[Self]) -> int:
        self.count += 1
        return self.count

    @handler
    async def flush(self, msg: Flush, ctx: Context[Self]) -> int:
        return self.count


class Idle(Actor):
    """What most actors of a big system are most of the time: spawned and waiting."""

    @handler
    def ping(self, msg: Ping, ctx: Context[Self]) -> int:
        return 0


class Burst:
    """Shared by the :class:`Member` actors: who handled the last message, and the longest run
    of messages one actor handled back to back."""

    __slots__ = ("current", "last", "longest")

    def __init__(self) -> None:
        self.last: object = None
        self.current = self.longest = 0


class Member(Actor):
    """One of many actors; counts its messages and keeps the shared :class:`Burst` up to date."""

    def __init__(self, burst: Burst) -> None:
        self.burst, self.count = burst, 0

    @handler
    def tick(self, msg: Tick, ctx: Context[Self]) -> None:
        self.count += 1
        burst = self.burst
        if burst.last is self:
            burst.current += 1
            if burst.current > burst.longest:
                burst.longest = burst.current
        else:
            burst.last, burst.current = self, 1

    @handler
    def report(self, msg: Report, ctx: Context[Self]) -> int:
        return self.count


async def tell(n: int, *, async_handler: bool) -> Metrics:
    """One producer ``do_send``s ``n`` messages to one actor, then awaits a ``send``."""
    async with ActorSystem() as system:
        addr: Addr[Counter | AsyncCounter] = system.spawn(
            AsyncCounter() if async_handler else Counter()
        )
        do_send, send = addr.do_send, addr.send

        async def batch(count: int) -> float:
            started = now()
            for _ in range(count):
                do_send(TICK)
            await send(FLUSH)
            return now() - started

        rate = await fastest_rate_async(batch, n)
        total = await send(FLUSH)
    if total != sliced_total(n):
        raise AssertionError(f"handled {total} of {sliced_total(n)} messages")
    return {"msgs_per_s": rate}


async def ask(n: int, *, async_handler: bool = False) -> Metrics:
    """Sequential ``await addr.send(msg)`` from one task.

    With a sync handler and an idle actor, Cinema may run the handler inline in the sender's
    task; an ``async def`` handler always goes through the actor's dispatcher and back.
    """
    async with ActorSystem() as system:
        addr: Addr[Counter | AsyncCounter] = system.spawn(
            AsyncCounter() if async_handler else Counter()
        )
        send = addr.send

        async def batch(count: int) -> float:
            started = now()
            for _ in range(count):
                await send(PING)
            return now() - started

        rate = await fastest_rate_async(batch, n)
        total = await send(FLUSH)
    if total != sliced_total(n):
        raise AssertionError(f"answered {total} of {sliced_total(n)} requests")
    return {"round_trips_per_s": rate}


async def spawn_idle(n: int) -> Metrics:
    """Spawn ``n`` idle actors; the RSS they add, per actor, after a garbage collection."""
    async with ActorSystem() as system:
        # The first actor of a class pays for the class's handler table and the system's
        # own structures; that is not a per-actor cost.
        await system.spawn(Idle()).send(PING)
        before = rss_bytes()
        spawn = system.spawn
        started = now()
        addrs = [spawn(Idle()) for _ in range(n)]
        await addrs[-1].send(PING)  # the last one spawned is up and handling messages
        elapsed = now() - started
        after = rss_bytes()
        # Idle again after one message each: what a used actor keeps (e.g. its mailbox).
        for addr in addrs:
            addr.do_send(PING)
        for addr in addrs[-1:]:
            await addr.send(PING)
        after_use = rss_bytes()
        stopping = now()
    stop_s = now() - stopping
    if any(addr.is_alive for addr in addrs[:: max(1, n // 100)]):
        raise AssertionError("actors still alive after the system stopped")
    return {
        "actors_per_s": n / elapsed,
        "bytes_per_actor": (after - before) / n,
        "bytes_per_used_actor": (after_use - before) / n,
        "rss_total_bytes": float(after),
        "rss_total_used_bytes": float(after_use),
        "stop_all_s": stop_s,
    }


async def many(n: int, actors: int = 1000) -> Metrics:
    """``n`` messages sent round-robin to ``actors`` actors; throughput and fairness.

    Fairness is shown as the longest run of messages one actor handled back to back while the
    others had messages waiting: 1 for strict round-robin service, ``n / actors`` when the
    runtime drains a whole mailbox before it moves on, the dispatcher's per-actor batch in
    between. (So it is capped by the messages per actor: 300 in a default run, 30 in quick.)
    """
    actors = min(actors, n)
    rounds = max(1, n // actors)
    burst = Burst()
    async with ActorSystem() as system:
        addrs = [system.spawn(Member(burst)) for _ in range(actors)]
        started = now()
        for _ in range(rounds):
            for addr in addrs:
                addr.do_send(TICK)
        reports = [await addr.send(REPORT) for addr in addrs]
        elapsed = now() - started
    if any(count != rounds for count in reports):
        raise AssertionError("messages were lost")
    return {"msgs_per_s": rounds * actors / elapsed, "max_burst_msgs": float(burst.longest)}
