"""Messages: do_send, send, dispatch, ordering, stop semantics, mailboxes, dead letters."""

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
    HandlerDefinitionError,
    MailboxFull,
    Message,
    UnhandledMessage,
    handler,
)

pytestmark = pytest.mark.anyio


@dataclass
class Greet(Message[str]):
    name: str


@dataclass
class Add(Message[int]):
    n: int


@dataclass
class Farewell(Message[None]):
    pass


class WhoAmI(Message[Addr[Actor]]):
    pass


class Mirror(Actor):
    @handler
    def me(self, msg: WhoAmI, ctx: Context[Self]) -> Addr[Mirror]:
        return ctx.address()


class Greeter(Actor):
    @handler
    def greet(self, msg: Greet, ctx: Context[Self]) -> str:
        return f"Hello, {msg.name}!"


class Counter(Actor):
    def __init__(self) -> None:
        self.total = 0
        self.seen: list[int] = []

    @handler
    def add(self, msg: Add, ctx: Context[Self]) -> int:
        self.total += msg.n
        self.seen.append(msg.n)
        return self.total


async def test_quick_start() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Greeter())
        addr.do_send(Greet("World"))
        reply = await addr.send(Greet("Cinema"))
        assert reply == "Hello, Cinema!"


async def test_messages_from_one_sender_are_handled_in_order() -> None:
    async with ActorSystem() as system:
        counter = Counter()
        addr = system.spawn(counter)
        for i in range(1000):
            addr.do_send(Add(i))
        assert await addr.send(Add(0)) == sum(range(1000))
        assert counter.seen == [*range(1000), 0]


class Shapes(Actor):
    @handler
    def base(self, msg: Base, ctx: Context[Self]) -> str:
        return "base"

    @handler
    def special(self, msg: Special, ctx: Context[Self]) -> str:
        return "special"

    @handler
    def either(self, msg: int | str, ctx: Context[Self]) -> str:
        return f"either {msg!r}"


class Base(Message[str]):
    pass


class Special(Base):
    pass


class Derived(Base):
    pass


class MoreSpecial(Special):
    pass


async def test_dispatch_follows_the_class_hierarchy_most_specific_wins() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Shapes())
        assert await addr.send(Base()) == "base"
        assert await addr.send(Derived()) == "base"
        assert await addr.send(Special()) == "special"
        assert await addr.send(MoreSpecial()) == "special"
        assert await addr.send(3) == "either 3"
        assert await addr.send("x") == "either 'x'"


async def test_handler_inherited_from_a_base_actor() -> None:
    class Louder(Greeter):
        @handler
        def add(self, msg: Add, ctx: Context[Self]) -> int:
            return msg.n * 2

    async with ActorSystem() as system:
        addr = system.spawn(Louder())
        assert await addr.send(Greet("x")) == "Hello, x!"
        assert await addr.send(Add(2)) == 4


async def test_unhandled_message_is_a_type_error_raised_at_the_call() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Greeter())
        with pytest.raises(UnhandledMessage) as info:
            addr.do_send(Farewell())  # type: ignore[cinema-unhandled]  # the run-time check is tested
        assert isinstance(info.value, TypeError)
        assert isinstance(info.value, CinemaError)
        assert "Greeter" in str(info.value)
        assert "Farewell" in str(info.value)
        with pytest.raises(UnhandledMessage):
            await addr.send(Farewell())  # type: ignore[cinema-unhandled]  # the run-time check is tested
        assert await addr.send(Greet("still fine")) == "Hello, still fine!"


class Slow(Actor):
    def __init__(self) -> None:
        self.active = 0
        self.max_active = 0
        self.release = anyio.Event()
        self.entered = anyio.Event()
        self.log: list[str] = []

    @handler
    async def work(self, msg: Greet, ctx: Context[Self]) -> str:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self.entered.set()
        self.log.append(f"start {msg.name}")
        await self.release.wait()
        self.log.append(f"end {msg.name}")
        self.active -= 1
        return msg.name

    @handler
    def quick(self, msg: Add, ctx: Context[Self]) -> int:
        self.log.append(f"quick {msg.n}")
        return msg.n


async def test_async_handler_holds_the_mailbox_until_it_returns() -> None:
    async with ActorSystem() as system:
        slow = Slow()
        addr = system.spawn(slow)
        other = system.spawn(Counter())
        results: list[object] = []

        async def ask(msg: Greet | Add) -> None:
            results.append(await addr.send(msg))

        async with anyio.create_task_group() as tg:
            tg.start_soon(ask, Greet("a"))
            await slow.entered.wait()
            tg.start_soon(ask, Add(1))
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(ask, Greet("b"))
            # Other actors keep running while this one awaits.
            assert await other.send(Add(5)) == 5
            await anyio.wait_all_tasks_blocked()
            assert slow.log == ["start a"]
            slow.release.set()
        assert slow.max_active == 1
        assert slow.log == ["start a", "end a", "quick 1", "start b", "end b"]
        assert sorted(map(str, results)) == ["1", "a", "b"]


async def test_send_timeout_raises_and_the_message_is_still_handled() -> None:
    async with ActorSystem() as system:
        slow = Slow()
        addr = system.spawn(slow)
        with pytest.raises(TimeoutError):
            await addr.send(Greet("late"), timeout=0.05)
        slow.release.set()
        assert await addr.send(Add(7)) == 7
        assert slow.log == ["start late", "end late", "quick 7"]


async def test_addr_is_hashable_and_equal_for_the_same_actor() -> None:
    async with ActorSystem() as system:
        a = system.spawn(Greeter())
        b = system.spawn(Greeter())
        assert a != b
        assert len({a, b, a}) == 2

        c = system.spawn(Mirror())
        assert await c.send(WhoAmI()) == c
        assert "Greeter" in repr(a)


async def test_stop_refuses_new_messages_and_fails_queued_sends() -> None:
    async with ActorSystem() as system:
        slow = Slow()
        addr = system.spawn(slow)
        outcomes: list[str] = []

        async def ask(msg: Greet | Add) -> None:
            try:
                outcomes.append(str(await addr.send(msg)))
            except ActorStopped:
                outcomes.append("stopped")

        async with anyio.create_task_group() as tg:
            tg.start_soon(ask, Greet("running"))
            await slow.entered.wait()
            tg.start_soon(ask, Add(1))
            await anyio.wait_all_tasks_blocked()
            addr.stop()
            assert not addr.is_alive
            with pytest.raises(ActorStopped):
                await addr.send(Add(2))
            before = system.dead_letters
            addr.do_send(Add(3))
            assert system.dead_letters == before + 1
            slow.release.set()
        # The running handler finished; the queued one was not handled.
        assert sorted(outcomes) == ["running", "stopped"]
        assert slow.log == ["start running", "end running"]


async def test_ctx_stop_skips_the_rest_of_the_mailbox() -> None:
    class Quitter(Actor):
        def __init__(self) -> None:
            self.handled: list[int] = []

        @handler
        def add(self, msg: Add, ctx: Context[Self]) -> int:
            self.handled.append(msg.n)
            if msg.n == 2:
                ctx.stop()
            return msg.n

    async with ActorSystem() as system:
        quitter = Quitter()
        addr = system.spawn(quitter)
        for i in range(5):
            addr.do_send(Add(i))
        with pytest.raises(ActorStopped):
            await addr.send(Add(99))
        assert quitter.handled == [0, 1, 2]
        assert system.dead_letters == 2


class Lifecycle(Actor):
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def started(self, ctx: Context[Self]) -> None:
        await anyio.sleep(0.01)
        self.log.append("started")

    @handler
    def greet(self, msg: Greet, ctx: Context[Self]) -> str:
        self.log.append(f"greet {msg.name}")
        return msg.name

    def stopped(self, ctx: Context[Self]) -> None:
        self.log.append("stopped")


async def test_started_completes_before_the_first_message_and_stopped_runs_last() -> None:
    log: list[str] = []
    async with ActorSystem() as system:
        addr = system.spawn(Lifecycle(log))
        addr.do_send(Greet("first"))
        assert await addr.send(Greet("second")) == "second"
    assert log == ["started", "greet first", "greet second", "stopped"]


async def test_bounded_mailbox() -> None:
    async with ActorSystem() as system:
        slow = Slow()
        addr = system.spawn(slow, mailbox_capacity=2)
        results: list[object] = []

        async def ask(msg: Greet | Add) -> None:
            results.append(await addr.send(msg))

        async with anyio.create_task_group() as tg:
            tg.start_soon(ask, Greet("busy"))
            await slow.entered.wait()  # the message being handled does not count
            addr.do_send(Add(1))
            addr.do_send(Add(2))
            with pytest.raises(MailboxFull):
                addr.do_send(Add(3))
            tg.start_soon(ask, Add(4))  # waits for room
            await anyio.wait_all_tasks_blocked()
            assert 4 not in results
            slow.release.set()
        assert sorted(map(str, results)) == ["4", "busy"]
        assert slow.log == ["start busy", "end busy", "quick 1", "quick 2", "quick 4"]


async def test_invalid_mailbox_capacity() -> None:
    async with ActorSystem() as system:
        with pytest.raises(ValueError, match="mailbox_capacity"):
            system.spawn(Greeter(), mailbox_capacity=0)


class Plain:
    def __init__(self, x: int) -> None:
        self.x = x


class PlainActor(Actor):
    @handler
    def plain(self, msg: Plain, ctx: Context[Self]) -> int:
        return msg.x + 1


async def test_protobuf_like_non_message_types_can_be_handled() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(PlainActor())
        assert await addr.send(Plain(1)) == 2


def test_unannotated_handler_is_a_clear_error() -> None:
    class Bad(Actor):
        @handler
        def oops(self, msg, ctx):  # type: ignore[no-untyped-def, cinema-handler]  # the point of the test
            return None

    async def main() -> None:
        async with ActorSystem() as system:
            with pytest.raises(HandlerDefinitionError, match=r"Bad\.oops"):
                system.spawn(Bad())

    anyio.run(main)


def test_unresolvable_annotation_names_the_handler() -> None:
    class Bad(Actor):
        @handler
        def oops(self, msg: NoSuchType, ctx: Context[Self]) -> None:  # type: ignore[name-defined]  # noqa: F821
            return None

    async def main() -> None:
        async with ActorSystem() as system:
            with pytest.raises(HandlerDefinitionError, match=r"Bad\.oops"):
                system.spawn(Bad())

    anyio.run(main)


async def test_spawn_requires_a_running_system() -> None:
    system = ActorSystem()
    with pytest.raises(CinemaError, match="not running"):
        system.spawn(Greeter())
    async with system:
        pass
    with pytest.raises(CinemaError):
        system.spawn(Greeter())


async def test_many_actors_many_messages() -> None:
    async with ActorSystem() as system:
        counters = [Counter() for _ in range(200)]
        addrs = [system.spawn(c) for c in counters]
        for round_ in range(50):
            for addr in addrs:
                addr.do_send(Add(round_))
        for addr in addrs:
            assert await addr.send(Add(0)) == sum(range(50))


async def test_send_timeout_covers_waiting_for_room_in_a_bounded_mailbox() -> None:
    async with ActorSystem() as system:
        slow = Slow()
        addr = system.spawn(slow, mailbox_capacity=1)
        addr.do_send(Greet("busy"))
        await slow.entered.wait()
        addr.do_send(Add(1))
        with anyio.fail_after(5), pytest.raises(TimeoutError):
            await addr.send(Add(2), timeout=0.05)
        slow.release.set()
        assert await addr.send(Add(3)) == 3
        assert slow.log == ["start busy", "end busy", "quick 1", "quick 3"]


class AsyncCounter(Actor):
    def __init__(self) -> None:
        self.seen: list[int] = []

    @handler
    async def add(self, msg: Add, ctx: Context[Self]) -> int:
        self.seen.append(msg.n)
        return len(self.seen)

    @handler
    def greet(self, msg: Greet, ctx: Context[Self]) -> str:
        self.seen.append(-1)
        return msg.name


async def test_runs_of_async_handlers_keep_order_and_replies() -> None:
    async with ActorSystem() as system:
        counter = AsyncCounter()
        addr = system.spawn(counter)
        for i in range(100):
            addr.do_send(Add(i))
        addr.do_send(Greet("sync in between"))
        for i in range(100, 200):
            addr.do_send(Add(i))
        assert await addr.send(Add(200)) == 202
        assert counter.seen == [*range(100), -1, *range(100, 201)]


class Narcissus(Actor):
    @handler
    async def ask_self(self, msg: Greet, ctx: Context[Self]) -> str:
        return str(await ctx.address().send(Add(1)))

    @handler
    def add(self, msg: Add, ctx: Context[Self]) -> int:
        return msg.n


async def test_awaiting_a_reply_from_itself_is_an_error_not_a_hang() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Narcissus())
        with anyio.fail_after(5), pytest.raises(ActorFailed) as info:
            await addr.send(Greet("me"))
        assert isinstance(info.value.__cause__, CinemaError)
        assert "itself" in str(info.value.__cause__)
