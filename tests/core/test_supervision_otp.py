"""OTP-style supervision: backoff restarts, one-for-all / rest-for-one groups, escalation chains."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Self

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
    SupervisorStrategy,
    handler,
)
from cinema._supervision import backoff_delay
from cinema.testing import wait_stopped

pytestmark = pytest.mark.anyio


@dataclass
class Crash(Message[None]):
    pass


@dataclass
class Ping(Message[str]):
    pass


class Member(Actor):
    """Reports every start to a shared log, so tests can tell which instances were made."""

    made: ClassVar[dict[str, int]] = {}

    def __init__(self, name: str, log: list[str]) -> None:
        Member.made[name] = Member.made.get(name, 0) + 1
        self.name = f"{name}{Member.made[name]}"
        self.log = log

    def started(self, ctx: Context[Self]) -> None:
        self.log.append(f"started {self.name}")

    @handler
    def crash(self, msg: Crash, ctx: Context[Self]) -> None:
        raise RuntimeError(f"{self.name} crashed")

    @handler
    def ping(self, msg: Ping, ctx: Context[Self]) -> str:
        return self.name


def delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    found = []
    for record in caplog.records:
        match = re.search(r"restarting in ([0-9.e-]+)s", record.getMessage())
        if match:
            found.append(float(match.group(1)))
    return found


async def test_backoff_doubles_up_to_the_maximum(caplog: pytest.LogCaptureFixture) -> None:
    Member.made.clear()
    log: list[str] = []
    strategy = SupervisorStrategy.backoff(0.01, 0.04, random_factor=0)
    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(lambda: Member("m", log), strategy)
        for _ in range(4):
            with pytest.raises(ActorFailed):
                await addr.send(Crash())
            # Sent during the backoff delay: queued, and handled by the fresh instance.
            assert (await addr.send(Ping())).startswith("m")
    assert delays(caplog) == [0.01, 0.02, 0.04, 0.04]
    assert log == ["started m1", "started m2", "started m3", "started m4", "started m5"]


async def test_backoff_resets_after_a_stable_period(caplog: pytest.LogCaptureFixture) -> None:
    Member.made.clear()
    strategy = SupervisorStrategy.backoff(0.01, 1.0, random_factor=0, reset_after=0)
    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(lambda: Member("m", []), strategy)
        for _ in range(3):
            with pytest.raises(ActorFailed):
                await addr.send(Crash())
            await addr.send(Ping())
    assert delays(caplog) == [0.01, 0.01, 0.01]


def test_backoff_random_factor_stretches_the_delay_within_bounds() -> None:
    strategy = SupervisorStrategy.backoff(1.0, 8.0, random_factor=0.5)
    assert backoff_delay(strategy, 1, rand=0.0) == 1.0
    assert backoff_delay(strategy, 3, rand=0.999) == pytest.approx(4.0 * 1.4995)
    assert backoff_delay(strategy, 10, rand=1.0) == 12.0  # the cap, then at most +50%
    for n in range(1, 8):
        assert 1.0 <= backoff_delay(strategy, n) <= 12.0


def test_backoff_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="max_backoff"):
        SupervisorStrategy.backoff(2.0, 1.0)
    with pytest.raises(ValueError, match="random_factor"):
        SupervisorStrategy.backoff(1.0, 2.0, random_factor=-1)
    with pytest.raises(ValueError, match="max_restarts"):
        SupervisorStrategy.backoff(1.0, 2.0, max_restarts=-1)
    s = SupervisorStrategy.backoff(1.0, 2.0)
    assert s.kind == "backoff"
    assert s == SupervisorStrategy.backoff(1.0, 2.0)
    assert s != SupervisorStrategy.backoff(1.0, 3.0)
    assert "backoff(1.0, 2.0" in repr(s)


async def test_backoff_max_restarts_then_stops_for_good() -> None:
    Member.made.clear()
    strategy = SupervisorStrategy.backoff(0.001, 0.002, max_restarts=2)
    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(lambda: Member("m", []), strategy)
        for _ in range(2):
            with pytest.raises(ActorFailed):
                await addr.send(Crash())
            await addr.send(Ping())
        with pytest.raises(ActorFailed):
            await addr.send(Crash())
        await wait_stopped(system, addr)
        with pytest.raises(ActorStopped):
            await addr.send(Ping())


async def test_stop_and_shutdown_cut_a_long_backoff_short() -> None:
    Member.made.clear()
    strategy = SupervisorStrategy.backoff(3600, 3600)
    async with ActorSystem() as system:
        first = system.spawn_with_strategy(lambda: Member("a", []), strategy)
        second = system.spawn_with_strategy(lambda: Member("b", []), strategy)
        with pytest.raises(ActorFailed):
            await first.send(Crash())
        with pytest.raises(ActorFailed):
            await second.send(Crash())
        async with anyio.create_task_group() as tg:

            async def queued() -> None:
                with pytest.raises(ActorStopped):
                    await first.send(Ping())

            tg.start_soon(queued)
            await anyio.lowlevel.checkpoint()
            first.stop()
        await wait_stopped(system, first)
    # Leaving the block did not wait an hour for the second one.
    assert not second.is_alive


class Supervisor(Actor):
    def __init__(self, group: str, log: list[str]) -> None:
        self.group = group
        self.log = log
        self.children: list[Addr[Member]] = []
        self.ready = anyio.Event()

    def factory(self, name: str) -> Callable[[], Member]:
        return lambda: Member(name, self.log)

    def started(self, ctx: Context[Self]) -> None:
        if self.group != "one_for_one":
            ctx.set_restart_group(self.group)  # type: ignore[arg-type]  # checked at runtime
        strategy = SupervisorStrategy.restart(5, within=60)
        for name in "xyz":
            self.children.append(ctx.spawn_child_with_strategy(self.factory(name), strategy))
        # A child without a factory cannot be restarted with its siblings: left alone.
        self.children.append(ctx.spawn_child(Member("plain", self.log)))
        self.ready.set()


@pytest.mark.parametrize(
    ("group", "restarted"),
    [
        ("one_for_one", ["started y2"]),
        ("one_for_all", ["started x2", "started y2", "started z2"]),
        ("rest_for_one", ["started y2", "started z2"]),
    ],
)
async def test_restart_groups(group: str, restarted: list[str]) -> None:
    Member.made.clear()
    log: list[str] = []
    async with ActorSystem() as system:
        sup = Supervisor(group, log)
        system.spawn(sup)
        await sup.ready.wait()
        x, y, z, plain = sup.children
        with pytest.raises(ActorFailed):
            await y.send(Crash())
        names = [await c.send(Ping()) for c in (x, y, z, plain)]
        assert sorted(log[4:]) == restarted
        assert names[3] == "plain1"
        assert names[1] == "y2"


class BadGroup(Actor):
    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.done = anyio.Event()

    def started(self, ctx: Context[Self]) -> None:
        try:
            ctx.set_restart_group("one_for_some")  # type: ignore[arg-type]  # the mistake
        except ValueError as exc:
            self.error = exc
        self.done.set()


async def test_a_bad_restart_group_is_refused() -> None:
    async with ActorSystem() as system:
        actor = BadGroup()
        system.spawn(actor)
        await actor.done.wait()
        assert isinstance(actor.error, ValueError)
        assert "one_for_some" in str(actor.error)


class Level(Actor):
    """One level of a supervision tree: spawns the next level, escalating its failures."""

    def __init__(self, depth: int, log: list[str], leaf: list[Addr[Member]]) -> None:
        self.depth = depth
        self.log = log
        self.leaf = leaf

    def started(self, ctx: Context[Self]) -> None:
        self.log.append(f"started level {self.depth}")
        if self.depth < 3:
            ctx.spawn_child_with_strategy(
                lambda: Level(self.depth + 1, self.log, self.leaf), SupervisorStrategy.escalate()
            )
        else:
            self.leaf.append(
                ctx.spawn_child_with_strategy(
                    lambda: Member("leaf", self.log), SupervisorStrategy.escalate()
                )
            )


async def test_escalation_goes_up_several_levels_to_a_restarting_root() -> None:
    Member.made.clear()
    log: list[str] = []
    leaf: list[Addr[Member]] = []
    async with ActorSystem() as system:
        root = system.spawn_with_strategy(
            lambda: Level(1, log, leaf), SupervisorStrategy.restart(3, within=60)
        )
        while not leaf:
            await anyio.lowlevel.checkpoint()
        with pytest.raises(ActorFailed):
            await leaf[0].send(Crash())
        while len(leaf) < 2:  # the root restarted and rebuilt its whole tree
            await anyio.lowlevel.checkpoint()
        assert await leaf[1].send(Ping()) == "leaf2"
        assert not leaf[0].is_alive
        assert root.is_alive
    assert log == [
        "started level 1",
        "started level 2",
        "started level 3",
        "started leaf1",
        "started level 1",
        "started level 2",
        "started level 3",
        "started leaf2",
    ]


async def test_escalation_at_the_top_stops_the_tree(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="cinema")
    Member.made.clear()
    leaf: list[Addr[Member]] = []
    async with ActorSystem() as system:
        root = system.spawn_with_strategy(lambda: Level(1, [], leaf), SupervisorStrategy.escalate())
        while not leaf:
            await anyio.lowlevel.checkpoint()
        with pytest.raises(ActorFailed):
            await leaf[0].send(Crash())
        await wait_stopped(system, root)
    assert any("no supervisor above it" in r.getMessage() for r in caplog.records)
