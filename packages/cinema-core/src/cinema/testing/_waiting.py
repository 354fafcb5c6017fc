"""Waiting in tests: for an actor to stop, or for a condition that has no event to wait on."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Self

import anyio

from .._actor import Actor
from .._addr import Addr
from .._context import Context
from .._handler import handler
from .._message import Terminated
from .._system import ActorSystem

__all__ = ["eventually", "wait_stopped"]


class _Watcher(Actor):
    def __init__(self, target: Addr[Any]) -> None:
        self.target = target
        self.done = anyio.Event()

    def started(self, ctx: Context[Self]) -> None:
        ctx.watch(self.target)

    @handler
    def terminated(self, msg: Terminated, ctx: Context[Self]) -> None:
        self.done.set()
        ctx.stop()


async def wait_stopped(system: ActorSystem, addr: Addr[Any]) -> None:
    """Return once the actor at ``addr`` has stopped for good (at once if it already has).

    It watches the actor (a restart is not a stop); bound it with ``anyio.fail_after``.
    """
    watcher = _Watcher(addr)
    system.spawn(watcher)
    await watcher.done.wait()


async def eventually(
    predicate: Callable[[], bool | Awaitable[bool]],
    *,
    timeout: float = 5.0,
    interval: float = 0.01,
) -> None:
    """Wait until ``predicate()`` holds, checking it every ``interval`` seconds.

    For state that changes with no event to wait on (a gossip round, a counter in another
    process); wait on the event instead wherever there is one. ``predicate`` may be a plain
    function or an ``async def`` one.

    :raises AssertionError: it still does not hold after ``timeout`` seconds.
    """
    try:
        with anyio.fail_after(timeout):
            while True:
                result = predicate()
                if inspect.isawaitable(result):
                    result = await result
                if result:
                    return
                await anyio.sleep(interval)
    except TimeoutError:
        name = getattr(predicate, "__qualname__", repr(predicate))
        raise AssertionError(f"{name} did not hold within {timeout} s") from None
