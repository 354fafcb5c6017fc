"""Expected errors: a handler answers with a ``ReplyError``; the caller gets it, the actor lives on.

And crash reports: every failure is seen, on stderr by default.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from typing import Self

import anyio
import pytest

from cinema import (
    Actor,
    ActorFailed,
    ActorSystem,
    CinemaError,
    Context,
    Message,
    ReplyError,
    handler,
)
from cinema.testing import wait_stopped

pytestmark = pytest.mark.anyio


class NotFound(ReplyError):
    def __init__(self, key: str) -> None:
        super().__init__(f"no item {key!r}")
        self.key = key


@dataclass
class Put(Message[None]):
    key: str
    value: int


@dataclass
class Get(Message[int]):
    key: str


@dataclass
class AGet(Message[int]):
    key: str


@dataclass
class Size(Message[int]):
    pass


class Store(Actor):
    def __init__(self) -> None:
        self.items: dict[str, int] = {}

    @handler
    def put(self, msg: Put, ctx: Context[Self]) -> None:
        self.items[msg.key] = msg.value

    @handler
    def get(self, msg: Get, ctx: Context[Self]) -> int:
        if msg.key not in self.items:
            raise NotFound(msg.key)
        return self.items[msg.key]

    @handler
    async def aget(self, msg: AGet, ctx: Context[Self]) -> int:
        await anyio.lowlevel.checkpoint()
        if msg.key not in self.items:
            raise NotFound(msg.key)
        return self.items[msg.key]

    @handler
    def size(self, msg: Size, ctx: Context[Self]) -> int:
        return len(self.items)


async def test_the_caller_gets_the_reply_error_typed_and_the_actor_keeps_its_state(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with ActorSystem() as system:
        store = system.spawn(Store())
        await store.send(Put("a", 1))
        with pytest.raises(NotFound) as info:
            await store.send(Get("b"))  # handled inline, in this task
        assert info.value.key == "b"
        with pytest.raises(NotFound):
            await store.send(AGet("b"))  # an async handler, in a worker
        store.do_send(Put("c", 3))
        with pytest.raises(NotFound):
            await store.send(Get("d"))  # queued behind the Put, handled by the dispatcher
        assert store.is_alive
        assert await store.send(Get("a")) == 1
        assert await store.send(Size()) == 2
    assert not [r for r in caplog.records if r.name == "cinema.crash"]


async def test_queued_async_reply_errors_do_not_break_the_chain() -> None:
    async with ActorSystem() as system:
        store = system.spawn(Store())
        store.do_send(Put("a", 1))
        async with anyio.create_task_group() as tg:
            results: list[object] = []

            async def ask(key: str) -> None:
                try:
                    results.append(await store.send(AGet(key)))
                except NotFound as exc:
                    results.append(exc.key)

            for key in ["x", "a", "y", "a"]:
                tg.start_soon(ask, key)
        assert sorted(map(str, results)) == ["1", "1", "x", "y"]
        assert await store.send(Size()) == 1


async def test_a_reply_error_for_a_do_send_is_logged_not_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="cinema")
    async with ActorSystem() as system:
        store = system.spawn(Store())
        store.do_send(Get("missing"))
        store.do_send(AGet("missing"))
        assert await store.send(Size()) == 0
        assert store.is_alive
    assert sum("nobody receives it" in r.getMessage() for r in caplog.records) == 2
    assert not [r for r in caplog.records if r.name == "cinema.crash"]


def test_a_reply_error_travels_as_its_name_and_message() -> None:
    from cinema.lowlevel import rebuild_reply_error, reply_error_name

    name = reply_error_name(NotFound("b"))
    assert name.endswith(".NotFound")
    rebuilt = rebuild_reply_error(name, "no item 'b'")
    assert type(rebuilt) is NotFound
    assert str(rebuilt) == "no item 'b'"
    assert rebuild_reply_error("elsewhere.Unknown", "x") is None


def test_a_reply_error_is_a_cinema_error() -> None:
    assert issubclass(ReplyError, CinemaError)
    assert not issubclass(ActorFailed, ReplyError)


class StartsWithReplyError(Actor):
    def started(self, ctx: Context[Self]) -> None:
        raise NotFound("config")

    @handler
    def size(self, msg: Size, ctx: Context[Self]) -> int:
        return 0


async def test_a_reply_error_outside_a_handler_is_a_failure() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(StartsWithReplyError())
        await wait_stopped(system, addr)


CRASHING_PROGRAM = """
import anyio
from dataclasses import dataclass
from typing import Self
from cinema import Actor, ActorSystem, Context, Message, handler
{setup}

@dataclass
class Crash(Message[None]):
    pass

class Fragile(Actor):
    @handler
    def crash(self, msg: Crash, ctx: Context[Self]) -> None:
        raise RuntimeError("the disk is on fire")

async def main() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Fragile())
        addr.do_send(Crash())
        while addr.is_alive:
            await anyio.sleep(0.01)
    print("after the block")

anyio.run(main, backend={backend!r})
"""


def _run(backend: str, setup: str = "") -> subprocess.CompletedProcess[str]:
    program = CRASHING_PROGRAM.format(setup=textwrap.dedent(setup), backend=backend)
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_crash_reports_reach_stderr_with_no_logging_configured(backend: str) -> None:
    result = _run(backend)
    assert result.stdout == "after the block\n"
    assert "Fragile#1 failed: stopping" in result.stderr
    assert "RuntimeError: the disk is on fire" in result.stderr
    assert "Traceback" in result.stderr


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_crash_reports_can_be_silenced_and_routed(backend: str) -> None:
    silenced = _run(
        backend, 'import logging\nlogging.getLogger("cinema.crash").setLevel(logging.CRITICAL)\n'
    )
    assert silenced.stdout == "after the block\n"
    assert silenced.stderr == ""
    routed = _run(
        backend,
        "import logging, sys\n"
        'logging.basicConfig(stream=sys.stdout, format="%(name)s %(levelname)s %(message)s")\n',
    )
    assert "cinema.crash ERROR Fragile#1 failed: stopping" in routed.stdout
    assert routed.stderr == ""
