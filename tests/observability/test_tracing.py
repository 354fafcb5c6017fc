"""Spans per message: local sends, failures and supervision, on both backends."""

from __future__ import annotations

from typing import Self

import anyio
import anyio.lowlevel
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from cinema import (
    Actor,
    ActorFailed,
    ActorStopped,
    ActorSystem,
    Context,
    Message,
    ReplyError,
    SupervisorStrategy,
    handler,
)

from .conftest import Spans

pytestmark = pytest.mark.anyio


class Add(Message[int]):
    def __init__(self, n: int) -> None:
        self.n = n


class Note:
    """A do_send message."""


class Refused(ReplyError):
    pass


class Counter(Actor):
    def __init__(self) -> None:
        self.total = 0
        self.noted = anyio.Event()

    @handler
    def add(self, msg: Add, ctx: Context[Self]) -> int:
        if msg.n < 0:
            raise ValueError("negative")
        if msg.n == 0:
            raise Refused("zero")
        self.total += msg.n
        return self.total

    @handler
    def note(self, msg: Note, ctx: Context[Self]) -> None:
        self.noted.set()


class Slow(Actor):
    @handler
    async def add(self, msg: Add, ctx: Context[Self]) -> int:
        await anyio.lowlevel.checkpoint()
        if msg.n < 0:
            raise ValueError("negative, async")
        return msg.n


class Front(Actor):
    """Forwards to a Counter from inside its own handler: a nested span."""

    def __init__(self, counter: object) -> None:
        self.counter = counter

    @handler
    async def add(self, msg: Add, ctx: Context[Self]) -> int:
        return int(await self.counter.send(msg))  # type: ignore[attr-defined]


async def test_send_is_a_client_span_and_its_handling_a_server_child(spans: Spans) -> None:
    tracer = spans.provider.get_tracer("test")
    async with ActorSystem() as system:
        assert system.tracing
        addr = system.spawn(Counter())
        with tracer.start_as_current_span("request") as outer:
            assert await addr.send(Add(2)) == 2
    named = spans.named("Counter/Add")  # the client's span and the server's share a name
    assert sorted(s.kind.name for s in named) == ["CLIENT", "SERVER"]
    client = next(s for s in named if s.kind == SpanKind.CLIENT)
    server = next(s for s in named if s.kind == SpanKind.SERVER)
    assert client.parent is not None
    assert client.parent.span_id == outer.get_span_context().span_id
    assert server.parent is not None
    assert server.parent.span_id == client.context.span_id
    assert server.context.trace_id == outer.get_span_context().trace_id
    assert client.attributes is not None
    assert server.attributes is not None
    assert client.attributes["rpc.system"] == "cinema"
    assert client.attributes["rpc.service"] == "Counter"
    assert client.attributes["rpc.method"] == "Add"
    assert client.attributes["cinema.outcome"] == "ok"
    assert server.attributes["rpc.service"] == "Counter"
    assert server.attributes["rpc.method"] == "Add"
    assert str(server.attributes["cinema.actor"]).startswith("Counter#")
    assert server.attributes["cinema.outcome"] == "ok"


async def test_do_send_is_a_producer_span_and_its_handling_a_consumer_child(spans: Spans) -> None:
    tracer = spans.provider.get_tracer("test")
    async with ActorSystem() as system:
        actor = Counter()
        addr = system.spawn(actor)
        with tracer.start_as_current_span("caller") as outer:
            addr.do_send(Note())
        await actor.noted.wait()
    producer = spans.one("send Counter")
    consumer = spans.one("process Counter")
    assert producer.kind == SpanKind.PRODUCER
    assert consumer.kind == SpanKind.CONSUMER
    assert producer.parent is not None
    assert producer.parent.span_id == outer.get_span_context().span_id
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id
    assert producer.attributes is not None
    assert consumer.attributes is not None
    assert producer.attributes["messaging.system"] == "cinema"
    assert producer.attributes["messaging.destination.name"] == "Counter"
    assert producer.attributes["cinema.message.type"] == "Note"
    assert consumer.attributes["messaging.operation.type"] == "process"
    assert consumer.attributes["cinema.outcome"] == "ok"


async def test_a_send_inside_a_handler_is_a_child_of_the_handling_span(spans: Spans) -> None:
    async with ActorSystem() as system:
        counter = system.spawn(Counter())
        front = system.spawn(Front(counter))
        assert await front.send(Add(3)) == 3
    front_server = next(s for s in spans.named("Front/Add") if s.kind == SpanKind.SERVER)
    inner_client = next(s for s in spans.named("Counter/Add") if s.kind == SpanKind.CLIENT)
    inner_server = next(s for s in spans.named("Counter/Add") if s.kind == SpanKind.SERVER)
    assert inner_client.parent is not None
    assert inner_client.parent.span_id == front_server.context.span_id
    assert inner_server.parent is not None
    assert inner_server.parent.span_id == inner_client.context.span_id
    assert len({s.context.trace_id for s in spans.all()}) == 1


@pytest.mark.parametrize("actor_class", [Counter, Slow])
async def test_a_failure_is_an_exception_event_with_the_supervision_decision(
    spans: Spans, actor_class: type[Actor]
) -> None:
    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(actor_class, SupervisorStrategy.restart(5, 10.0))
        with pytest.raises(ActorFailed):
            await addr.send(Add(-1))
        assert await addr.send(Add(4)) == 4  # a fresh instance
        stats = system.stats()
    name = actor_class.__qualname__
    failed = [
        s
        for s in spans.named(f"{name}/Add")
        if s.kind == SpanKind.SERVER and s.status.status_code == StatusCode.ERROR
    ]
    assert len(failed) == 1
    span = failed[0]
    assert span.attributes is not None
    assert span.attributes["cinema.outcome"] == "failed"
    assert span.attributes["error.type"] == "ValueError"
    events = {e.name: e for e in span.events}
    assert "exception" in events
    assert events["exception"].attributes is not None
    assert events["exception"].attributes["exception.type"] == "ValueError"
    decision = events["cinema.supervision"].attributes
    assert decision is not None
    assert decision["cinema.supervision.decision"] == "restart"
    restart = spans.one(f"restart {name}")
    assert restart.parent is not None
    assert restart.parent.span_id == span.context.span_id
    client = next(
        s
        for s in spans.named(f"{name}/Add")
        if s.kind == SpanKind.CLIENT and s.status.status_code == StatusCode.ERROR
    )
    assert client.attributes is not None
    assert client.attributes["cinema.outcome"] == "failed"
    row = stats.actor_types[name]
    assert (row.failures, row.restarts) == (1, 1)


async def test_a_reply_error_is_an_outcome_not_a_failure(spans: Spans) -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Counter())
        with pytest.raises(Refused):
            await addr.send(Add(0))
        assert await addr.send(Add(1)) == 1
    errors = [s for s in spans.all() if s.status.status_code == StatusCode.ERROR]
    assert errors == []
    outcomes = sorted(
        str(s.attributes["cinema.outcome"]) for s in spans.named("Counter/Add") if s.attributes
    )
    assert outcomes == ["ok", "ok", "reply_error", "reply_error"]


async def test_a_stop_decision_is_recorded(spans: Spans) -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Counter())
        with pytest.raises(ActorFailed):
            await addr.send(Add(-1))
        assert not addr.is_alive
    span = next(s for s in spans.named("Counter/Add") if s.kind == SpanKind.SERVER)
    event = next(e for e in span.events if e.name == "cinema.supervision")
    assert event.attributes is not None
    assert event.attributes["cinema.supervision.decision"] == "stop"


async def test_without_a_provider_nothing_is_traced() -> None:
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    async with ActorSystem() as system:
        assert not system.tracing
        addr = system.spawn(Counter())
        assert await addr.send(Add(1)) == 1


class Held(Actor):
    """Its first message waits for the test; later ones stay queued meanwhile."""

    def __init__(self) -> None:
        self.entered = anyio.Event()
        self.release = anyio.Event()

    @handler
    async def add(self, msg: Add, ctx: Context[Self]) -> int:
        self.entered.set()
        await self.release.wait()
        return msg.n

    @handler
    def note(self, msg: Note, ctx: Context[Self]) -> None:
        pass


async def test_queued_traced_messages_of_a_stopped_actor_are_refused(spans: Spans) -> None:
    async with ActorSystem() as system, anyio.create_task_group() as tg:
        held = Held()
        addr = system.spawn(held)
        outcome: list[BaseException] = []

        async def first() -> None:
            assert await addr.send(Add(1)) == 1

        async def second() -> None:
            try:
                await addr.send(Add(2))
            except ActorStopped as exc:
                outcome.append(exc)

        tg.start_soon(first)
        await held.entered.wait()
        tg.start_soon(second)
        await anyio.wait_all_tasks_blocked()
        addr.do_send(Note())
        addr.stop()  # the queued send and do_send are refused, not lost
        held.release.set()
    assert len(outcome) == 1
    assert system.stats().dead_letters_by_reason == {"dropped": 1}
    client = [
        s
        for s in spans.named("Held/Add")
        if s.kind == SpanKind.CLIENT
        and s.attributes
        and s.attributes["cinema.outcome"] == "stopped"
    ]
    assert len(client) == 1
