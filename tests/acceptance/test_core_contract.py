"""Acceptance: API.md "Core" and its fine print (messages, handlers, Addr, errors, stopping,
dead letters, bounded mailboxes), tested through the public API only."""

from __future__ import annotations

import copy
import gc
import logging
from collections.abc import AsyncIterable
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Self, cast

import anyio
import anyio.lowlevel
import pytest

import cinema
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
    NameTaken,
    StreamHandler,
    Terminated,
    UnhandledMessage,
    handler,
)
from cinema.testing import wait_stopped
from tests.acceptance.support import (
    Gate,
    GetLog,
    Hold,
    Note,
    Outcome,
    WatchingGate,
    alive,
    hold,
)


@dataclass
class Greet(Message[str]):
    name: str


class Greeter(Actor):
    @handler
    def greet(self, msg: Greet, ctx: Context[Self]) -> str:
        return f"Hello, {msg.name}!"


@dataclass
class Unknown(Message[None]):
    pass


# --- messages, send and do_send ------------------------------------------------------------


@pytest.mark.anyio
async def test_send_returns_the_handlers_reply() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Greeter())
        assert await addr.send(Greet("Cinema")) == "Hello, Cinema!"


@pytest.mark.anyio
async def test_do_send_returns_none_and_messages_are_handled_in_order() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Gate())
        for i in range(50):
            addr.do_send(Note(str(i)))
        assert await addr.send(GetLog()) == [str(i) for i in range(50)]


@pytest.mark.anyio
async def test_do_send_never_blocks_even_while_the_actor_is_busy() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Gate())
        held = await hold(addr)
        for i in range(1000):  # would deadlock if do_send waited for the busy actor
            addr.do_send(Note(str(i)))
        held.release.set()
        log = await addr.send(GetLog())
        assert log == ["hold-start", "hold-end", *[str(i) for i in range(1000)]]


@dataclass
class Double(Message[int]):
    n: int


class Doubler(Actor):
    @handler
    async def double(self, msg: Double, ctx: Context[Self]) -> int:
        await anyio.lowlevel.checkpoint()
        return msg.n * 2


@pytest.mark.anyio
async def test_async_def_handler_reply() -> None:
    async with ActorSystem() as system:
        assert await system.spawn(Doubler()).send(Double(21)) == 42


@pytest.mark.anyio
async def test_send_with_timeout_returns_the_reply_when_in_time() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Greeter())
        assert await addr.send(Greet("t"), timeout=10.0) == "Hello, t!"


# --- dispatch ------------------------------------------------------------------------------


class Shape(Message[str]):
    pass


@dataclass
class Circle(Shape):
    r: int


@dataclass
class Square(Shape):
    side: int


@dataclass
class BigSquare(Square):
    pass


class ShapeActor(Actor):
    @handler
    def any_shape(self, msg: Shape, ctx: Context[Self]) -> str:
        return f"shape:{type(msg).__name__}"

    @handler
    def square(self, msg: Square, ctx: Context[Self]) -> str:
        return f"square:{type(msg).__name__}"


@pytest.mark.anyio
async def test_dispatch_base_class_handler_serves_subclasses_and_most_specific_wins() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(ShapeActor())
        assert await addr.send(Circle(1)) == "shape:Circle"
        assert await addr.send(Square(1)) == "square:Square"
        # BigSquare has no handler of its own: Square's is more specific than Shape's.
        assert await addr.send(BigSquare(1)) == "square:BigSquare"
        assert await addr.send(Shape()) == "shape:Shape"


@pytest.mark.anyio
async def test_dispatch_serves_a_subclass_defined_after_the_spawn() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(ShapeActor())
        assert await addr.send(Circle(1)) == "shape:Circle"

        class Triangle(Shape):
            pass

        class RoundedSquare(Square):
            pass

        assert await addr.send(Triangle()) == "shape:Triangle"
        assert await addr.send(RoundedSquare(2)) == "square:RoundedSquare"
        addr.do_send(Triangle())  # no UnhandledMessage for it either


@dataclass
class PlainEvent:  # not a cinema Message (like a protobuf class)
    value: int


class PlainActor(Actor):
    def __init__(self) -> None:
        self.seen: list[int] = []

    @handler
    def plain(self, msg: PlainEvent, ctx: Context[Self]) -> int:
        self.seen.append(msg.value)
        return msg.value + 1


@pytest.mark.anyio
async def test_handler_may_take_a_class_that_is_not_a_message() -> None:
    async with ActorSystem() as system:
        actor = PlainActor()
        addr = system.spawn(actor)
        addr.do_send(PlainEvent(1))
        reply: object = await addr.send(PlainEvent(2))
        assert reply == 3
        assert actor.seen == [1, 2]


@dataclass
class Click(Message[str]):
    x: int


@dataclass
class Key(Message[str]):
    key: str


class UnionActor(Actor):
    @handler
    def ui(self, msg: Click | Key, ctx: Context[Self]) -> str:
        return type(msg).__name__


@pytest.mark.anyio
async def test_union_annotation_handles_each_member() -> None:  # README core
    async with ActorSystem() as system:
        addr = system.spawn(UnionActor())
        assert await addr.send(Click(1)) == "Click"
        assert await addr.send(Key("k")) == "Key"


# --- lifecycle hooks -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_started_completes_before_the_first_message() -> None:
    gate = anyio.Event()

    class SlowStart(Actor):
        def __init__(self) -> None:
            self.log: list[str] = []

        async def started(self, ctx: Context[Self]) -> None:
            self.log.append("started-begin")
            await gate.wait()
            self.log.append("started-end")

        @handler
        def note(self, msg: Note, ctx: Context[Self]) -> str:
            self.log.append(msg.text)
            return msg.text

    async with ActorSystem() as system:
        actor = SlowStart()
        addr = system.spawn(actor)  # returns at once, even though started() blocks
        addr.do_send(Note("first"))
        await anyio.wait_all_tasks_blocked()
        assert actor.log == ["started-begin"]
        gate.set()
        assert await addr.send(Note("second")) == "second"
        assert actor.log == ["started-begin", "started-end", "first", "second"]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_started_and_stopped_hooks_run_sync_or_async(kind: str) -> None:
    log: list[str] = []

    class SyncHooks(Actor):
        def started(self, ctx: Context[Self]) -> None:
            log.append("started")

        def stopped(self, ctx: Context[Self]) -> None:
            log.append("stopped")

    class AsyncHooks(Actor):
        async def started(self, ctx: Context[Self]) -> None:
            await anyio.lowlevel.checkpoint()
            log.append("started")

        async def stopped(self, ctx: Context[Self]) -> None:
            await anyio.lowlevel.checkpoint()
            log.append("stopped")

    async with ActorSystem() as system:
        addr = system.spawn(SyncHooks() if kind == "sync" else AsyncHooks())
        await anyio.wait_all_tasks_blocked()  # let it start: see the test below for stop-first
        assert log == ["started"]
        addr.stop()
        await wait_stopped(system, addr)
        assert log == ["started", "stopped"]


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["addr.stop", "leaving the block"])
async def test_stopped_never_runs_without_started(how: str) -> None:
    # Hooks come in pairs: "started/stopped run before the first message and after the last
    # one". A `stopped` that releases what `started` acquired must not run on its own.
    log: list[str] = []

    class Paired(Actor):
        def started(self, ctx: Context[Self]) -> None:
            log.append("started")

        def stopped(self, ctx: Context[Self]) -> None:
            log.append("stopped")

    async with ActorSystem() as system:
        addr = system.spawn(Paired())
        if how == "addr.stop":
            addr.stop()  # before the actor had a chance to run started()
    assert log in ([], ["started", "stopped"])


@pytest.mark.anyio
async def test_hooks_are_optional() -> None:
    async with ActorSystem() as system:  # Greeter defines neither hook
        assert await system.spawn(Greeter()).send(Greet("x")) == "Hello, x!"


# --- Context -------------------------------------------------------------------------------


@dataclass
class WhoAmI(Message[tuple[Addr[Actor], ActorSystem]]):
    pass


class SelfAware(Actor):
    @handler
    def who(self, msg: WhoAmI, ctx: Context[Self]) -> tuple[Addr[Actor], ActorSystem]:
        return ctx.address(), ctx.system


@pytest.mark.anyio
async def test_context_address_and_system() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(SelfAware())
        own, sys_ = await addr.send(WhoAmI())
        assert own == addr
        assert hash(own) == hash(addr)
        assert sys_ is system


# --- Addr ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_addr_is_hashable_and_equal_for_the_same_actor() -> None:
    async with ActorSystem() as system:
        a = system.spawn(Greeter())
        b = system.spawn(Greeter())
        assert a == a
        assert a != b
        assert len({a, b, a}) == 2
        table = {a: "a", b: "b"}
        assert table[a] == "a"
        assert await copy.copy(a).send(Greet("c")) == "Hello, c!"


@pytest.mark.anyio
async def test_a_copied_addr_is_equal_to_the_original() -> None:
    # "Addr equality means same actor" and "cheap to copy": a copy names the same actor.
    async with ActorSystem() as system:
        a = system.spawn(Greeter())
        c = copy.copy(a)
        assert c == a
        assert hash(c) == hash(a)
        assert {a: "a"}[c] == "a"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.anyio
async def test_deepcopy_of_an_addr_or_of_a_message_holding_one_names_the_same_actor() -> None:
    # An Addr is an immutable handle ("cheap to copy", equality = "same actor"): deep-copying
    # state or a message that holds one must keep pointing at the same live actor.
    async with ActorSystem() as system:
        a = system.spawn(Greeter())
        problem = await _deepcopy_problem(a)
        assert problem is None, problem


async def _deepcopy_problem(a: Addr[Greeter]) -> str | None:
    """What goes wrong with deep copies of ``a`` (None: nothing)."""
    problem: str | None = None
    try:
        b = copy.deepcopy(a)
        if b != a:
            problem = "deepcopy(addr) != addr"
        elif copy.deepcopy(Terminated(a)).addr != a:
            problem = "deepcopy(Terminated(addr)).addr != addr"
        elif await b.send(Greet("d")) != "Hello, d!":
            problem = "the deep copy does not reach the actor"
        del b
    except Exception as exc:
        problem = f"deepcopy(addr) raised {exc!r}"
    # A broken deep copy drags runtime internals along (nurseries, tasks); collect them now, in
    # this test (which ignores their finalizers' complaints), not in a later one.
    gc.collect()
    return problem


@pytest.mark.anyio
async def test_addr_has_no_ordering() -> None:
    async with ActorSystem() as system:
        a: Any = system.spawn(Greeter())
        b: Any = system.spawn(Greeter())
        with pytest.raises(TypeError):
            _ = a < b
        with pytest.raises(TypeError):
            _ = a <= b
        with pytest.raises(TypeError):
            _ = a > b
        with pytest.raises(TypeError):
            _ = a >= b
        with pytest.raises(TypeError):
            sorted([a, b])


@pytest.mark.anyio
async def test_is_alive_follows_the_actor() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Greeter())
        assert alive(addr)
        addr.stop()
        assert not alive(addr)
        await wait_stopped(system, addr)
        assert not alive(addr)


# --- errors --------------------------------------------------------------------------------


def test_every_error_derives_from_cinema_error() -> None:
    for error in (
        ActorFailed,
        ActorStopped,
        HandlerDefinitionError,
        MailboxFull,
        NameTaken,
        UnhandledMessage,
        cinema.PluginLoadError,
        cinema.PluginNotFound,
    ):
        assert issubclass(error, CinemaError), error
    assert issubclass(CinemaError, Exception)
    assert issubclass(UnhandledMessage, TypeError)
    assert issubclass(HandlerDefinitionError, TypeError)  # README core: also a TypeError
    for name in cinema.__all__:  # and nothing public that looks like an error escapes the rule
        obj = getattr(cinema, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, CinemaError), name


def test_terminated_is_a_dataclass_with_an_addr_field() -> None:
    assert is_dataclass(Terminated)
    assert [f.name for f in fields(Terminated)] == ["addr"]


@pytest.mark.anyio
async def test_unhandled_message_raised_by_do_send_at_the_call() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Greeter())
        with pytest.raises(UnhandledMessage) as info:
            addr.do_send(Unknown())  # type: ignore[cinema-unhandled]  # refused on purpose
        assert isinstance(info.value, TypeError)
        assert isinstance(info.value, CinemaError)
        assert addr.is_alive  # refusing the message is not a failure of the actor
        assert system.dead_letters == 0
        assert await addr.send(Greet("still")) == "Hello, still!"


@pytest.mark.anyio
async def test_unhandled_message_raised_by_send() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Greeter())
        with pytest.raises(UnhandledMessage):
            await addr.send(Unknown())  # type: ignore[cinema-unhandled]  # refused on purpose
        with pytest.raises(UnhandledMessage):
            await addr.send(PlainEvent(1))  # type: ignore[cinema-unhandled]  # refused on purpose
        assert addr.is_alive
        assert await addr.send(Greet("still")) == "Hello, still!"


@pytest.mark.anyio
async def test_unhandled_send_is_refused_before_enqueueing_even_when_the_mailbox_is_full() -> None:
    # "raised by send before anything is enqueued": a full bounded mailbox must not make an
    # unhandled send wait for room first.
    async with ActorSystem() as system:
        addr = system.spawn(Gate(), mailbox_capacity=1)
        held = await hold(addr)
        addr.do_send(Note("queued"))
        with anyio.fail_after(5):
            with pytest.raises(UnhandledMessage):
                await addr.send(Unknown())  # type: ignore[cinema-unhandled]  # refused on purpose
        held.release.set()
        assert await addr.send(GetLog()) == ["hold-start", "hold-end", "queued"]


@dataclass
class Crash(Message[None]):
    pass


class Crasher(Actor):
    def __init__(self) -> None:
        self.stopped_ran = anyio.Event()

    @handler
    def crash(self, msg: Crash, ctx: Context[Self]) -> None:
        raise ValueError("boom")

    @handler
    def greet(self, msg: Greet, ctx: Context[Self]) -> str:
        return msg.name

    def stopped(self, ctx: Context[Self]) -> None:
        self.stopped_ran.set()


@pytest.mark.anyio
async def test_actor_failed_carries_the_original_exception_and_default_strategy_stops() -> None:
    async with ActorSystem() as system:
        actor = Crasher()
        addr = system.spawn(actor)
        with pytest.raises(ActorFailed) as info:
            await addr.send(Crash())
        assert isinstance(info.value.__cause__, ValueError)
        assert str(info.value.__cause__) == "boom"
        await wait_stopped(system, addr)
        await actor.stopped_ran.wait()
        assert not addr.is_alive
        with pytest.raises(ActorStopped):
            await addr.send(Greet("x"))


@pytest.mark.anyio
async def test_a_send_right_after_a_failure_that_stops_the_actor_does_not_hang() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Crasher())
        with pytest.raises(ActorFailed):
            await addr.send(Crash())
        with anyio.fail_after(10), pytest.raises(ActorStopped):
            await addr.send(Greet("x"))


@pytest.mark.anyio
async def test_a_failure_never_crashes_the_system_or_other_actors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="cinema")
    async with ActorSystem() as system:
        bystander = system.spawn(Greeter())
        crasher = system.spawn(Crasher())
        crasher.do_send(Crash())  # nobody awaits this failure
        await wait_stopped(system, crasher)
        assert bystander.is_alive
        assert await bystander.send(Greet("ok")) == "Hello, ok!"
        assert system.spawn(Greeter()).is_alive
    # README core: failures are logged at ERROR on the cinema logger, with the traceback.
    failures = [
        r
        for r in caplog.records
        if r.name.startswith("cinema") and r.levelno == logging.ERROR and r.exc_info
    ]
    assert failures
    exc_info = failures[0].exc_info
    assert exc_info is not None
    assert isinstance(exc_info[1], ValueError)


# --- stopping ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_addr_stop_lets_the_running_handler_finish_and_refuses_the_rest() -> None:
    async with ActorSystem() as system, anyio.create_task_group() as tg:
        actor = Gate()
        addr = system.spawn(actor)
        held = Hold()
        running, queued = Outcome(), Outcome()
        tg.start_soon(running.run, lambda: addr.send(held))
        await held.entered.wait()
        tg.start_soon(queued.run, lambda: addr.send(Note("queued-send")))
        addr.do_send(Note("queued-do-send"))
        await anyio.wait_all_tasks_blocked()

        addr.stop()
        # From the moment stop() is called:
        assert not addr.is_alive
        with pytest.raises(ActorStopped):
            await addr.send(Note("after-stop"))
        before = system.dead_letters
        addr.do_send(Note("after-stop-do-send"))
        assert system.dead_letters == before + 1

        held.release.set()
        await running.done.wait()
        await queued.done.wait()
        assert running.value == "held"  # the running handler finished and replied
        assert isinstance(queued.error, ActorStopped)  # queued: not handled
        await actor.stopped_event.wait()
        assert actor.log == ["hold-start", "hold-end", "stopped"]


@dataclass
class StopSelf(Message[str]):
    pass


class SelfStopper(Gate):
    @handler
    def stop_self(self, msg: StopSelf, ctx: Context[Self]) -> str:
        ctx.stop()
        self.log.append("stop-self")
        return "stopping"


@pytest.mark.anyio
async def test_ctx_stop_stops_after_the_current_message() -> None:
    async with ActorSystem() as system, anyio.create_task_group() as tg:
        actor = SelfStopper()
        addr = system.spawn(actor)
        held = await hold(addr)
        stopper, later = Outcome(), Outcome()
        tg.start_soon(stopper.run, lambda: addr.send(StopSelf()))
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(later.run, lambda: addr.send(Note("later")))
        await anyio.wait_all_tasks_blocked()
        held.release.set()
        await stopper.done.wait()
        await later.done.wait()
        assert stopper.value == "stopping"
        assert isinstance(later.error, ActorStopped)
        await actor.stopped_event.wait()
        assert not addr.is_alive
        assert actor.log == ["hold-start", "hold-end", "stop-self", "stopped"]


@pytest.mark.anyio
async def test_sends_pending_when_the_actor_dies_get_actor_stopped() -> None:
    async with ActorSystem() as system, anyio.create_task_group() as tg:
        actor = Gate()
        addr = system.spawn(actor)  # default strategy: a failure stops it
        held = Hold(fail=True)
        failing, pending = Outcome(), Outcome()
        tg.start_soon(failing.run, lambda: addr.send(held))
        await held.entered.wait()
        tg.start_soon(pending.run, lambda: addr.send(Note("pending")))
        await anyio.wait_all_tasks_blocked()
        held.release.set()
        with anyio.fail_after(10):  # "send never hangs because the target died"
            await failing.done.wait()
            await pending.done.wait()
        assert isinstance(failing.error, ActorFailed)
        assert isinstance(pending.error, ActorStopped)
        assert "pending" not in actor.log


@pytest.mark.anyio
async def test_send_to_a_stopped_actor_raises_actor_stopped() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Greeter())
        addr.stop()
        await wait_stopped(system, addr)
        with anyio.fail_after(5), pytest.raises(ActorStopped):
            await addr.send(Greet("x"))
        with pytest.raises(ActorStopped):
            await addr.send(Greet("x"), timeout=5.0)


# --- dead letters --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_dead_letters_are_counted_and_logged_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="cinema")
    async with ActorSystem() as system:
        assert system.dead_letters == 0
        addr = system.spawn(Greeter())
        addr.stop()
        await wait_stopped(system, addr)
        assert system.dead_letters == 0
        caplog.clear()
        addr.do_send(Greet("one"))
        assert system.dead_letters == 1
        assert any(
            r.levelno == logging.DEBUG and r.name.startswith("cinema") for r in caplog.records
        )
        for _ in range(5):
            addr.do_send(Greet("more"))
        assert system.dead_letters == 6


# --- send timeout --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_send_timeout_raises_timeout_error_and_the_message_is_still_handled() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Gate())
        held = await hold(addr)
        with pytest.raises(TimeoutError):
            await addr.send(Note("late"), timeout=0.05)
        held.release.set()
        assert await addr.send(Note("after")) == "after"
        assert await addr.send(GetLog()) == ["hold-start", "hold-end", "late", "after"]
        assert addr.is_alive


@pytest.mark.anyio
async def test_send_timeout_also_covers_waiting_for_room_in_a_bounded_mailbox() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Gate(), mailbox_capacity=1)
        held = await hold(addr)
        addr.do_send(Note("fills"))
        with anyio.fail_after(10), pytest.raises(TimeoutError):
            await addr.send(Note("no-room"), timeout=0.05)
        held.release.set()
        log = await addr.send(GetLog())
        assert log[:3] == ["hold-start", "hold-end", "fills"]


# --- bounded mailbox -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_bounded_mailbox_do_send_raises_mailbox_full_and_send_waits_for_room() -> None:
    async with ActorSystem() as system, anyio.create_task_group() as tg:
        addr = system.spawn(Gate(), mailbox_capacity=2)
        held = await hold(addr)  # the message being handled does not count
        addr.do_send(Note("a"))
        addr.do_send(Note("b"))
        with pytest.raises(MailboxFull) as info:
            addr.do_send(Note("c"))
        assert isinstance(info.value, CinemaError)
        waiting = Outcome()
        tg.start_soon(waiting.run, lambda: addr.send(Note("d")))
        await anyio.wait_all_tasks_blocked()
        assert not waiting.done.is_set()  # waits for room instead of failing
        held.release.set()
        await waiting.done.wait()
        assert waiting.error is None
        assert waiting.value == "d"
        assert await addr.send(GetLog()) == ["hold-start", "hold-end", "a", "b", "d"]


@pytest.mark.anyio
async def test_unbounded_by_default() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Gate())
        held = await hold(addr)
        for i in range(10_000):
            addr.do_send(Note(str(i)))
        held.release.set()
        assert len(await addr.send(GetLog())) == 10_002


@pytest.mark.anyio
async def test_bounded_mailbox_does_not_refuse_terminated() -> None:
    async with ActorSystem() as system:
        target = system.spawn(Greeter())
        watcher = WatchingGate(target)
        addr = system.spawn(watcher, mailbox_capacity=1)
        held = await hold(addr)
        addr.do_send(Note("fills"))
        with pytest.raises(MailboxFull):
            addr.do_send(Note("refused"))
        target.stop()
        held.release.set()
        with anyio.fail_after(10):
            await watcher.got_terminated.wait()
        assert watcher.terminated[0].addr == target
        assert "refused" not in await addr.send(GetLog())


@dataclass
class Tick(Message[None]):
    pass


class TickingGate(Gate):
    def __init__(self) -> None:
        super().__init__()
        self.ticked = anyio.Event()

    @handler
    def tick(self, msg: Tick, ctx: Context[Self]) -> None:
        self.log.append("tick")
        self.ticked.set()

    @handler
    def arm(self, msg: Greet, ctx: Context[Self]) -> str:
        ctx.run_later(0.01, Tick())
        return "armed"


@pytest.mark.anyio
async def test_bounded_mailbox_does_not_refuse_timer_ticks() -> None:
    async with ActorSystem() as system:
        actor = TickingGate()
        addr = system.spawn(actor, mailbox_capacity=1)
        assert await addr.send(Greet("arm")) == "armed"
        held = await hold(addr)
        addr.do_send(Note("fills"))
        # No event exists for "the timer fired into a full mailbox": give it ample time.
        await anyio.sleep(0.1)
        with pytest.raises(MailboxFull):
            addr.do_send(Note("refused"))
        held.release.set()
        with anyio.fail_after(10):
            await actor.ticked.wait()
        log = await addr.send(GetLog())
        assert "tick" in log
        assert "refused" not in log


@pytest.mark.anyio
async def test_a_queued_terminated_does_not_count_against_the_capacity() -> None:
    async with ActorSystem() as system:
        target = system.spawn(Greeter())
        watcher = WatchingGate(target)
        addr = system.spawn(watcher, mailbox_capacity=1)
        held = await hold(addr)
        target.stop()
        await wait_stopped(system, target)  # by now the Terminated is queued for `watcher` too
        addr.do_send(Note("fits"))  # the capacity counts queued user messages only
        held.release.set()
        await watcher.got_terminated.wait()
        log = await addr.send(GetLog())
        assert "fits" in log
        assert "terminated" in log


@pytest.mark.anyio
async def test_a_queued_timer_tick_does_not_count_against_the_capacity() -> None:
    async with ActorSystem() as system:
        actor = TickingGate()
        addr = system.spawn(actor, mailbox_capacity=1)
        assert await addr.send(Greet("arm")) == "armed"
        held = await hold(addr)
        await anyio.sleep(0.1)  # no event: the tick gets queued behind the busy handler
        addr.do_send(Note("fits"))
        held.release.set()
        await actor.ticked.wait()
        log = await addr.send(GetLog())
        assert "fits" in log
        assert "tick" in log


class StreamingGate(Gate, StreamHandler[int]):
    def __init__(self, numbers: AsyncIterable[int]) -> None:
        super().__init__()
        self.numbers = numbers
        self.items: list[int] = []
        self.all_items = anyio.Event()

    def started(self, ctx: Context[Self]) -> None:
        ctx.add_stream(self.numbers)

    def handle(self, item: int, ctx: Context[Self]) -> None:
        self.items.append(item)
        if len(self.items) == 3:
            self.all_items.set()


@pytest.mark.anyio
async def test_bounded_mailbox_does_not_refuse_stream_items() -> None:
    send, receive = anyio.create_memory_object_stream[int](10)
    async with ActorSystem() as system, send, receive:
        actor = StreamingGate(receive)
        addr = system.spawn(actor, mailbox_capacity=1)
        held = await hold(addr)
        addr.do_send(Note("fills"))
        with pytest.raises(MailboxFull):
            addr.do_send(Note("refused"))
        for n in (1, 2, 3):  # arrive while the mailbox is full
            send.send_nowait(n)
        await anyio.wait_all_tasks_blocked()
        held.release.set()
        with anyio.fail_after(10):
            await actor.all_items.wait()
        assert actor.items == [1, 2, 3]
        assert addr.is_alive
        assert "fills" in await addr.send(GetLog())


# --- one message at a time -----------------------------------------------------------------


@dataclass
class Busy(Message[int]):
    steps: int


class OverlapDetector(Actor):
    def __init__(self) -> None:
        self.active = 0
        self.max_active = 0
        self.handled = 0

    def _enter(self) -> None:
        self.active += 1
        self.max_active = max(self.max_active, self.active)

    @handler
    async def busy(self, msg: Busy, ctx: Context[Self]) -> int:
        self._enter()
        for _ in range(msg.steps):
            await anyio.lowlevel.checkpoint()
        self.active -= 1
        self.handled += 1
        return self.handled

    @handler
    def quick(self, msg: Note, ctx: Context[Self]) -> str:
        self._enter()
        self.active -= 1
        self.handled += 1
        return msg.text


@pytest.mark.anyio
async def test_handlers_never_overlap_on_one_actor_under_concurrent_senders() -> None:
    async with ActorSystem() as system:
        actor = OverlapDetector()
        addr = system.spawn(actor)

        async def sender(i: int) -> None:
            for _ in range(5):
                if i % 2:
                    await addr.send(Busy(3))
                else:
                    addr.do_send(Note("q"))
                    await addr.send(Busy(1))

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(sender, i)
        assert actor.max_active == 1
        assert actor.handled == 20 * 5 + 10 * 5


@pytest.mark.anyio
async def test_an_async_handler_holds_the_mailbox_until_it_returns() -> None:
    async with ActorSystem() as system:
        actor = Gate()
        addr = system.spawn(actor)
        held = await hold(addr)
        addr.do_send(Note("sync-after"))
        addr.do_send(Hold(release=held.release))  # another async one, already releasable
        await anyio.wait_all_tasks_blocked()
        assert actor.log == ["hold-start"]  # nothing ran while the first handler awaited
        held.release.set()
        assert await addr.send(GetLog()) == [
            "hold-start",
            "hold-end",
            "sync-after",
            "hold-start",
            "hold-end",
        ]


@pytest.mark.anyio
async def test_spawn_outside_the_system_block_raises_cinema_error() -> None:  # README core
    system = ActorSystem()
    async with system:
        pass
    with pytest.raises(CinemaError):
        system.spawn(Greeter())


def test_public_names_are_importable_from_cinema() -> None:
    for name in (
        "Actor",
        "ActorFailed",
        "ActorStopped",
        "ActorSystem",
        "Addr",
        "CinemaError",
        "Context",
        "MailboxFull",
        "Message",
        "NameTaken",
        "StreamHandler",
        "SupervisorStrategy",
        "Terminated",
        "UnhandledMessage",
        "handler",
    ):
        assert name in cinema.__all__, name
        assert getattr(cinema, name) is not None
    assert cast(Any, cinema.Actor).__module__ == "cinema"


# --- more stopping edges -------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_send_waiting_for_room_gets_actor_stopped_when_the_actor_stops() -> None:
    async with ActorSystem() as system, anyio.create_task_group() as tg:
        addr = system.spawn(Gate(), mailbox_capacity=1)
        held = await hold(addr)
        addr.do_send(Note("fills"))
        waiting = Outcome()
        tg.start_soon(waiting.run, lambda: addr.send(Note("no-room")))
        await anyio.wait_all_tasks_blocked()
        addr.stop()
        held.release.set()
        with anyio.fail_after(10):  # "send never hangs because the target died"
            await waiting.done.wait()
        assert isinstance(waiting.error, ActorStopped)


@pytest.mark.anyio
async def test_stop_is_idempotent() -> None:
    async with ActorSystem() as system:
        actor = SelfStopper()
        addr = system.spawn(actor)
        assert await addr.send(StopSelf()) == "stopping"
        addr.stop()
        addr.stop()
        await wait_stopped(system, addr)
        addr.stop()
        assert actor.log.count("stopped") == 1


class StopsInStarted(Gate):
    def started(self, ctx: Context[Self]) -> None:
        self.log.append("started")
        ctx.stop()


@pytest.mark.anyio
async def test_ctx_stop_in_started_handles_no_message() -> None:
    async with ActorSystem() as system:
        actor = StopsInStarted()
        addr = system.spawn(actor)
        addr.do_send(Note("queued"))
        with anyio.fail_after(10), pytest.raises(ActorStopped):
            await addr.send(Note("sent"))
        await wait_stopped(system, addr)
        assert actor.log == ["started", "stopped"]


class FailsInStopped(Gate):
    def stopped(self, ctx: Context[Self]) -> None:
        super().stopped(ctx)
        raise RuntimeError("stopped failed on purpose")


@pytest.mark.anyio
async def test_a_failing_stopped_hook_is_contained(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="cinema")
    others: list[Gate] = []
    with anyio.fail_after(10):
        async with ActorSystem() as system:
            failing = system.spawn(FailsInStopped())
            failing.stop()
            await wait_stopped(system, failing)
            assert await system.spawn(Greeter()).send(Greet("ok")) == "Hello, ok!"
            system.spawn(FailsInStopped())
            others.extend(Gate() for _ in range(3))
            for other in others:
                system.spawn(other)
        # leaving the block is not disturbed by a failing hook, and every other hook ran
    for other in others:
        assert other.log == ["stopped"]
    assert any(r.levelno >= logging.ERROR for r in caplog.records)


@pytest.mark.anyio
async def test_queued_do_send_messages_dropped_by_stop_are_not_lost_silently() -> None:
    # Reading of "nothing lost silently" + "queued messages are not handled": the dropped
    # fire-and-forget messages are counted as dead letters.
    async with ActorSystem() as system:
        actor = Gate()
        addr = system.spawn(actor)
        held = await hold(addr)
        addr.do_send(Note("q1"))
        addr.do_send(Note("q2"))
        addr.stop()
        held.release.set()
        await actor.stopped_event.wait()
        assert system.dead_letters == 2


# --- callers that give up, and fairness ----------------------------------------------------


@pytest.mark.anyio
async def test_a_cancelled_sender_does_not_fail_the_actor() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Gate())
        msg = Hold()
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(addr.send, msg)
                await msg.entered.wait()
                scope.cancel()
        msg.release.set()  # the handler now replies to a sender that is gone
        assert await addr.send(Note("after")) == "after"
        assert alive(addr)
        assert await addr.send(GetLog()) == ["hold-start", "hold-end", "after"]


@dataclass
class Ping(Message[None]):
    pass


@dataclass
class Count(Message[int]):
    pass


class SelfLooper(Actor):
    """Sends itself ``Ping`` until it has handled ``limit`` of them (sync handlers only)."""

    def __init__(self, limit: int) -> None:
        self.count, self.limit = 0, limit
        self.done = anyio.Event()

    @handler
    def ping(self, msg: Ping, ctx: Context[Self]) -> None:
        self.count += 1
        if self.count < self.limit:
            ctx.address().do_send(Ping())
        else:
            self.done.set()

    @handler
    def how_many(self, msg: Count, ctx: Context[Self]) -> int:
        return self.count


@pytest.mark.anyio
async def test_an_actor_flooding_itself_with_sync_messages_does_not_starve_others() -> None:
    # "never crashes the system or other actors": a busy actor must let the others run.
    async with ActorSystem() as system:
        looper = SelfLooper(100_000)
        system.spawn(looper).do_send(Ping())
        other = system.spawn(SelfLooper(0))
        assert await other.send(Count()) == 0
        assert looper.count < looper.limit  # answered while the looper was still going
        await looper.done.wait()


@pytest.mark.anyio
async def test_two_systems_count_their_own_dead_letters() -> None:
    async with ActorSystem() as first, ActorSystem() as second:
        addr = first.spawn(Greeter())
        addr.stop()
        await wait_stopped(first, addr)
        addr.do_send(Greet("lost"))
        assert first.dead_letters == 1
        assert second.dead_letters == 0
