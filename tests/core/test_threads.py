"""Talking to actors from other OS threads: do_send, stop and send_from_thread."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Self

import anyio
import anyio.from_thread
import anyio.to_thread
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
    ReplyError,
    handler,
)

pytestmark = pytest.mark.anyio


class Negative(ReplyError):
    pass


@dataclass
class Add(Message[int]):
    n: int


@dataclass
class Note(Message[None]):
    n: int


@dataclass
class Crash(Message[None]):
    pass


class Counter(Actor):
    def __init__(self, expect: int = 0) -> None:
        self.total = 0
        self.notes: list[int] = []
        self.expect = expect
        self.threads: set[int] = set()
        self.done = anyio.Event()

    @handler
    def add(self, msg: Add, ctx: Context[Self]) -> int:
        if msg.n < 0:
            raise Negative(str(msg.n))
        self.threads.add(threading.get_ident())
        self.total += msg.n
        return self.total

    @handler
    def note(self, msg: Note, ctx: Context[Self]) -> None:
        self.threads.add(threading.get_ident())
        self.notes.append(msg.n)
        if len(self.notes) == self.expect:
            self.done.set()

    @handler
    def crash(self, msg: Crash, ctx: Context[Self]) -> None:
        raise RuntimeError("boom")


async def test_do_send_from_another_thread_is_delivered_promptly_and_in_order() -> None:
    async with ActorSystem() as system:
        counter = Counter(expect=500)
        addr = system.spawn(counter)

        def produce() -> None:
            for i in range(500):
                addr.do_send(Note(i))

        thread = threading.Thread(target=produce)
        thread.start()
        # Nothing else wakes the event loop: the messages themselves must.
        with anyio.fail_after(30):
            await counter.done.wait()
        thread.join()
        assert counter.notes == list(range(500))
        assert counter.threads == {threading.get_ident()}
        assert await addr.send(Add(1)) == 1


async def test_send_from_thread_returns_the_reply_and_raises_what_send_raises() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Counter())

        def work() -> list[object]:
            out: list[object] = [addr.send_from_thread(Add(2)), addr.send_from_thread(Add(3))]
            try:
                addr.send_from_thread(Add(-1))
            except Negative as exc:
                out.append(f"negative {exc}")
            try:
                addr.send_from_thread(Crash())
            except ActorFailed:
                out.append("failed")
            try:
                addr.send_from_thread(Add(1))
            except ActorStopped:
                out.append("stopped")
            return out

        assert await anyio.to_thread.run_sync(work) == [2, 5, "negative -1", "failed", "stopped"]


async def test_send_from_thread_in_the_loop_thread_is_refused() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Counter())
        with pytest.raises(CinemaError, match=r"await addr\.send"):
            addr.send_from_thread(Add(1))
        assert await addr.send(Add(1)) == 1


async def test_awaiting_send_in_another_event_loop_is_refused_and_harmless() -> None:
    async with ActorSystem() as system:
        counter = Counter()
        addr = system.spawn(counter)

        def other_loop() -> str:
            async def go() -> int:
                return await addr.send(Add(1))

            try:
                asyncio.run(go())
            except CinemaError as exc:
                return str(exc)
            return "no error"

        message = await anyio.to_thread.run_sync(other_loop)
        assert "send_from_thread" in message
        assert addr.is_alive
        assert await addr.send(Add(5)) == 5


async def test_stop_and_do_send_from_another_thread(anyio_backend: str) -> None:
    async with ActorSystem() as system:
        counter = Counter(expect=1)
        addr = system.spawn(counter)
        await anyio.to_thread.run_sync(addr.do_send, Note(7))
        with anyio.fail_after(30):
            await counter.done.wait()
        await anyio.to_thread.run_sync(addr.stop)
        while addr.is_alive:  # the stop arrives through the event loop
            await anyio.lowlevel.checkpoint()
        before = system.dead_letters
        await anyio.to_thread.run_sync(addr.do_send, Note(8))
        while system.dead_letters == before:
            await anyio.lowlevel.checkpoint()
        assert counter.notes == [7]


async def test_spawn_from_another_thread_is_refused() -> None:
    async with ActorSystem() as system:
        with pytest.raises(CinemaError, match="another thread"):
            await anyio.to_thread.run_sync(system.spawn, Counter())

        def spawn_through_the_loop() -> Addr[Counter]:
            return anyio.from_thread.run_sync(system.spawn, Counter())

        addr = await anyio.to_thread.run_sync(spawn_through_the_loop)
        assert await addr.send(Add(2)) == 2
