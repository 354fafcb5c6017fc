"""Acceptance: API.md "Registry", the registry and watch fine print, and the watch rows of the
Context table."""

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
    CinemaError,
    Context,
    Message,
    NameTaken,
    SupervisorStrategy,
    Terminated,
    UnhandledMessage,
    handler,
)
from cinema.testing import wait_stopped
from tests.acceptance.support import Gate, GetLog, Note, WatchingGate, hold


class Other(Actor):
    @handler
    def note(self, msg: Note, ctx: Context[Self]) -> str:
        return "other"


# --- registry ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_register_and_lookup_typed_and_untyped() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Gate())
        system.register("gate", addr)
        found = system.lookup("gate", Gate)
        assert found == addr
        assert found is not None
        assert await found.send(Note("hi")) == "hi"
        assert system.lookup("gate") == addr
        assert system.lookup("nobody") is None
        assert system.lookup("nobody", Gate) is None


@pytest.mark.anyio
async def test_lookup_with_another_type_returns_none() -> None:
    async with ActorSystem() as system:
        system.register("gate", system.spawn(Gate()))
        assert system.lookup("gate", Other) is None
        assert system.lookup("gate", WatchingGate) is None  # a subclass is "another type" too
        assert system.lookup("gate", Actor) is not None  # every actor is an Actor


@pytest.mark.anyio
async def test_a_name_held_by_a_live_actor_raises_name_taken() -> None:
    async with ActorSystem() as system:
        first = system.spawn(Gate())
        second = system.spawn(Gate())
        system.register("x", first)
        with pytest.raises(NameTaken) as info:
            system.register("x", second)
        assert isinstance(info.value, CinemaError)
        assert system.lookup("x") == first


@pytest.mark.anyio
async def test_registering_the_same_addr_under_the_same_name_again_is_a_no_op() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Gate())
        system.register("x", addr)
        system.register("x", addr)
        assert system.lookup("x") == addr
        assert system.unregister("x") is True
        assert system.lookup("x") is None  # one entry, not two


@pytest.mark.anyio
async def test_one_actor_may_hold_several_names() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Gate())
        system.register("a", addr)
        system.register("b", addr)
        assert system.lookup("a") == addr
        assert system.lookup("b") == addr


@pytest.mark.anyio
async def test_registering_a_dead_addr_raises_actor_stopped() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Gate())
        addr.stop()
        with pytest.raises(ActorStopped):  # stopping already counts
            system.register("dead", addr)
        await wait_stopped(system, addr)
        with pytest.raises(ActorStopped):
            system.register("dead", addr)
        assert system.lookup("dead") is None


@pytest.mark.anyio
async def test_unregister_returns_whether_the_name_was_there() -> None:
    async with ActorSystem() as system:
        assert system.unregister("unknown") is False
        addr = system.spawn(Gate())
        system.register("x", addr)
        assert system.unregister("x") is True
        assert system.lookup("x") is None
        assert system.unregister("x") is False
        assert addr.is_alive  # unregistering does not touch the actor


@pytest.mark.anyio
async def test_entries_go_away_when_the_actor_stops_and_the_name_is_free_again() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Gate())
        system.register("x", addr)
        addr.stop()
        await wait_stopped(system, addr)
        assert system.lookup("x") is None
        assert system.lookup("x", Gate) is None
        successor = system.spawn(Gate())
        system.register("x", successor)  # no NameTaken: the holder is dead
        assert system.lookup("x") == successor


@pytest.mark.anyio
async def test_a_name_held_by_a_stopping_actor_can_be_taken() -> None:
    # NameTaken only "if the name is held by a live actor"; is_alive is False from stop() on.
    async with ActorSystem() as system:
        holder = system.spawn(Gate())
        system.register("x", holder)
        held = await hold(holder)
        holder.stop()  # still finishing its current message
        successor = system.spawn(Gate())
        system.register("x", successor)
        assert system.lookup("x") == successor
        held.release.set()
        await wait_stopped(system, holder)
        assert system.lookup("x") == successor  # the old holder's clean-up keeps the new entry


@pytest.mark.anyio
async def test_entries_of_a_failed_actor_go_away() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Crashy())
        system.register("x", addr)
        with pytest.raises(ActorFailed):
            await addr.send(Boom())
        await wait_stopped(system, addr)
        assert system.lookup("x") is None


@dataclass
class Boom(Message[None]):
    pass


class Crashy(Gate):
    @handler
    def boom(self, msg: Boom, ctx: Context[Self]) -> None:
        raise RuntimeError("boom")


@pytest.mark.anyio
async def test_entries_stay_valid_during_restarts() -> None:
    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(Crashy, SupervisorStrategy.restart(5, within=60))
        system.register("x", addr)
        for _ in range(3):
            with pytest.raises(ActorFailed):
                await addr.send(Boom())
            assert system.lookup("x", Crashy) == addr
        found = system.lookup("x", Crashy)
        assert found is not None
        assert await found.send(Note("after")) == "after"
        with pytest.raises(NameTaken):  # still held by a live actor
            system.register("x", system.spawn(Gate()))


# --- watch ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_watch_delivers_terminated_naming_the_actor_when_it_stops() -> None:
    async with ActorSystem() as system:
        target = system.spawn(Gate())
        watcher = WatchingGate(target)
        system.spawn(watcher)
        await anyio.wait_all_tasks_blocked()
        assert not watcher.got_terminated.is_set()
        target.stop()
        await watcher.got_terminated.wait()
        assert watcher.terminated == [Terminated(target)]
        assert watcher.terminated[0].addr == target


@pytest.mark.anyio
async def test_watch_delivers_terminated_when_the_actor_fails_and_stops() -> None:
    async with ActorSystem() as system:
        target = system.spawn(Crashy())
        watcher = WatchingGate(target)
        system.spawn(watcher)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(ActorFailed):
            await target.send(Boom())
        await watcher.got_terminated.wait()
        assert [t.addr for t in watcher.terminated] == [target]


@pytest.mark.anyio
async def test_watching_an_already_dead_actor_delivers_terminated_at_once() -> None:
    async with ActorSystem() as system:
        target = system.spawn(Gate())
        target.stop()
        await wait_stopped(system, target)
        watcher = WatchingGate(target)
        system.spawn(watcher)
        with anyio.fail_after(10):
            await watcher.got_terminated.wait()
        assert [t.addr for t in watcher.terminated] == [target]


@dataclass
class WatchIt(Message[bool]):
    """Watch ``target``; reply whether ``watch`` raised UnhandledMessage."""

    target: Addr[Actor]


@dataclass
class UnwatchIt(Message[None]):
    target: Addr[Actor]


class NoTerminatedHandler(Actor):
    @handler
    def watch_it(self, msg: WatchIt, ctx: Context[Self]) -> bool:
        try:
            ctx.watch(msg.target)  # type: ignore[cinema-unhandled]  # refused on purpose
        except UnhandledMessage:
            return True
        return False


@pytest.mark.anyio
async def test_watch_without_a_terminated_handler_raises_unhandled_message() -> None:
    async with ActorSystem() as system:
        target = system.spawn(Gate())
        addr = system.spawn(NoTerminatedHandler())
        assert await addr.send(WatchIt(target)) is True
        assert addr.is_alive


@dataclass
class AlsoWatch(Message[None]):
    target: Addr[Actor]


class Unwatcher(WatchingGate):
    @handler
    def unwatch_it(self, msg: UnwatchIt, ctx: Context[Self]) -> None:
        ctx.unwatch(msg.target)

    @handler
    def also_watch(self, msg: AlsoWatch, ctx: Context[Self]) -> None:
        ctx.watch(msg.target)


@pytest.mark.anyio
async def test_unwatch_cancels_the_watch() -> None:
    async with ActorSystem() as system:
        target = system.spawn(Gate())
        other = system.spawn(Gate())
        watcher = Unwatcher(target)
        addr = system.spawn(watcher)
        await addr.send(AlsoWatch(other))
        await addr.send(UnwatchIt(target))
        target.stop()
        await wait_stopped(system, target)
        # A Terminated for `target`, had it been sent, would come before the one for `other`.
        other.stop()
        await watcher.got_terminated.wait()
        assert watcher.terminated == [Terminated(other)]
        assert await addr.send(GetLog()) == ["terminated"]


@pytest.mark.anyio
async def test_several_watchers_each_get_terminated() -> None:
    async with ActorSystem() as system:
        target = system.spawn(Gate())
        watchers = [WatchingGate(target) for _ in range(5)]
        for watcher in watchers:
            system.spawn(watcher)
        await anyio.wait_all_tasks_blocked()
        target.stop()
        for watcher in watchers:
            await watcher.got_terminated.wait()
            assert watcher.terminated == [Terminated(target)]
