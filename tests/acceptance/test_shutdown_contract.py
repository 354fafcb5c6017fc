"""Acceptance: leaving ``async with ActorSystem()`` (fine print: grace period, cancellation)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

import anyio
import anyio.lowlevel
import pytest

from cinema import Actor, ActorStopped, ActorSystem, Addr, Context, Message, handler
from tests.acceptance.support import Note


@dataclass(eq=False)
class Work(Message[None]):
    """Sleep ``seconds`` (forever if None); log how the handler ended."""

    seconds: float | None
    entered: anyio.Event = field(default_factory=anyio.Event)


class Worker(Actor):
    def __init__(self, log: list[str], name: str = "worker", async_stopped: bool = False):
        self.log, self.name, self.async_stopped = log, name, async_stopped

    @handler
    async def work(self, msg: Work, ctx: Context[Self]) -> None:
        msg.entered.set()
        try:
            if msg.seconds is None:
                await anyio.sleep_forever()
            else:
                await anyio.sleep(msg.seconds)
        except anyio.get_cancelled_exc_class():
            self.log.append(f"{self.name}:cancelled")
            raise
        self.log.append(f"{self.name}:done")

    @handler
    def note(self, msg: Note, ctx: Context[Self]) -> str:
        self.log.append(f"{self.name}:{msg.text}")
        return msg.text

    async def stopped(self, ctx: Context[Self]) -> None:
        if self.async_stopped:
            await anyio.lowlevel.checkpoint()  # an async hook must be able to await during shutdown
        self.log.append(f"{self.name}:stopped")


@pytest.mark.anyio
async def test_leaving_the_block_stops_every_actor_and_runs_stopped() -> None:
    log: list[str] = []
    with anyio.fail_after(10):
        async with ActorSystem() as system:
            addrs = [system.spawn(Worker(log, f"w{i}")) for i in range(5)]
            for addr in addrs:
                await addr.send(Note("hi"))
    assert sorted(e for e in log if e.endswith(":stopped")) == [f"w{i}:stopped" for i in range(5)]
    for addr in addrs:
        assert not addr.is_alive
        with pytest.raises(ActorStopped):
            await addr.send(Note("late"))


@pytest.mark.anyio
async def test_a_running_handler_gets_the_grace_period_to_finish() -> None:
    log: list[str] = []
    with anyio.fail_after(10):
        async with ActorSystem(shutdown_timeout=5.0) as system:
            addr = system.spawn(Worker(log))
            msg = Work(0.05)
            addr.do_send(msg)
            await msg.entered.wait()
    assert log == ["worker:done", "worker:stopped"]


@pytest.mark.anyio
async def test_messages_still_queued_at_the_end_of_the_block_are_not_handled() -> None:
    log: list[str] = []
    with anyio.fail_after(10):
        async with ActorSystem(shutdown_timeout=5.0) as system:
            addr = system.spawn(Worker(log))
            msg = Work(0.05)
            addr.do_send(msg)
            addr.do_send(Note("queued"))
            await msg.entered.wait()
    assert log == ["worker:done", "worker:stopped"]


@pytest.mark.anyio
@pytest.mark.parametrize("async_stopped", [False, True], ids=["sync-stopped", "async-stopped"])
async def test_after_the_grace_period_the_handler_is_cancelled_and_stopped_still_runs(
    async_stopped: bool,
) -> None:
    log: list[str] = []
    with anyio.fail_after(10):
        async with ActorSystem(shutdown_timeout=0.05) as system:
            addr = system.spawn(Worker(log, async_stopped=async_stopped))
            msg = Work(None)
            addr.do_send(msg)
            await msg.entered.wait()
    assert log == ["worker:cancelled", "worker:stopped"]


@pytest.mark.anyio
@pytest.mark.parametrize("async_stopped", [False, True], ids=["sync-stopped", "async-stopped"])
async def test_a_cancelled_block_cancels_handlers_at_once_and_stopped_still_runs(
    async_stopped: bool,
) -> None:
    log: list[str] = []
    # shutdown_timeout is an hour: only "cancelled at once" lets this finish within fail_after.
    with anyio.fail_after(10):
        with anyio.CancelScope() as scope:
            async with ActorSystem(shutdown_timeout=3600.0) as system:
                addr = system.spawn(Worker(log, async_stopped=async_stopped))
                msg = Work(None)
                addr.do_send(msg)
                await msg.entered.wait()
                scope.cancel()
                await anyio.sleep_forever()
        assert scope.cancelled_caught
    assert log == ["worker:cancelled", "worker:stopped"]


class Tree(Actor):
    def __init__(self, log: list[str], name: str, depth: int) -> None:
        self.log, self.name, self.depth = log, name, depth
        self.ready = anyio.Event()

    def started(self, ctx: Context[Self]) -> None:
        if self.depth:
            for i in range(2):
                ctx.spawn_child(Tree(self.log, f"{self.name}.{i}", self.depth - 1))

    def stopped(self, ctx: Context[Self]) -> None:
        self.log.append(self.name)


@pytest.mark.anyio
async def test_shutdown_stops_children_before_their_parents() -> None:
    log: list[str] = []
    async with ActorSystem() as system:
        system.spawn(Tree(log, "root", 2))
        await anyio.wait_all_tasks_blocked()
    assert sorted(log) == sorted(
        ["root", "root.0", "root.1", "root.0.0", "root.0.1", "root.1.0", "root.1.1"]
    )
    for name in log:  # every actor stopped after all of its descendants
        for other in log:
            if other.startswith(name + "."):
                assert log.index(other) < log.index(name), (other, name)


@pytest.mark.anyio
async def test_an_error_in_the_block_still_stops_every_actor() -> None:
    log: list[str] = []

    async def block() -> None:
        async with ActorSystem() as system:
            addr: Addr[Worker] = system.spawn(Worker(log))
            await addr.send(Note("hi"))
            raise LookupError("user code failed")

    # The block's own exception comes out as it is, not wrapped in an ExceptionGroup.
    with pytest.raises(LookupError, match="user code failed"):
        await block()
    assert log == ["worker:hi", "worker:stopped"]
