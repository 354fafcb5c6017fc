"""Supervision: stop, restart with a sliding window, escalate; failures never crash the system."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Self

import anyio
import anyio.lowlevel
import pytest

from cinema import (
    Actor,
    ActorFailed,
    ActorStopped,
    ActorSystem,
    Addr,
    Context,
    Message,
    SupervisorStrategy,
    Terminated,
    handler,
)
from cinema.testing import wait_stopped

pytestmark = pytest.mark.anyio


@dataclass
class Work(Message[int]):
    n: int


@dataclass
class Crash(Message[None]):
    reason: str = "boom"


class Worker(Actor):
    instances = 0

    def __init__(self, log: list[str]) -> None:
        Worker.instances += 1
        self.id = Worker.instances
        self.log = log

    def started(self, ctx: Context[Self]) -> None:
        self.log.append(f"started {self.id}")

    def stopped(self, ctx: Context[Self]) -> None:
        self.log.append(f"stopped {self.id}")

    @handler
    def work(self, msg: Work, ctx: Context[Self]) -> int:
        self.log.append(f"work {msg.n} on {self.id}")
        return msg.n

    @handler
    def crash(self, msg: Crash, ctx: Context[Self]) -> None:
        raise RuntimeError(msg.reason)


async def test_failure_is_reported_to_the_sender_and_stops_by_default() -> None:
    log: list[str] = []
    async with ActorSystem() as system:
        addr = system.spawn(Worker(log))
        with pytest.raises(ActorFailed) as info:
            await addr.send(Crash("bad input"))
        assert isinstance(info.value.__cause__, RuntimeError)
        assert str(info.value.__cause__) == "bad input"
        with pytest.raises(ActorStopped):
            await addr.send(Work(1))
        assert not addr.is_alive
        # The system itself is fine.
        other = system.spawn(Worker(log))
        assert await other.send(Work(2)) == 2


async def test_restart_keeps_the_addr_drops_the_failed_message_and_keeps_the_rest() -> None:
    log: list[str] = []
    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(
            lambda: Worker(log), SupervisorStrategy.restart(3, within=10.0)
        )
        first = await addr.send(Work(0))
        assert first == 0
        addr.do_send(Work(1))
        addr.do_send(Crash())
        addr.do_send(Work(2))
        addr.do_send(Work(3))
        assert await addr.send(Work(4)) == 4
        assert addr.is_alive
    ids = [line.split()[-1] for line in log if line.startswith("started")]
    assert len(ids) == 2
    old, new = ids
    assert log == [
        f"started {old}",
        f"work 0 on {old}",
        f"work 1 on {old}",
        f"stopped {old}",
        f"started {new}",
        f"work 2 on {new}",
        f"work 3 on {new}",
        f"work 4 on {new}",
        f"stopped {new}",
    ]


async def test_factory_is_called_once_at_spawn() -> None:
    calls = 0

    def factory() -> Worker:
        nonlocal calls
        calls += 1
        return Worker([])

    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(factory, SupervisorStrategy.restart(1, 5.0))
        assert calls == 1
        await addr.send(Work(1))
        assert calls == 1


async def test_restart_limit_over_a_sliding_window() -> None:
    log: list[str] = []
    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(
            lambda: Worker(log), SupervisorStrategy.restart(2, within=timedelta(seconds=60))
        )
        for _ in range(2):
            with pytest.raises(ActorFailed):
                await addr.send(Crash())
            assert await addr.send(Work(1)) == 1
        with pytest.raises(ActorFailed):
            await addr.send(Crash())
        with pytest.raises(ActorStopped):
            await addr.send(Work(1))
        assert not addr.is_alive
        assert sum(1 for line in log if line.startswith("started")) == 3


async def test_failures_outside_the_window_do_not_count() -> None:
    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(
            lambda: Worker([]), SupervisorStrategy.restart(1, within=0.05)
        )
        for _ in range(3):
            with pytest.raises(ActorFailed):
                await addr.send(Crash())
            assert await addr.send(Work(1)) == 1
            await anyio.sleep(0.06)  # the window itself is what is tested
        assert addr.is_alive


async def test_failure_in_started_counts_as_a_failure() -> None:
    attempts = 0

    class Flaky(Actor):
        def started(self, ctx: Context[Self]) -> None:
            nonlocal attempts
            attempts += 1
            if attempts < 3:
                raise RuntimeError("not yet")

        @handler
        def work(self, msg: Work, ctx: Context[Self]) -> int:
            return msg.n

    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(Flaky, SupervisorStrategy.restart(5, 10.0))
        assert await addr.send(Work(7)) == 7
        assert attempts == 3


@dataclass
class SpawnChild(Message["Addr[Worker]"]):
    strategy: SupervisorStrategy


class Parent(Actor):
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def started(self, ctx: Context[Self]) -> None:
        self.log.append("parent started")

    def stopped(self, ctx: Context[Self]) -> None:
        self.log.append("parent stopped")

    @handler
    def spawn(self, msg: SpawnChild, ctx: Context[Self]) -> Addr[Worker]:
        return ctx.spawn_child_with_strategy(lambda: Worker(self.log), msg.strategy)

    @handler
    def work(self, msg: Work, ctx: Context[Self]) -> int:
        return msg.n


async def test_escalation_makes_the_failure_the_parents_own() -> None:
    log: list[str] = []
    async with ActorSystem() as system:
        parent = system.spawn_with_strategy(
            lambda: Parent(log), SupervisorStrategy.restart(3, 10.0)
        )
        child = await parent.send(SpawnChild(SupervisorStrategy.escalate()))
        with pytest.raises(ActorFailed):
            await child.send(Crash())
        await wait_stopped(system, child)
        # The parent restarted (its supervisor's strategy) and still answers at the same Addr.
        assert await parent.send(Work(5)) == 5
        assert not child.is_alive
    assert log.count("parent started") == 2
    child_stop = next(i for i, line in enumerate(log) if line.startswith("stopped"))
    assert child_stop < log.index("parent stopped")


async def test_escalation_at_the_top_stops_the_tree() -> None:
    log: list[str] = []
    async with ActorSystem() as system:
        parent = system.spawn_with_strategy(lambda: Parent(log), SupervisorStrategy.escalate())
        child = await parent.send(SpawnChild(SupervisorStrategy.escalate()))
        with pytest.raises(ActorFailed):
            await child.send(Crash())
        await wait_stopped(system, parent)
        assert not child.is_alive
        with pytest.raises(ActorStopped):
            await parent.send(Work(1))


async def test_children_stop_before_their_parent() -> None:
    log: list[str] = []
    async with ActorSystem() as system:
        parent = system.spawn(Parent(log))
        children = [await parent.send(SpawnChild(SupervisorStrategy.stop())) for _ in range(3)]
        parent.stop()
        with pytest.raises(ActorStopped):
            await parent.send(Work(1))
    assert log[-1] == "parent stopped"
    assert sum(1 for line in log if line.startswith("stopped")) == 3
    assert all(not c.is_alive for c in children)


async def test_restarting_a_parent_stops_its_children() -> None:
    log: list[str] = []

    class Fragile(Parent):
        @handler
        def crash(self, msg: Crash, ctx: Context[Self]) -> None:
            raise RuntimeError("parent down")

    async with ActorSystem() as system:
        parent = system.spawn_with_strategy(
            lambda: Fragile(log), SupervisorStrategy.restart(1, 10.0)
        )
        child = await parent.send(SpawnChild(SupervisorStrategy.stop()))
        with pytest.raises(ActorFailed):
            await parent.send(Crash())
        assert await parent.send(Work(3)) == 3
        assert not child.is_alive
        assert log.index("parent stopped") > next(
            i for i, line in enumerate(log) if line.startswith("stopped ")
        )


class Watcher(Actor):
    def __init__(self, target: Addr[Worker]) -> None:
        self.target = target
        self.got: list[Terminated] = []
        self.event = anyio.Event()

    def started(self, ctx: Context[Self]) -> None:
        ctx.watch(self.target)

    @handler
    def terminated(self, msg: Terminated, ctx: Context[Self]) -> None:
        self.got.append(msg)
        self.event.set()


async def test_watchers_get_terminated_when_an_actor_stops_for_good_but_not_on_restart() -> None:
    async with ActorSystem() as system:
        target = system.spawn_with_strategy(lambda: Worker([]), SupervisorStrategy.restart(1, 60))
        watcher = Watcher(target)
        system.spawn(watcher)
        with pytest.raises(ActorFailed):
            await target.send(Crash())
        assert await target.send(Work(1)) == 1
        assert watcher.got == []
        with pytest.raises(ActorFailed):
            await target.send(Crash())
        await watcher.event.wait()
        assert watcher.got == [Terminated(target)]


async def test_async_handler_failure() -> None:
    class AsyncWorker(Actor):
        @handler
        async def crash(self, msg: Crash, ctx: Context[Self]) -> None:
            await anyio.lowlevel.checkpoint()
            raise ValueError(msg.reason)

        @handler
        async def work(self, msg: Work, ctx: Context[Self]) -> int:
            return msg.n

    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(AsyncWorker, SupervisorStrategy.restart(3, 10.0))
        with pytest.raises(ActorFailed) as info:
            await addr.send(Crash("async"))
        assert isinstance(info.value.__cause__, ValueError)
        assert await addr.send(Work(9)) == 9


async def test_failing_stopped_hook_is_logged_not_fatal() -> None:
    class BadStop(Actor):
        def stopped(self, ctx: Context[Self]) -> None:
            raise RuntimeError("cleanup failed")

        @handler
        def work(self, msg: Work, ctx: Context[Self]) -> int:
            return msg.n

    async with ActorSystem() as system:
        addr = system.spawn(BadStop())
        assert await addr.send(Work(1)) == 1
        addr.stop()
        other = system.spawn(BadStop())
        assert await other.send(Work(2)) == 2


def test_strategy_validation_and_repr() -> None:
    with pytest.raises(ValueError, match="max_restarts"):
        SupervisorStrategy.restart(-1, 1.0)
    with pytest.raises(ValueError, match="within"):
        SupervisorStrategy.restart(1, -1.0)
    assert SupervisorStrategy.restart(3, timedelta(seconds=10)) == SupervisorStrategy.restart(
        3, 10.0
    )
    assert repr(SupervisorStrategy.stop()) == "SupervisorStrategy.stop()"
    assert SupervisorStrategy.escalate().kind == "escalate"
