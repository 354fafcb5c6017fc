"""Shared fixtures: every async test runs on both anyio backends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Self

import anyio
import pytest

from cinema import Actor, ActorSystem, Addr, Context, Terminated, handler


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class _Watcher(Actor):
    def __init__(self, target: Addr[Actor]) -> None:
        self.target = target
        self.done = anyio.Event()

    def started(self, ctx: Context[Self]) -> None:
        ctx.watch(self.target)

    @handler
    def terminated(self, msg: Terminated, ctx: Context[Self]) -> None:
        self.done.set()
        ctx.stop()


WaitStopped = Callable[[ActorSystem, "Addr[Actor]"], Awaitable[None]]


@pytest.fixture
def wait_stopped() -> WaitStopped:
    """``await wait_stopped(system, addr)`` returns once the actor has stopped for good."""

    async def wait(system: ActorSystem, addr: Addr[Actor]) -> None:
        watcher = _Watcher(addr)
        system.spawn(watcher)
        await watcher.done.wait()

    return wait
