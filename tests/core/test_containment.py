"""Whatever user code raises is that actor's failure: never a wedged actor, never the system's end.

Each case raises a ``BaseException`` that is not an ``Exception`` (a stray
``asyncio.CancelledError``, ``GeneratorExit``, a user's own ``BaseException`` subclass) from one
of the places user code runs: sync and async handlers reached through ``send`` and ``do_send``,
``started``/``stopped`` hooks, streams, restart factories.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Self

import anyio
import pytest

from cinema import (
    Actor,
    ActorFailed,
    ActorStopped,
    ActorSystem,
    Context,
    Message,
    StreamHandler,
    SupervisorStrategy,
    handler,
)
from cinema.testing import wait_stopped

pytestmark = pytest.mark.anyio


class Fatal(BaseException):
    """A user's own BaseException subclass."""


def stray_cancel() -> BaseException:
    return asyncio.CancelledError("stray")


STRAYS: list[Callable[[], BaseException]] = [stray_cancel, GeneratorExit, Fatal]


@dataclass
class Boom(Message[None]):
    make: Callable[[], BaseException]


@dataclass
class Ping(Message[int]):
    pass


class Sync(Actor):
    def __init__(self) -> None:
        self.stopped_ran = anyio.Event()

    def stopped(self, ctx: Context[Self]) -> None:
        self.stopped_ran.set()

    @handler
    def boom(self, msg: Boom, ctx: Context[Self]) -> None:
        raise msg.make()

    @handler
    def ping(self, msg: Ping, ctx: Context[Self]) -> int:
        return 1


class Async(Actor):
    def __init__(self) -> None:
        self.stopped_ran = anyio.Event()

    def stopped(self, ctx: Context[Self]) -> None:
        self.stopped_ran.set()

    @handler
    async def boom(self, msg: Boom, ctx: Context[Self]) -> None:
        await anyio.lowlevel.checkpoint()
        raise msg.make()

    @handler
    async def ping(self, msg: Ping, ctx: Context[Self]) -> int:
        return 1


ACTORS: list[type[Sync | Async]] = [Sync, Async]


@pytest.mark.parametrize("make", STRAYS)
@pytest.mark.parametrize("kind", ACTORS)
async def test_send_a_base_exception_fails_the_actor_not_the_system(
    kind: type[Sync | Async], make: Callable[[], BaseException]
) -> None:
    after_block = False
    async with ActorSystem() as system:
        actor = kind()
        addr = system.spawn(actor)
        with pytest.raises(ActorFailed) as info:
            await addr.send(Boom(make))
        assert type(info.value.__cause__) is type(make())
        # Stopped under the default strategy, not wedged: later sends fail at once.
        assert not addr.is_alive
        await actor.stopped_ran.wait()
        with pytest.raises(ActorStopped):
            await addr.send(Ping())
        assert await system.spawn(kind()).send(Ping()) == 1
    after_block = True
    assert after_block


@pytest.mark.parametrize("make", STRAYS)
@pytest.mark.parametrize("kind", ACTORS)
async def test_do_send_a_base_exception_fails_the_actor_not_the_system(
    kind: type[Sync | Async], make: Callable[[], BaseException]
) -> None:
    after_block = False
    async with ActorSystem() as system:
        actor = kind()
        addr = system.spawn(actor)
        addr.do_send(Boom(make))
        await wait_stopped(system, addr)
        assert actor.stopped_ran.is_set()
        # The dispatcher survived: other actors still work, the block goes on.
        assert await system.spawn(kind()).send(Ping()) == 1
        await anyio.lowlevel.checkpoint()
    after_block = True
    assert after_block


@pytest.mark.parametrize("kind", ACTORS)
async def test_restart_strategy_applies_to_base_exceptions(kind: type[Sync | Async]) -> None:
    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(kind, SupervisorStrategy.restart(5, within=60))
        for _ in range(3):
            with pytest.raises(ActorFailed):
                await addr.send(Boom(Fatal))
            assert await addr.send(Ping()) == 1
        addr.do_send(Boom(Fatal))
        assert await addr.send(Ping()) == 1


class AwaitsCancelledFuture(Actor):
    """Awaits something that other code cancels: not a shutdown, a failure."""

    def __init__(self, backend: str) -> None:
        self.backend = backend

    @handler
    async def boom(self, msg: Boom, ctx: Context[Self]) -> None:
        if self.backend == "asyncio":
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(fut.cancel)
            await fut
        else:  # trio has no futures that others cancel; the stray exception is the same
            raise asyncio.CancelledError

    @handler
    def ping(self, msg: Ping, ctx: Context[Self]) -> int:
        return 1


async def test_awaiting_a_future_cancelled_elsewhere_is_a_failure_not_a_shutdown(
    anyio_backend: str,
) -> None:
    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(
            lambda: AwaitsCancelledFuture(anyio_backend), SupervisorStrategy.restart(3, within=60)
        )
        with pytest.raises(ActorFailed) as info:
            await addr.send(Boom(stray_cancel))
        assert isinstance(info.value.__cause__, asyncio.CancelledError)
        assert await addr.send(Ping()) == 1


class FailsToStart(Actor):
    def __init__(self, make: Callable[[], BaseException]) -> None:
        self.make = make

    async def started(self, ctx: Context[Self]) -> None:
        await anyio.lowlevel.checkpoint()
        raise self.make()

    @handler
    def ping(self, msg: Ping, ctx: Context[Self]) -> int:
        return 1


class FailsToStartSync(Actor):
    def __init__(self, make: Callable[[], BaseException]) -> None:
        self.make = make

    def started(self, ctx: Context[Self]) -> None:
        raise self.make()

    @handler
    def ping(self, msg: Ping, ctx: Context[Self]) -> int:
        return 1


@pytest.mark.parametrize("make", STRAYS)
async def test_started_raising_a_base_exception_stops_the_actor(
    make: Callable[[], BaseException],
) -> None:
    async with ActorSystem() as system:
        a = system.spawn(FailsToStart(make))
        b = system.spawn(FailsToStartSync(make))
        await wait_stopped(system, a)
        await wait_stopped(system, b)
        with pytest.raises(ActorStopped):
            await a.send(Ping())


class BadStop(Actor):
    def __init__(self, make: Callable[[], BaseException]) -> None:
        self.make = make

    def started(self, ctx: Context[Self]) -> None:
        pass

    async def stopped(self, ctx: Context[Self]) -> None:
        raise self.make()

    @handler
    def ping(self, msg: Ping, ctx: Context[Self]) -> int:
        return 1


@pytest.mark.parametrize("make", STRAYS)
async def test_stopped_raising_a_base_exception_still_stops(
    make: Callable[[], BaseException],
) -> None:
    after_block = False
    async with ActorSystem() as system:
        addr = system.spawn(BadStop(make))
        assert await addr.send(Ping()) == 1
        addr.stop()
        await wait_stopped(system, addr)
    after_block = True
    assert after_block


class Numbers(Actor, StreamHandler[int]):
    def __init__(self, make: Callable[[], BaseException], in_stream: bool) -> None:
        self.make = make
        self.in_stream = in_stream

    async def source(self) -> AsyncIterator[int]:
        yield 1
        if self.in_stream:
            raise self.make()
        yield 2

    def started(self, ctx: Context[Self]) -> None:
        ctx.add_stream(self.source())

    def handle(self, item: int, ctx: Context[Self]) -> None:
        if item == 2:
            raise self.make()

    @handler
    def ping(self, msg: Ping, ctx: Context[Self]) -> int:
        return 1


@pytest.mark.parametrize("make", [stray_cancel, Fatal])
@pytest.mark.parametrize("in_stream", [True, False])
async def test_a_stream_raising_a_base_exception_fails_the_actor(
    make: Callable[[], BaseException], in_stream: bool
) -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Numbers(make, in_stream))
        await wait_stopped(system, addr)
        assert await system.spawn(Sync()).send(Ping()) == 1


async def test_a_restart_factory_raising_a_base_exception_stops_the_actor() -> None:
    made = 0

    def factory() -> Sync:
        nonlocal made
        made += 1
        if made > 1:
            raise Fatal
        return Sync()

    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(factory, SupervisorStrategy.restart(3, within=60))
        with pytest.raises(ActorFailed):
            await addr.send(Boom(GeneratorExit))
        await wait_stopped(system, addr)
        assert made == 2


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("kind", ACTORS)
async def test_keyboard_interrupt_and_system_exit_end_the_system(
    kind: type[Sync | Async], exc_type: type[BaseException]
) -> None:
    actor = kind()
    other = Sync()
    reached_end = False

    async def program() -> None:
        nonlocal reached_end
        async with ActorSystem() as system:
            addr = system.spawn(actor)
            system.spawn(other)
            addr.do_send(Boom(exc_type))
            await anyio.sleep_forever()  # the system's end cancels the block
        reached_end = True

    with pytest.raises(exc_type):
        await program()
    assert not reached_end
    # Every actor was stopped cleanly on the way out.
    assert actor.stopped_ran.is_set()
    assert other.stopped_ran.is_set()


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
async def test_keyboard_interrupt_from_send_reaches_the_caller(
    exc_type: type[BaseException],
) -> None:
    actor = Sync()

    async def program() -> None:
        async with ActorSystem() as system:
            await system.spawn(actor).send(Boom(exc_type))

    with pytest.raises(exc_type):
        await program()
    assert actor.stopped_ran.is_set()


def test_lowlevel_is_the_public_home_of_the_primitives_extenders_use() -> None:
    import cinema._addr
    import cinema._backend
    import cinema._errors
    import cinema._handler
    import cinema.lowlevel

    homes = (cinema._backend, cinema._errors, cinema._handler, cinema._addr)
    for name in cinema.lowlevel.__all__:
        found = [home for home in homes if getattr(home, name, None) is not None]
        assert found, name
        assert getattr(cinema.lowlevel, name) is getattr(found[0], name)
    assert cinema.lowlevel.Backend.__module__ == "cinema.lowlevel"


async def test_lowlevel_backend_futures_work_on_both_backends(anyio_backend: str) -> None:
    from cinema.lowlevel import Backend, current_backend

    backend = Backend()
    assert backend.name == current_backend() == anyio_backend
    fut = backend.new_future()
    fut.set_result(42)
    assert fut.done()
    assert await fut == 42


class AsyncStream(Actor, StreamHandler[int]):
    """Async ``handle`` and ``finished`` raising what is not an Exception."""

    def __init__(self, make: Callable[[], BaseException], in_finished: bool) -> None:
        self.make = make
        self.in_finished = in_finished

    async def source(self) -> AsyncIterator[int]:
        yield 1

    def started(self, ctx: Context[Self]) -> None:
        ctx.add_stream(self.source())

    async def handle(self, item: int, ctx: Context[Self]) -> None:
        if not self.in_finished:
            raise self.make()

    async def finished(self, ctx: Context[Self]) -> None:
        raise self.make()


@pytest.mark.parametrize("make", STRAYS)
@pytest.mark.parametrize("in_finished", [False, True])
async def test_async_stream_hooks_raising_base_exceptions_fail_the_actor(
    make: Callable[[], BaseException], in_finished: bool
) -> None:
    after_block = False
    async with ActorSystem() as system:
        addr = system.spawn(AsyncStream(make, in_finished))
        await wait_stopped(system, addr)
        assert await system.spawn(Async()).send(Ping()) == 1
    after_block = True
    assert after_block
