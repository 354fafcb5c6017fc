"""Timers, the registry, and watching an actor until it stops.

- ``ctx.run_interval(period, msg)`` delivers ``msg`` to the actor every ``period``;
  ``ctx.run_later(delay, msg)`` once after ``delay``. Both return a handle with ``cancel()``.
- ``system.register(name, addr)`` / ``system.lookup(name, ActorType)``: entries go away by
  themselves when the actor stops for good.
- ``ctx.watch(addr)``: the watcher gets ``cinema.Terminated`` when that actor stops for good.

Run it with ``python examples/timers_and_registry.py`` (add ``trio`` to run on trio).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Self

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from cinema import (
    Actor,
    ActorSystem,
    Addr,
    Context,
    Message,
    NameTaken,
    Terminated,
    TimerHandle,
    handler,
)


@dataclass
class Beat(Message[None]):
    pass


@dataclass
class Finish(Message[None]):
    pass


@dataclass
class Reminder(Message[None]):
    text: str


class Heartbeat(Actor):
    """Beats three times, then stops itself a little later."""

    def __init__(self, events: MemoryObjectSendStream[str]) -> None:
        self.events, self.beats = events, 0
        self.ticker: TimerHandle | None = None

    def started(self, ctx: Context[Self]) -> None:
        self.ticker = ctx.run_interval(0.05, Beat())  # first beat 50 ms from now
        # A reminder that is cancelled before it fires is never delivered.
        ctx.run_later(timedelta(seconds=10), Reminder("never delivered")).cancel()

    @handler
    def beat(self, msg: Beat, ctx: Context[Self]) -> None:
        self.beats += 1
        self.events.send_nowait(f"beat {self.beats}")
        if self.beats == 3 and self.ticker is not None:
            self.ticker.cancel()
            ctx.run_later(0.05, Finish())

    @handler
    def remind(self, msg: Reminder, ctx: Context[Self]) -> None:
        self.events.send_nowait(f"reminder: {msg.text}")

    @handler
    def finish(self, msg: Finish, ctx: Context[Self]) -> None:
        self.events.send_nowait(f"finished after {self.beats} beats: stopping")
        ctx.stop()


class Watcher(Actor):
    def __init__(self, target: Addr[Actor], events: MemoryObjectSendStream[str]) -> None:
        self.target, self.events = target, events

    def started(self, ctx: Context[Self]) -> None:
        ctx.watch(self.target)

    @handler
    def on_terminated(self, msg: Terminated, ctx: Context[Self]) -> None:
        self.events.send_nowait(f"watcher: {msg.addr} terminated")


async def run(
    system: ActorSystem,
    send_events: MemoryObjectSendStream[str],
    events: MemoryObjectReceiveStream[str],
) -> None:
    print("1. registry")
    heartbeat = system.spawn(Heartbeat(send_events))
    system.register("heartbeat", heartbeat)
    system.register("heartbeat", heartbeat)  # the same Addr again: a no-op
    found = system.lookup("heartbeat", Heartbeat)  # Addr[Heartbeat] | None
    print("   lookup('heartbeat', Heartbeat) is the same Addr:", found == heartbeat)
    print("   lookup('heartbeat', Watcher) ->", system.lookup("heartbeat", Watcher))
    watcher = system.spawn(Watcher(heartbeat, send_events))
    try:
        system.register("heartbeat", watcher)
    except NameTaken as exc:
        print("   NameTaken:", exc)

    print("2. timers, then watch + Terminated")
    with anyio.fail_after(5):
        while True:
            event = await events.receive()
            print("   event:", event)
            if event.startswith("watcher:"):
                break

    print("3. the registry entry went away with the actor")
    print("   lookup('heartbeat') ->", system.lookup("heartbeat"))
    print("   unregister('heartbeat') ->", system.unregister("heartbeat"))


async def main() -> None:
    send_events, events = anyio.create_memory_object_stream[str](100)
    with send_events, events:
        async with ActorSystem() as system:
            await run(system, send_events, events)
    print("done")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
