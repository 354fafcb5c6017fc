"""Self-delivery through Context[A] (run_later, run_interval) and watch without Terminated."""

from datetime import timedelta
from typing import Any, Self

from cinema import Actor, Addr, Context, Message, Terminated, handler


class Tick(Message[None]):
    pass


class Tock(Message[None]):
    pass


class Clock(Actor):
    def started(self, ctx: Context[Self]) -> None:
        ctx.run_interval(1.0, Tick())
        ctx.run_later(timedelta(seconds=1), Tock())  # E: Actor "Clock" has no handler for message type "Tock"  [cinema-unhandled]
        ctx.run_later(0.5, msg=Tock())  # E: Actor "Clock" has no handler for message type "Tock"  [cinema-unhandled]
        ctx.address().do_send(Tock())  # E: Actor "Clock" has no handler for message type "Tock"  [cinema-unhandled]
        ctx.watch(ctx.address())  # E: Actor "Clock" has no handler for message type "Terminated"  [cinema-unhandled]

    @handler
    def tick(self, msg: Tick, ctx: Context[Self]) -> None:
        ctx.run_later(1.0, Tick()).cancel()
        ctx.run_interval(timedelta(seconds=2), Tick())


class Watcher(Actor):
    def __init__(self, other: Addr[Actor]) -> None:
        self.other = other

    def started(self, ctx: Context[Self]) -> None:
        ctx.watch(self.other)
        ctx.unwatch(self.other)

    @handler
    async def terminated(self, msg: Terminated, ctx: Context[Self]) -> None:
        pass


class PatientWatcher(Watcher):
    """Inherits the Terminated handler."""

    def started(self, ctx: Context[Self]) -> None:
        ctx.watch(self.other)
        ctx.run_later(1.0, Tick())  # E: Actor "PatientWatcher" has no handler for message type "Tick"  [cinema-unhandled]


def from_outside(clock: Context[Clock], anything: Context[Any], other: Addr[Actor]) -> None:
    clock.run_interval(1.0, Tock())  # E: Actor "Clock" has no handler for message type "Tock"  [cinema-unhandled]
    clock.watch(other)  # E: Actor "Clock" has no handler for message type "Terminated"  [cinema-unhandled]
    anything.run_later(1.0, Tock())
    anything.watch(other)
