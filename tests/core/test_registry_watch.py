"""Registry and watch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import anyio
import pytest

from cinema import (
    Actor,
    ActorFailed,
    ActorStopped,
    ActorSystem,
    Addr,
    Context,
    Message,
    NameTaken,
    SupervisorStrategy,
    Terminated,
    UnhandledMessage,
    handler,
)
from cinema.testing import wait_stopped

pytestmark = pytest.mark.anyio


@dataclass
class Ping(Message[str]):
    pass


@dataclass
class Crash(Message[None]):
    pass


@dataclass
class Watch(Message[None]):
    target: Addr[Actor]
    unwatch: bool = False


class Pinger(Actor):
    @handler
    def ping(self, msg: Ping, ctx: Context[Self]) -> str:
        return "pong"

    @handler
    def crash(self, msg: Crash, ctx: Context[Self]) -> None:
        raise RuntimeError("crash")


class Other(Actor):
    @handler
    def ping(self, msg: Ping, ctx: Context[Self]) -> str:
        return "other"


class Watcher(Actor):
    def __init__(self) -> None:
        self.terminated: list[Addr[Actor]] = []
        self.event = anyio.Event()

    @handler
    def watch(self, msg: Watch, ctx: Context[Self]) -> None:
        if msg.unwatch:
            ctx.unwatch(msg.target)
        else:
            ctx.watch(msg.target)

    @handler
    def on_terminated(self, msg: Terminated, ctx: Context[Self]) -> None:
        self.terminated.append(msg.addr)
        self.event.set()


async def test_register_lookup_unregister() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Pinger())
        system.register("pinger", addr)
        system.register("pinger", addr)  # same Addr, same name: no-op
        found = system.lookup("pinger", Pinger)
        assert found == addr
        assert found is not None
        assert await found.send(Ping()) == "pong"
        assert system.lookup("pinger", Other) is None
        assert system.lookup("nobody", Pinger) is None
        assert system.lookup("pinger") == addr
        with pytest.raises(NameTaken):
            system.register("pinger", system.spawn(Other()))
        assert system.unregister("pinger") is True
        assert system.unregister("pinger") is False
        assert system.lookup("pinger", Pinger) is None


async def test_registry_entries_survive_restarts_and_vanish_on_stop() -> None:
    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(Pinger, SupervisorStrategy.restart(1, 60.0))
        system.register("p", addr)
        with pytest.raises(ActorFailed):
            await addr.send(Crash())
        assert system.lookup("p", Pinger) == addr
        assert await addr.send(Ping()) == "pong"
        watcher = Watcher()
        system.spawn(watcher).do_send(Watch(addr))
        addr.stop()
        await watcher.event.wait()
        assert system.lookup("p", Pinger) is None
        # The name is free again.
        system.register("p", system.spawn(Other()))


async def test_register_a_dead_addr() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Pinger())
        addr.stop()
        with pytest.raises(ActorStopped):
            system.register("dead", addr)


async def test_watch_delivers_terminated_once_the_actor_stops() -> None:
    async with ActorSystem() as system:
        target = system.spawn(Pinger())
        watcher = Watcher()
        w = system.spawn(watcher)
        await w.send(Watch(target))
        with pytest.raises(ActorFailed):
            await target.send(Crash())
        await watcher.event.wait()
        assert watcher.terminated == [target]


async def test_watching_a_dead_actor_delivers_terminated_at_once() -> None:
    async with ActorSystem() as system:
        target = system.spawn(Pinger())
        watcher = Watcher()
        w = system.spawn(watcher)
        target.stop()
        await wait_stopped(system, target)
        await w.send(Watch(target))
        await watcher.event.wait()
        assert watcher.terminated == [target]


async def test_unwatch() -> None:
    async with ActorSystem() as system:
        target = system.spawn(Pinger())
        marker = system.spawn(Pinger())
        watcher = Watcher()
        w = system.spawn(watcher)
        await w.send(Watch(target))
        await w.send(Watch(target, unwatch=True))
        await w.send(Watch(marker))
        target.stop()
        marker.stop()
        await watcher.event.wait()
        assert watcher.terminated == [marker]


async def test_watch_without_a_terminated_handler() -> None:
    class Careless(Actor):
        @handler
        def watch(self, msg: Watch, ctx: Context[Self]) -> None:
            ctx.watch(msg.target)  # type: ignore[cinema-unhandled]  # the run-time check is tested

    async with ActorSystem() as system:
        addr = system.spawn(Careless())
        with pytest.raises(ActorFailed) as info:
            await addr.send(Watch(system.spawn(Pinger())))
        assert isinstance(info.value.__cause__, UnhandledMessage)
