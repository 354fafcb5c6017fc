"""cinema.testing: the pytest plugin's fixtures and the helpers behind them, on both backends.

The timing tests run on virtual time (``virtual_time``), so that timeouts and hour-long
timers cost no real time; the others on anyio's plain backends.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import anyio
import anyio.lowlevel
import pytest

from cinema import Actor, ActorSystem, Addr, Context, Message, Terminated, handler
from cinema.testing import (
    Clock,
    Probe,
    VirtualTimeEventLoop,
    current_clock,
    eventually,
    free_port,
    virtual_time,
    wait_stopped,
)

pytestmark = pytest.mark.anyio


@dataclass
class Ping(Message[None]):
    n: int = 0


@dataclass
class Pong(Message[None]):
    n: int = 0


@dataclass
class Remind(Message[None]):
    after: float
    reply_to: Addr[Any]


class Reminder(Actor):
    """Tells ``reply_to`` ``Pong`` once ``after`` seconds have passed."""

    def __init__(self) -> None:
        self.reply_to: Addr[Any] | None = None

    @handler
    def remind(self, msg: Remind, ctx: Context[Self]) -> None:
        self.reply_to = msg.reply_to
        ctx.run_later(msg.after, Ping(1))

    @handler
    def ping(self, msg: Ping, ctx: Context[Self]) -> None:
        assert self.reply_to is not None
        self.reply_to.do_send(Pong(msg.n))


class Echo(Actor):
    @handler
    def ping(self, msg: Ping, ctx: Context[Self]) -> None:
        pass


async def test_actor_system_fixture_runs_actors(actor_system: ActorSystem) -> None:
    addr = actor_system.spawn(Echo())
    await addr.send(Ping())
    assert addr.is_alive


async def test_probe_expects_in_order_and_receives_n(probe: Probe) -> None:
    for n in range(3):
        probe.addr.do_send(Ping(n))
    assert await probe.expect(Ping) == Ping(0)
    assert await probe.receive(2) == [Ping(1), Ping(2)]
    assert probe.pending == []


async def test_probe_answers_an_ask_with_none(probe: Probe) -> None:
    await probe.addr.send(Ping(7))
    assert await probe.expect(Ping) == Ping(7)


async def test_probe_rejects_a_message_of_another_type(probe: Probe) -> None:
    probe.addr.do_send(Pong())
    with pytest.raises(AssertionError, match=r"expected Ping, received Pong\(n=0\)"):
        await probe.expect(Ping)


async def test_probe_registers_under_a_name(actor_system: ActorSystem) -> None:
    probe = Probe(actor_system, name="listener")
    found = actor_system.lookup("listener")
    assert found is not None
    found.do_send(Ping(5))
    assert await probe.expect(Ping) == Ping(5)


async def test_probe_watches_until_terminated(actor_system: ActorSystem, probe: Probe) -> None:
    echo = actor_system.spawn(Echo())
    probe.watch(echo)
    await probe.addr.send(Ping())  # the watch is in place once the probe handled this
    await probe.expect(Ping)
    echo.stop()
    terminated = await probe.expect(Terminated)
    assert terminated.addr == echo


async def test_wait_stopped_returns_once_stopped(actor_system: ActorSystem) -> None:
    echo = actor_system.spawn(Echo())
    echo.stop()
    await wait_stopped(actor_system, echo)
    assert not echo.is_alive
    await wait_stopped(actor_system, echo)  # already stopped: at once


async def test_eventually_takes_plain_and_async_predicates() -> None:
    calls: list[int] = []

    def third_time() -> bool:
        calls.append(1)
        return len(calls) >= 3

    await eventually(third_time, interval=0)
    assert len(calls) == 3

    async def ready() -> bool:
        await anyio.lowlevel.checkpoint()
        return True

    await eventually(ready)


def test_free_ports_differ_and_are_free() -> None:
    ports = {free_port() for _ in range(20)}
    assert len(ports) == 20
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports.pop()))


def test_loopback_port_fixture_is_free(loopback_port: int) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", loopback_port))


async def test_current_clock_refuses_without_virtual_time() -> None:
    with pytest.raises(RuntimeError, match="virtual_time"):
        current_clock()


def test_virtual_time_rejects_an_unknown_backend() -> None:
    with pytest.raises(ValueError, match="backend"):
        virtual_time("curio")


def test_time_only_moves_forward() -> None:
    loop = VirtualTimeEventLoop()
    try:
        with pytest.raises(ValueError, match="forward"):
            loop.advance(-1)
    finally:
        loop.close()


class TestOnVirtualTime:
    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> object:
        return virtual_time(str(request.param))

    async def test_an_hour_long_timer_fires_at_once(
        self, actor_system: ActorSystem, probe: Probe, virtual_clock: Clock
    ) -> None:
        began = virtual_clock.time()
        actor_system.spawn(Reminder()).do_send(Remind(3600, probe.addr))
        assert await probe.expect(Pong, timeout=7200) == Pong(1)
        assert virtual_clock.time() - began >= 3600
        assert anyio.current_time() == pytest.approx(virtual_clock.time(), abs=1.0)

    async def test_timeouts_cost_no_real_time(self, probe: Probe) -> None:
        with pytest.raises(AssertionError, match="no message within 60"):
            await probe.expect(Ping, timeout=60)
        await probe.expect_no_message(within=600)
        probe.addr.do_send(Ping())
        with pytest.raises(AssertionError, match="message 2 of 2"):
            await probe.receive(2, timeout=30)

    async def test_expect_no_message_sees_a_late_arrival(
        self, actor_system: ActorSystem, probe: Probe
    ) -> None:
        actor_system.spawn(Reminder()).do_send(Remind(50, probe.addr))
        with pytest.raises(AssertionError, match=r"expected no message, received Pong"):
            await probe.expect_no_message(within=100)
        assert probe.pending == [Pong(1)]

    async def test_eventually_fails_after_its_timeout(self) -> None:
        with pytest.raises(AssertionError, match="did not hold within 30"):
            await eventually(lambda: False, timeout=30, interval=1)

    async def test_advance_by_hand_without_autojump(
        self, actor_system: ActorSystem, probe: Probe, virtual_clock: Clock
    ) -> None:
        virtual_clock.set_autojump(None)
        actor_system.spawn(Reminder()).do_send(Remind(3600, probe.addr))
        await probe.expect_no_message(within=0.05)  # real time now: the timer waits
        virtual_clock.advance(3600)
        assert await probe.expect(Pong) == Pong(1)
        with pytest.raises(ValueError, match="forward"):
            virtual_clock.advance(-1)
        virtual_clock.set_autojump(0)


USER_TEST = """
from dataclasses import dataclass
from typing import Self

import pytest

from cinema import Actor, Context, Message, handler
from cinema.testing import virtual_time

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return virtual_time(request.param)


@dataclass
class Tick(Message[None]):
    pass


class Alarm(Actor):
    def __init__(self, listener):
        self.listener = listener

    def started(self, ctx: Context[Self]) -> None:
        ctx.run_later(86400, Tick())

    @handler
    def tick(self, msg: Tick, ctx: Context[Self]) -> None:
        self.listener.do_send(msg)


async def test_alarm(actor_system, probe, virtual_clock):
    actor_system.spawn(Alarm(probe.addr))
    await probe.expect(Tick, timeout=100000)
    assert virtual_clock.time() >= 86400
"""


def test_users_get_the_fixtures_with_cinema_core(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TEST))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
