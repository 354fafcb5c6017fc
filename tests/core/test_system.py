"""The system: shutdown, isolation of failures, public names."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Self

import anyio
import anyio.lowlevel
import pytest

import cinema
from cinema import Actor, ActorStopped, ActorSystem, Context, Message, handler
from cinema.testing import wait_stopped

pytestmark = pytest.mark.anyio


@dataclass
class Hang(Message[None]):
    pass


@dataclass
class Ping(Message[str]):
    pass


class Stubborn(Actor):
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.entered = anyio.Event()

    @handler
    async def hang(self, msg: Hang, ctx: Context[Self]) -> None:
        self.entered.set()
        try:
            await anyio.sleep_forever()
        finally:
            self.log.append("handler cancelled")

    @handler
    def ping(self, msg: Ping, ctx: Context[Self]) -> str:
        return "pong"

    async def stopped(self, ctx: Context[Self]) -> None:
        await anyio.lowlevel.checkpoint()
        self.log.append("stopped")


async def test_shutdown_cancels_handlers_after_the_grace_period_and_runs_stopped() -> None:
    log: list[str] = []
    actor = Stubborn(log)
    with anyio.fail_after(5):
        async with ActorSystem(shutdown_timeout=0.05) as system:
            addr = system.spawn(actor)
            addr.do_send(Hang())
            await actor.entered.wait()
    assert log == ["handler cancelled", "stopped"]


async def test_cancelled_block_cancels_handlers_at_once_and_runs_stopped() -> None:
    log: list[str] = []
    actor = Stubborn(log)
    with anyio.fail_after(5):
        with anyio.CancelScope() as scope:
            async with ActorSystem(shutdown_timeout=30) as system:
                addr = system.spawn(actor)
                addr.do_send(Hang())
                await actor.entered.wait()
                scope.cancel()
                await anyio.sleep_forever()
    assert log == ["handler cancelled", "stopped"]


async def test_pending_send_is_released_when_the_system_shuts_down() -> None:
    log: list[str] = []
    actor = Stubborn(log)
    outcome: list[str] = []

    async def ask(addr: cinema.Addr[Stubborn]) -> None:
        try:
            await addr.send(Hang())
        except ActorStopped:
            outcome.append("stopped")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg, ActorSystem(shutdown_timeout=0.01) as system:
            addr = system.spawn(actor)
            tg.start_soon(ask, addr)
            await actor.entered.wait()
    assert outcome == ["stopped"]


async def test_exceptions_in_user_code_never_take_the_system_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Bomb(Actor):
        def started(self, ctx: Context[Self]) -> None:
            raise RuntimeError("bad start")

    with caplog.at_level(logging.ERROR, logger="cinema"):
        async with ActorSystem() as system:
            bomb = system.spawn(Bomb())
            ok = system.spawn(Stubborn([]))
            assert await ok.send(Ping()) == "pong"
            await wait_stopped(system, bomb)
    assert any("bad start" in r.getMessage() or r.exc_info for r in caplog.records)


async def test_system_can_be_entered_only_once() -> None:
    system = ActorSystem()
    async with system:
        pass
    with pytest.raises(cinema.CinemaError):
        async with system:
            pass


def test_public_names() -> None:
    for name in cinema.__all__:
        obj = getattr(cinema, name)
        assert obj is not None
        if isinstance(obj, type):
            assert obj.__module__ == "cinema", name
    assert cinema.__all__ == sorted(cinema.__all__)
    assert issubclass(cinema.UnhandledMessage, TypeError)
    for error in ("ActorStopped", "ActorFailed", "NameTaken", "MailboxFull", "UnhandledMessage"):
        assert issubclass(getattr(cinema, error), cinema.CinemaError)


async def test_an_exception_in_the_block_propagates_unwrapped() -> None:
    async def body() -> None:
        async with ActorSystem() as system:
            system.spawn(Stubborn([]))
            raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        await body()


async def test_is_alive_is_false_as_soon_as_the_sender_sees_the_failure() -> None:
    class Fragile(Actor):
        @handler
        def ping(self, msg: Ping, ctx: Context[Self]) -> str:
            raise RuntimeError("no")

    async with ActorSystem() as system:
        addr = system.spawn(Fragile())
        with pytest.raises(cinema.ActorFailed):
            await addr.send(Ping())
        assert not addr.is_alive
