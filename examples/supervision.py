"""Supervision: restart with limits, and escalation to the parent.

A failure (an exception escaping a handler or hook) is caught at the actor boundary and handed
to the actor's supervisor strategy; it never crashes the system. Actors report what happens to
them on a memory stream, so the program waits on events instead of sleeping.

Run it with ``python examples/supervision.py`` (add ``trio`` to run on trio).
"""

from __future__ import annotations

import itertools
import logging
import sys
from dataclasses import dataclass
from typing import Self

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from cinema import (
    Actor,
    ActorFailed,
    ActorStopped,
    ActorSystem,
    Addr,
    Context,
    Message,
    SupervisorStrategy,
    Terminated,
    handler,
)

# The failures in this example are on purpose: no crash reports on stderr.
logging.getLogger("cinema.crash").setLevel(logging.CRITICAL)

Events = MemoryObjectSendStream[str]


@dataclass
class Work(Message[int]):
    """Do a unit of work; the reply is how many units this instance has done."""


@dataclass
class Crash(Message[None]):
    reason: str


class Worker(Actor):
    def __init__(self, name: str, events: Events) -> None:
        self.name, self.events, self.done = name, events, 0

    def started(self, ctx: Context[Self]) -> None:
        self.events.send_nowait(f"{self.name} started")

    def stopped(self, ctx: Context[Self]) -> None:
        self.events.send_nowait(f"{self.name} stopped")

    @handler
    def work(self, msg: Work, ctx: Context[Self]) -> int:
        self.done += 1
        return self.done

    @handler
    def crash(self, msg: Crash, ctx: Context[Self]) -> None:
        raise RuntimeError(msg.reason)


class Monitor(Actor):
    """Watches an actor and reports when it has stopped for good."""

    def __init__(self, target: Addr[Actor], events: Events) -> None:
        self.target, self.events = target, events

    def started(self, ctx: Context[Self]) -> None:
        ctx.watch(self.target)

    @handler
    def on_terminated(self, msg: Terminated, ctx: Context[Self]) -> None:
        self.events.send_nowait(f"monitor: {msg.addr} terminated")


@dataclass
class GetChild(Message[Addr[Worker]]):
    pass


class Parent(Actor):
    """Escalates its child's failures: a failed child makes the parent fail in turn."""

    def __init__(self, generation: int, events: Events) -> None:
        self.generation, self.events = generation, events
        self.child: Addr[Worker] | None = None

    def started(self, ctx: Context[Self]) -> None:
        self.events.send_nowait(f"parent generation {self.generation} started")
        events = self.events
        self.child = ctx.spawn_child_with_strategy(
            lambda: Worker("child", events), SupervisorStrategy.escalate()
        )

    def stopped(self, ctx: Context[Self]) -> None:
        self.events.send_nowait(f"parent generation {self.generation} stopped")

    @handler
    def get_child(self, msg: GetChild, ctx: Context[Self]) -> Addr[Worker]:
        assert self.child is not None
        return self.child


async def expect(events: MemoryObjectReceiveStream[str], count: int) -> None:
    """Print the next ``count`` reports, waiting for each."""
    with anyio.fail_after(5):
        for _ in range(count):
            print("   event:", await events.receive())


async def restart_with_limits(
    system: ActorSystem, send_events: Events, events: MemoryObjectReceiveStream[str]
) -> None:
    print("1. restart: at most 2 restarts within 10 seconds")
    worker = system.spawn_with_strategy(
        lambda: Worker("worker", send_events), SupervisorStrategy.restart(2, within=10.0)
    )
    system.spawn(Monitor(worker, send_events))
    await expect(events, 1)  # worker started

    print("   work ->", await worker.send(Work()), "then", await worker.send(Work()))
    try:
        await worker.send(Crash("first failure"))
    except ActorFailed as exc:
        print(f"   send raised ActorFailed, caused by {exc.__cause__!r}")
    await expect(events, 2)  # stopped, started: a fresh instance behind the same Addr
    print("   work -> fresh state:", await worker.send(Work()), "then", await worker.send(Work()))

    # The failed message is dropped; the rest of the mailbox is kept for the fresh instance.
    worker.do_send(Crash("second failure"))
    print("   work queued behind the crash ->", await worker.send(Work()))
    await expect(events, 2)
    print("   same Addr, still alive:", worker.is_alive)

    print("   a third failure within 10 seconds is one too many:")
    worker.do_send(Crash("third failure"))
    await expect(events, 2)  # worker stopped, monitor: terminated
    try:
        await worker.send(Work())
    except ActorStopped:
        print("   send raised ActorStopped; is_alive:", worker.is_alive)


async def escalate(
    system: ActorSystem, send_events: Events, events: MemoryObjectReceiveStream[str]
) -> None:
    print("2. escalate: the child's failure becomes the parent's own failure")
    generations = itertools.count(1)
    parent = system.spawn_with_strategy(
        lambda: Parent(next(generations), send_events), SupervisorStrategy.restart(3, 10.0)
    )
    await expect(events, 2)  # parent started, child started
    child = await parent.send(GetChild())
    try:
        await child.send(Crash("child failure"))
    except ActorFailed:
        print("   the child failed")
    # child stopped; the parent fails and restarts: a fresh parent spawns a fresh child.
    await expect(events, 4)
    new_child = await parent.send(GetChild())
    print("   old child alive:", child.is_alive, "| new child alive:", new_child.is_alive)
    print("   parent keeps its Addr:", parent.is_alive)


async def main() -> None:
    send_events, events = anyio.create_memory_object_stream[str](100)
    with send_events, events:
        async with ActorSystem() as system:
            await restart_with_limits(system, send_events, events)
            await escalate(system, send_events, events)
        print("3. shutdown: children stop before their parents")
        while True:
            try:
                print("   event:", events.receive_nowait())
            except anyio.WouldBlock:
                break
    print("done")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
