"""Dead-letter subscriptions and counts; parents that handle Terminated watch their children."""

from __future__ import annotations

import logging
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
    Context,
    DeadLetter,
    Message,
    SupervisorStrategy,
    Terminated,
    UnhandledMessage,
    handler,
)
from cinema.testing import wait_stopped

pytestmark = pytest.mark.anyio


@dataclass
class Note(Message[None]):
    n: int


@dataclass
class Crash(Message[None]):
    pass


class Sink(Actor):
    @handler
    def note(self, msg: Note, ctx: Context[Self]) -> None:
        pass

    @handler
    def crash(self, msg: Crash, ctx: Context[Self]) -> None:
        raise RuntimeError("boom")


class Collector(Actor):
    def __init__(self, expect: int) -> None:
        self.records: list[DeadLetter] = []
        self.expect = expect
        self.done = anyio.Event()

    @handler
    def dead(self, msg: DeadLetter, ctx: Context[Self]) -> None:
        self.records.append(msg)
        if len(self.records) == self.expect:
            self.done.set()


async def test_subscribers_receive_dead_letter_records_with_reasons() -> None:
    async with ActorSystem() as system:
        collector = Collector(expect=3)
        system.subscribe_dead_letters(system.spawn(collector))
        sink = system.spawn(Sink())
        sink.do_send(Crash())  # queued first: the crash stops the actor...
        sink.do_send(Note(1))  # ...so this one is dropped, never handled
        await wait_stopped(system, sink)
        sink.do_send(Note(2))  # sent to a stopped actor
        sink.do_send(Note(3))
        await collector.done.wait()
        assert [(r.message, r.target, r.reason) for r in collector.records] == [
            (Note(1), sink, "dropped"),
            (Note(2), sink, "stopped"),
            (Note(3), sink, "stopped"),
        ]
        assert system.dead_letters == 3
        assert system.dead_letter_counts == {"dropped": 1, "stopped": 2}


async def test_subscribing_needs_a_dead_letter_handler_and_a_live_actor() -> None:
    async with ActorSystem() as system:
        sink = system.spawn(Sink())
        with pytest.raises(UnhandledMessage):
            system.subscribe_dead_letters(sink)
        collector = system.spawn(Collector(expect=1))
        collector.stop()
        with pytest.raises(ActorStopped):
            system.subscribe_dead_letters(collector)


async def test_unsubscribe_and_a_stopped_subscriber_end_the_subscription() -> None:
    async with ActorSystem() as system:
        first = Collector(expect=1)
        first_addr = system.spawn(first)
        system.subscribe_dead_letters(first_addr)
        assert system.unsubscribe_dead_letters(first_addr)
        assert not system.unsubscribe_dead_letters(first_addr)
        second = Collector(expect=1)
        second_addr = system.spawn(second)
        system.subscribe_dead_letters(second_addr)
        sink = system.spawn(Sink())
        sink.stop()
        sink.do_send(Note(1))
        await second.done.wait()
        assert first.records == []
        second_addr.stop()
        await wait_stopped(system, second_addr)
        sink.do_send(Note(2))  # the stopped subscriber is dropped, without a dead letter loop
        assert system.dead_letter_counts == {"stopped": 2}
        assert not system.unsubscribe_dead_letters(second_addr)


async def test_dead_letter_logging_is_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="cinema")
    async with ActorSystem() as system:
        sink = system.spawn(Sink())
        sink.stop()
        for i in range(1000):
            sink.do_send(Note(i))
        assert system.dead_letters == 1000
    lines = [r for r in caplog.records if "dead letter" in r.getMessage()]
    assert 1 <= len(lines) <= 12  # a burst of 1000 within a second logs about 10 of them


class Parent(Actor):
    def __init__(self, strategy: SupervisorStrategy | None = None) -> None:
        self.strategy = strategy
        self.child: Addr[Sink] | None = None
        self.terminated: list[Addr[Actor]] = []
        self.got = anyio.Event()

    def started(self, ctx: Context[Self]) -> None:
        if self.strategy is None:
            self.child = ctx.spawn_child(Sink())
        else:
            self.child = ctx.spawn_child_with_strategy(Sink, self.strategy)

    @handler
    def terminated_(self, msg: Terminated, ctx: Context[Self]) -> None:
        self.terminated.append(msg.addr)
        self.got.set()


class Quiet(Actor):
    """A parent that does not handle Terminated."""

    def __init__(self) -> None:
        self.child: Addr[Sink] | None = None

    def started(self, ctx: Context[Self]) -> None:
        self.child = ctx.spawn_child(Sink())


async def test_a_parent_that_handles_terminated_hears_when_its_child_stops() -> None:
    async with ActorSystem() as system:
        parent = Parent()
        system.spawn(parent)
        while parent.child is None:
            await anyio.lowlevel.checkpoint()
        parent.child.stop()
        await parent.got.wait()
        assert parent.terminated == [parent.child]


async def test_a_restarting_child_notifies_its_parent_only_when_it_stops_for_good() -> None:
    async with ActorSystem() as system:
        parent = Parent(SupervisorStrategy.restart(2, within=60))
        system.spawn(parent)
        while parent.child is None:
            await anyio.lowlevel.checkpoint()
        child = parent.child
        for _ in range(2):
            with pytest.raises(ActorFailed):
                await child.send(Crash())
            await child.send(Note(0))  # restarted: still alive
        assert parent.terminated == []
        with pytest.raises(ActorFailed):
            await child.send(Crash())  # one more than max_restarts: stops for good
        await parent.got.wait()
        assert parent.terminated == [child]


async def test_stopping_a_parent_makes_no_dead_letters_of_its_children() -> None:
    async with ActorSystem() as system:
        parent = Parent()
        addr = system.spawn(parent)
        quiet = Quiet()
        system.spawn(quiet)
        while parent.child is None or quiet.child is None:
            await anyio.lowlevel.checkpoint()
        addr.stop()
    assert system.dead_letters == 0
    assert parent.terminated == []
