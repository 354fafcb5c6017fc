"""Acceptance: API.md "Supervision" and the Restart/Escalate fine print."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
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
    MailboxFull,
    Message,
    SupervisorStrategy,
    Terminated,
    handler,
)
from cinema.testing import wait_stopped
from tests.acceptance.support import (
    EventLog,
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
class Fail(Message[None]):
    pass


@dataclass
class Number(Message[int]):
    """Which instance (1 for the first, 2 after one restart, ...) is answering."""


@dataclass
class MyAddr(Message[Addr[Actor]]):
    pass


@dataclass
class WatchIt(Message[None]):
    target: Addr[Actor]


class Worker(Gate):
    """A numbered instance that writes its lifecycle into a log shared by all instances."""

    def __init__(self, number: int, log: EventLog, fail_in_started: bool = False) -> None:
        super().__init__(log)
        self.number = number
        self.fail_in_started = fail_in_started

    def started(self, ctx: Context[Self]) -> None:
        self.log.append(f"started#{self.number}")
        if self.fail_in_started:
            raise RuntimeError("started failed on purpose")

    def stopped(self, ctx: Context[Self]) -> None:
        self.log.append(f"stopped#{self.number}")
        self.stopped_event.set()

    @handler
    def fail(self, msg: Fail, ctx: Context[Self]) -> None:
        self.log.append(f"fail#{self.number}")
        raise RuntimeError("failure on purpose")

    @handler
    def note(self, msg: Note, ctx: Context[Self]) -> str:
        self.log.append(f"{msg.text}#{self.number}")
        return msg.text

    @handler
    def which(self, msg: Number, ctx: Context[Self]) -> int:
        return self.number

    @handler
    def my_addr(self, msg: MyAddr, ctx: Context[Self]) -> Addr[Actor]:
        return ctx.address()

    @handler
    def watch_it(self, msg: WatchIt, ctx: Context[Self]) -> None:
        ctx.watch(msg.target)

    @handler
    def on_terminated(self, msg: Terminated, ctx: Context[Self]) -> None:
        self.log.append(f"terminated#{self.number}")


class Factory:
    """Zero-argument factory that counts its calls and numbers the instances it makes."""

    def __init__(
        self, log: EventLog | None = None, fail_in_started: set[int] | None = None
    ) -> None:
        self.calls = 0
        self.log = EventLog() if log is None else log
        self.fail_in_started = fail_in_started or set()

    def __call__(self) -> Worker:
        self.calls += 1
        return Worker(self.calls, self.log, self.calls in self.fail_in_started)


def restart(max_restarts: int = 5) -> SupervisorStrategy:
    return SupervisorStrategy.restart(max_restarts, within=60.0)


# --- restart -------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "strategy",
    [SupervisorStrategy.stop(), SupervisorStrategy.restart(3, within=10.0)],
    ids=["stop", "restart"],
)
async def test_spawn_with_strategy_calls_the_factory_once_at_spawn(
    strategy: SupervisorStrategy,
) -> None:
    async with ActorSystem() as system:
        factory = Factory()
        addr = system.spawn_with_strategy(factory, strategy)
        assert factory.calls == 1  # at spawn time, not later
        for _ in range(3):
            assert await addr.send(Number()) == 1
        assert factory.calls == 1


@pytest.mark.anyio
async def test_factory_called_once_more_per_restart() -> None:
    async with ActorSystem() as system:
        factory = Factory()
        addr = system.spawn_with_strategy(factory, restart())
        for expected in (2, 3):
            with pytest.raises(ActorFailed):
                await addr.send(Fail())
            assert await addr.send(Number()) == expected
            assert factory.calls == expected


@dataclass
class SpawnChild(Message[int]):
    """Spawn a child from a fresh Factory with the given strategy; reply with factory calls."""

    strategy: SupervisorStrategy


class ChildSpawner(Actor):
    def __init__(self) -> None:
        self.factory = Factory()
        self.child: Addr[Worker] | None = None

    @handler
    def spawn_child(self, msg: SpawnChild, ctx: Context[Self]) -> int:
        self.child = ctx.spawn_child_with_strategy(self.factory, msg.strategy)
        return self.factory.calls


@pytest.mark.anyio
async def test_spawn_child_with_strategy_calls_the_factory_once_at_spawn() -> None:
    async with ActorSystem() as system:
        parent = ChildSpawner()
        addr = system.spawn(parent)
        assert await addr.send(SpawnChild(restart())) == 1
        assert parent.child is not None
        assert await parent.child.send(Number()) == 1
        assert parent.factory.calls == 1
        with pytest.raises(ActorFailed):
            await parent.child.send(Fail())
        assert await parent.child.send(Number()) == 2
        assert parent.factory.calls == 2


@pytest.mark.anyio
async def test_restart_keeps_the_addr_and_registry_entries_and_runs_started_again() -> None:
    async with ActorSystem() as system:
        factory = Factory()
        addr = system.spawn_with_strategy(factory, restart())
        system.register("worker", addr)
        with pytest.raises(ActorFailed) as info:
            await addr.send(Fail())
        assert isinstance(info.value.__cause__, RuntimeError)
        assert addr.is_alive
        assert await addr.send(Number()) == 2  # the same Addr reaches the fresh instance
        assert await addr.send(MyAddr()) == addr
        assert system.lookup("worker", Worker) == addr
        assert system.lookup("worker") == addr
        assert factory.log == ["started#1", "fail#1", "stopped#1", "started#2"]


@pytest.mark.anyio
async def test_restart_drops_the_failed_message_and_keeps_the_rest_of_the_mailbox() -> None:
    async with ActorSystem() as system, anyio.create_task_group() as tg:
        factory = Factory()
        addr = system.spawn_with_strategy(factory, restart())
        held = await hold(addr)
        failing, pending = Outcome(), Outcome()
        addr.do_send(Note("a"))
        tg.start_soon(failing.run, lambda: addr.send(Fail()))
        await anyio.wait_all_tasks_blocked()
        addr.do_send(Note("b"))
        tg.start_soon(pending.run, lambda: addr.send(Note("c")))
        await anyio.wait_all_tasks_blocked()
        held.release.set()
        await failing.done.wait()
        await pending.done.wait()
        assert isinstance(failing.error, ActorFailed)
        assert pending.value == "c"  # a pending send survives the restart and gets its reply
        assert await addr.send(GetLog()) == [
            "started#1",
            "hold-start",
            "hold-end",
            "a#1",
            "fail#1",  # handled once: dropped, not retried
            "stopped#1",
            "started#2",
            "b#2",
            "c#2",
        ]


@pytest.mark.anyio
@pytest.mark.parametrize("within", [10.0, timedelta(seconds=10)], ids=["float", "timedelta"])
async def test_more_than_max_restarts_failures_within_the_window_stop_for_good(
    within: float | timedelta,
) -> None:
    async with ActorSystem() as system:
        factory = Factory()
        addr = system.spawn_with_strategy(factory, SupervisorStrategy.restart(2, within=within))
        system.register("w", addr)
        watcher = WatchingGate(addr)
        system.spawn(watcher)
        await anyio.wait_all_tasks_blocked()  # the watch is in place
        for expected in (2, 3):  # two failures: two restarts
            with pytest.raises(ActorFailed):
                await addr.send(Fail())
            assert await addr.send(Number()) == expected
        with pytest.raises(ActorFailed):  # the third is one too many
            await addr.send(Fail())
        await wait_stopped(system, addr)
        assert not addr.is_alive
        with pytest.raises(ActorStopped):
            await addr.send(Number())
        assert factory.calls == 3
        await watcher.got_terminated.wait()
        assert [t.addr for t in watcher.terminated] == [addr]  # once, for the final stop only
        assert system.lookup("w") is None


@pytest.mark.anyio
@pytest.mark.parametrize("within", [0.05, timedelta(milliseconds=50)], ids=["float", "timedelta"])
async def test_failures_older_than_the_window_do_not_count(within: float | timedelta) -> None:
    async with ActorSystem() as system:
        factory = Factory()
        addr = system.spawn_with_strategy(factory, SupervisorStrategy.restart(1, within=within))
        for expected in (2, 3, 4):
            with pytest.raises(ActorFailed):
                await addr.send(Fail())
            assert await addr.send(Number()) == expected
            await anyio.sleep(0.15)  # time-based by nature: let the failure leave the window
        assert addr.is_alive


@pytest.mark.anyio
async def test_restart_with_zero_max_restarts_stops_at_the_first_failure() -> None:
    async with ActorSystem() as system:
        factory = Factory()
        addr = system.spawn_with_strategy(factory, SupervisorStrategy.restart(0, within=10.0))
        with pytest.raises(ActorFailed):
            await addr.send(Fail())
        await wait_stopped(system, addr)
        assert factory.calls == 1


@pytest.mark.anyio
async def test_a_failure_in_started_counts_as_a_failure_and_restarts() -> None:
    async with ActorSystem() as system:
        factory = Factory(fail_in_started={1})
        addr = system.spawn_with_strategy(factory, restart())
        addr.do_send(Note("queued"))
        assert await addr.send(Number()) == 2
        log = await addr.send(GetLog())
        assert log[:3] == ["started#1", "stopped#1", "started#2"] or log[:2] == [
            "started#1",
            "started#2",
        ]
        assert "queued#2" in log
        assert "queued#1" not in log


@pytest.mark.anyio
async def test_a_failure_in_started_with_the_stop_strategy_stops_the_actor() -> None:
    async with ActorSystem() as system:
        factory = Factory(fail_in_started={1})
        addr = system.spawn_with_strategy(factory, SupervisorStrategy.stop())
        with anyio.fail_after(10), pytest.raises(ActorStopped):
            await addr.send(Number())
        await wait_stopped(system, addr)
        assert factory.calls == 1


@pytest.mark.anyio
async def test_too_many_failures_in_started_stop_for_good() -> None:
    async with ActorSystem() as system:
        factory = Factory(fail_in_started={1, 2, 3, 4})
        addr = system.spawn_with_strategy(factory, SupervisorStrategy.restart(2, within=60.0))
        with anyio.fail_after(10):
            await wait_stopped(system, addr)
        assert factory.calls == 3


class Parent(Worker):
    """A Worker that spawns one child (a Worker numbered 100+n) in started."""

    def __init__(
        self, number: int, log: EventLog, child_strategy: SupervisorStrategy | None = None
    ) -> None:
        super().__init__(number, log)
        self.child_strategy = child_strategy
        self.child: Addr[Worker] | None = None

    def started(self, ctx: Context[Self]) -> None:
        super().started(ctx)

        def make_child() -> Worker:
            return Worker(100 + self.number, self.log)

        if self.child_strategy is None:
            self.child = ctx.spawn_child(make_child())
        else:
            self.child = ctx.spawn_child_with_strategy(make_child, self.child_strategy)


@dataclass
class ChildAddr(Message[Addr[Worker]]):
    pass


class ParentWithQuery(Parent):
    @handler
    def child_addr(self, msg: ChildAddr, ctx: Context[Self]) -> Addr[Worker]:
        assert self.child is not None
        return self.child


class ParentFactory:
    def __init__(self, child_strategy: SupervisorStrategy | None = None) -> None:
        self.calls = 0
        self.log = EventLog()
        self.child_strategy = child_strategy

    def __call__(self) -> ParentWithQuery:
        self.calls += 1
        return ParentWithQuery(self.calls, self.log, self.child_strategy)


@pytest.mark.anyio
async def test_restart_stops_the_failed_instances_children_before_the_fresh_one_starts() -> None:
    async with ActorSystem() as system:
        factory = ParentFactory()
        parent = system.spawn_with_strategy(factory, restart())
        first_child = await parent.send(ChildAddr())
        with pytest.raises(ActorFailed):
            await parent.send(Fail())
        second_child = await parent.send(ChildAddr())
        await wait_stopped(system, first_child)
        assert not first_child.is_alive
        assert second_child.is_alive
        assert second_child != first_child
        log = factory.log
        assert log.index("stopped#101") < log.index("started#2")
        assert log.index("stopped#1") < log.index("started#2")


@pytest.mark.anyio
async def test_watchers_get_no_terminated_on_restart_only_on_the_final_stop() -> None:
    async with ActorSystem() as system:
        factory = Factory()
        addr = system.spawn_with_strategy(factory, restart())
        watcher = WatchingGate(addr)
        watcher_addr = system.spawn(watcher)
        await anyio.wait_all_tasks_blocked()
        for _ in range(3):
            with pytest.raises(ActorFailed):
                await addr.send(Fail())
        assert await addr.send(Number()) == 4
        addr.stop()
        await watcher.got_terminated.wait()
        assert await watcher_addr.send(GetLog()) == ["terminated"]
        assert watcher.terminated == [Terminated(addr)]


@pytest.mark.anyio
async def test_watches_held_by_a_restarted_actor_are_kept() -> None:
    async with ActorSystem() as system:
        target = system.spawn(Gate())
        factory = Factory()
        addr = system.spawn_with_strategy(factory, restart())
        await addr.send(WatchIt(target))  # the watch is made by instance 1, in a handler
        with pytest.raises(ActorFailed):
            await addr.send(Fail())
        assert await addr.send(Number()) == 2
        target.stop()
        with anyio.fail_after(10):
            await factory.log.wait_for("terminated#2")


@pytest.mark.anyio
async def test_the_default_child_strategy_is_stop_and_leaves_the_parent_alone() -> None:
    async with ActorSystem() as system:
        factory = ParentFactory(child_strategy=None)  # ctx.spawn_child(actor)
        parent = system.spawn_with_strategy(factory, restart())
        child = await parent.send(ChildAddr())
        await parent.send(WatchIt(child))
        with pytest.raises(ActorFailed):
            await child.send(Fail())
        await wait_stopped(system, child)
        assert await parent.send(Number()) == 1  # the parent did not fail or restart
        with anyio.fail_after(10):
            await factory.log.wait_for("terminated#1")


# --- escalate ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_escalate_stops_the_child_and_fails_the_parent() -> None:
    async with ActorSystem() as system:
        factory = ParentFactory(child_strategy=SupervisorStrategy.escalate())
        parent = system.spawn_with_strategy(factory, restart())
        child = await parent.send(ChildAddr())
        child.do_send(Fail())
        with anyio.fail_after(10):
            await factory.log.wait_for("started#2")
        assert await parent.send(Number()) == 2
        assert not alive(child)
        log = factory.log
        assert log.index("fail#101") < log.index("stopped#101") < log.index("started#2")
        assert log.index("stopped#1") < log.index("started#2")
        assert (await parent.send(ChildAddr())).is_alive  # the fresh parent has a fresh child


@pytest.mark.anyio
async def test_escalated_failure_hits_the_parent_after_its_current_message_ahead_of_its_queue() -> (
    None
):
    async with ActorSystem() as system, anyio.create_task_group() as tg:
        factory = ParentFactory(child_strategy=SupervisorStrategy.escalate())
        parent = system.spawn_with_strategy(factory, restart())
        child = await parent.send(ChildAddr())
        busy = Hold()
        current, queued = Outcome(), Outcome()
        tg.start_soon(current.run, lambda: parent.send(busy))
        await busy.entered.wait()
        tg.start_soon(queued.run, lambda: parent.send(Note("queued")))
        await anyio.wait_all_tasks_blocked()
        child.do_send(Fail())
        await wait_stopped(system, child)  # its stopped ran; the parent is still busy
        assert "stopped#101" in factory.log
        assert "stopped#1" not in factory.log
        busy.release.set()
        await current.done.wait()
        await queued.done.wait()
        assert current.value == "held"  # the current message completed normally
        assert queued.value == "queued"  # kept through the parent's restart
        log = factory.log
        assert log.index("hold-end") < log.index("stopped#1") < log.index("started#2")
        assert log.index("started#2") < log.index("queued#2")
        assert "queued#1" not in log


class Top(Worker):
    def __init__(self, log: EventLog) -> None:
        super().__init__(1, log)
        self.child: Addr[Worker] | None = None

    def started(self, ctx: Context[Self]) -> None:
        super().started(ctx)
        self.child = ctx.spawn_child_with_strategy(
            lambda: Worker(101, self.log), SupervisorStrategy.escalate()
        )


@pytest.mark.anyio
async def test_escalate_at_the_top_logs_and_stops_that_tree(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="cinema")
    async with ActorSystem() as system:
        log = EventLog()
        bystander = system.spawn(Gate())
        top_actor = Top(log)
        top = system.spawn_with_strategy(lambda: top_actor, SupervisorStrategy.escalate())
        await top.send(Number())
        child = top_actor.child
        assert child is not None
        with pytest.raises(ActorFailed):
            await child.send(Fail())
        await wait_stopped(system, top)
        assert not child.is_alive
        assert log.index("stopped#101") < log.index("stopped#1")
        assert bystander.is_alive  # the rest of the system is untouched
        assert await bystander.send(Note("ok")) == "ok"
        assert any(r.levelno >= logging.ERROR for r in caplog.records)


@pytest.mark.anyio
async def test_escalate_goes_up_level_by_level() -> None:
    # grandchild (escalate) -> parent (escalate) -> top (restart): the top restarts.
    class Mid(Worker):
        def started(self, ctx: Context[Self]) -> None:
            super().started(ctx)
            grandchildren.append(
                ctx.spawn_child_with_strategy(
                    lambda: Worker(1000 + self.number, self.log), SupervisorStrategy.escalate()
                )
            )

    class Root(Worker):
        def started(self, ctx: Context[Self]) -> None:
            super().started(ctx)
            ctx.spawn_child_with_strategy(
                lambda: Mid(100 + self.number, self.log), SupervisorStrategy.escalate()
            )

    log = EventLog()
    grandchildren: list[Addr[Worker]] = []
    numbers = iter(range(1, 10))
    async with ActorSystem() as system:
        root = system.spawn_with_strategy(lambda: Root(next(numbers), log), restart())
        with anyio.fail_after(10):
            await log.wait_for("started#1101")
        with pytest.raises(ActorFailed):
            await grandchildren[0].send(Fail())
        with anyio.fail_after(10):
            await log.wait_for("started#2")
        assert await root.send(Number()) == 2
        for name in ("stopped#1101", "stopped#101", "stopped#1"):
            assert name in log
        assert log.index("stopped#1101") < log.index("stopped#101") < log.index("started#2")


# --- stopping trees ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_stopping_a_parent_stops_its_children_first() -> None:
    async with ActorSystem() as system:
        factory = ParentFactory()
        parent = system.spawn_with_strategy(factory, SupervisorStrategy.stop())
        child = await parent.send(ChildAddr())
        parent.stop()
        await wait_stopped(system, parent)
        assert not child.is_alive
        assert factory.log.index("stopped#101") < factory.log.index("stopped#1")


@pytest.mark.anyio
async def test_a_failure_stopping_a_parent_stops_its_children_first() -> None:
    async with ActorSystem() as system:
        factory = ParentFactory()
        parent = system.spawn_with_strategy(factory, SupervisorStrategy.stop())
        child = await parent.send(ChildAddr())
        with pytest.raises(ActorFailed):
            await parent.send(Fail())
        await wait_stopped(system, parent)
        await wait_stopped(system, child)
        assert factory.log.index("stopped#101") < factory.log.index("stopped#1")


@pytest.mark.anyio
async def test_escalate_to_a_parent_with_the_stop_strategy_stops_the_parent_for_good() -> None:
    async with ActorSystem() as system:
        factory = ParentFactory(child_strategy=SupervisorStrategy.escalate())
        parent = system.spawn_with_strategy(factory, SupervisorStrategy.stop())
        watcher = WatchingGate(parent)
        system.spawn(watcher)
        await anyio.wait_all_tasks_blocked()
        child = await parent.send(ChildAddr())
        child.do_send(Fail())
        await wait_stopped(system, parent)
        await watcher.got_terminated.wait()
        assert watcher.terminated == [Terminated(parent)]
        assert not alive(child)
        assert factory.calls == 1
        log = factory.log
        assert log.index("stopped#101") < log.index("stopped#1")


class AsyncStart(Gate):
    def __init__(self, number: int, log: EventLog) -> None:
        super().__init__(log)
        self.number = number

    async def started(self, ctx: Context[Self]) -> None:
        self.log.append(f"starting#{self.number}")
        await anyio.sleep(0.01)
        self.log.append(f"started#{self.number}")

    @handler
    def fail(self, msg: Fail, ctx: Context[Self]) -> None:
        raise RuntimeError("failure on purpose")

    @handler
    def note(self, msg: Note, ctx: Context[Self]) -> str:
        self.log.append(f"{msg.text}#{self.number}")
        return msg.text

    @handler
    def which(self, msg: Number, ctx: Context[Self]) -> int:
        return self.number


@pytest.mark.anyio
async def test_a_restart_with_an_async_started_completes_it_before_the_next_message() -> None:
    log = EventLog()
    numbers = iter(range(1, 10))
    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(lambda: AsyncStart(next(numbers), log), restart())
        held = await hold(addr)
        addr.do_send(Fail())
        addr.do_send(Note("next"))
        held.release.set()
        assert await addr.send(Number()) == 2
        assert log.index("started#2") < log.index("next#2")


def failing_factory() -> Worker:
    raise LookupError("the factory failed")


@pytest.mark.anyio
async def test_a_factory_failing_at_spawn_time_raises_from_spawn() -> None:
    # The factory is called at spawn time, so its exception surfaces there (our reading).
    async with ActorSystem() as system:
        with pytest.raises(LookupError):
            system.spawn_with_strategy(failing_factory, restart())
        assert await system.spawn(Gate()).send(Note("ok")) == "ok"


@pytest.mark.anyio
async def test_a_factory_failing_at_restart_stops_the_actor_for_good() -> None:
    # Not spelled out by API.md; the reading tested: no restart is possible, so the actor
    # stops for good (watchers get Terminated) and senders never hang.
    calls = 0

    def flaky() -> Worker:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise LookupError("the factory failed on restart")
        return Worker(calls, EventLog())

    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(flaky, restart())
        with pytest.raises(ActorFailed):
            await addr.send(Fail())
        with anyio.fail_after(10):
            await wait_stopped(system, addr)
            with pytest.raises(ActorStopped):
                await addr.send(Number())


class CappedChildParent(Actor):
    @handler
    def spawn_it(self, msg: SpawnChild, ctx: Context[Self]) -> int:
        child = ctx.spawn_child(Gate(), mailbox_capacity=1)
        child_restartable = ctx.spawn_child_with_strategy(Gate, msg.strategy, mailbox_capacity=1)
        self.children = [child, child_restartable]
        return 2


@pytest.mark.anyio
async def test_children_take_a_mailbox_capacity_too() -> None:  # README core
    async with ActorSystem() as system:
        parent = CappedChildParent()
        await system.spawn(parent).send(SpawnChild(restart()))
        for child in parent.children:
            held = await hold(child)
            child.do_send(Note("fills"))
            with pytest.raises(MailboxFull):
                child.do_send(Note("refused"))
            held.release.set()
            assert await child.send(GetLog()) == ["hold-start", "hold-end", "fills"]
