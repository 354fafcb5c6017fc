"""Small actors and helpers shared by the acceptance tests (black-box: public API only)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Self

import anyio

from cinema import Actor, Addr, Context, Message, Terminated, handler


class EventLog(list[str]):
    """A list of log entries that can be awaited: ``await log.wait_for("started#2")``."""

    def __init__(self) -> None:
        super().__init__()
        self._waiters: dict[str, anyio.Event] = {}

    def append(self, entry: str) -> None:
        super().append(entry)
        waiter = self._waiters.pop(entry, None)
        if waiter is not None:
            waiter.set()

    async def wait_for(self, entry: str) -> None:
        if entry not in self:
            await self._waiters.setdefault(entry, anyio.Event()).wait()


def alive(addr: Addr[Actor]) -> bool:
    """``addr.is_alive`` read through a call, so that mypy does not narrow it between reads."""
    return addr.is_alive


@dataclass(eq=False)
class Hold(Message[str]):
    """Keeps the actor busy: sets ``entered``, waits for ``release``, then replies or raises."""

    entered: anyio.Event = field(default_factory=anyio.Event)
    release: anyio.Event = field(default_factory=anyio.Event)
    fail: bool = False


@dataclass
class Note(Message[str]):
    """Recorded in the actor's log; replies with its own text."""

    text: str


@dataclass
class GetLog(Message[list[str]]):
    pass


class Gate(Actor):
    """An actor whose log shows what it handled, in order; ``Hold`` parks it on an event."""

    def __init__(self, log: EventLog | None = None) -> None:
        self.log: EventLog = EventLog() if log is None else log
        self.stopped_event = anyio.Event()

    @handler
    async def hold(self, msg: Hold, ctx: Context[Self]) -> str:
        self.log.append("hold-start")
        msg.entered.set()
        await msg.release.wait()
        self.log.append("hold-end")
        if msg.fail:
            raise RuntimeError("hold failed on purpose")
        return "held"

    @handler
    def note(self, msg: Note, ctx: Context[Self]) -> str:
        self.log.append(msg.text)
        return msg.text

    @handler
    def get_log(self, msg: GetLog, ctx: Context[Self]) -> list[str]:
        return list(self.log)

    def stopped(self, ctx: Context[Self]) -> None:
        self.log.append("stopped")
        self.stopped_event.set()


class WatchingGate(Gate):
    """A Gate that watches ``target`` from ``started`` and logs every ``Terminated``."""

    def __init__(self, target: Addr[Actor], log: EventLog | None = None) -> None:
        super().__init__(log)
        self.target = target
        self.terminated: list[Terminated] = []
        self.got_terminated = anyio.Event()

    def started(self, ctx: Context[Self]) -> None:
        ctx.watch(self.target)

    @handler
    def on_terminated(self, msg: Terminated, ctx: Context[Self]) -> None:
        self.log.append("terminated")
        self.terminated.append(msg)
        self.got_terminated.set()


class Outcome:
    """Runs an awaitable in a task and keeps its result or exception for later inspection."""

    def __init__(self) -> None:
        self.value: object = None
        self.error: BaseException | None = None
        self.done = anyio.Event()

    async def run(self, call: Callable[[], Awaitable[object]]) -> None:
        try:
            self.value = await call()
        except Exception as exc:  # the test inspects it
            self.error = exc
        finally:
            self.done.set()


async def hold(addr: Addr[Gate], *, fail: bool = False) -> Hold:
    """``do_send`` a ``Hold`` and return it once the actor is inside the handler."""
    msg = Hold(fail=fail)
    addr.do_send(msg)
    await msg.entered.wait()
    return msg
