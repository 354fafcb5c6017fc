"""system.stats() and the same counters through the OpenTelemetry metrics API."""

from __future__ import annotations

from typing import Any, Self

import anyio
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from cinema import (
    Actor,
    ActorFailed,
    ActorSystem,
    Context,
    Message,
    SupervisorStrategy,
    SystemStats,
    handler,
    telemetry,
)

pytestmark = pytest.mark.anyio


class Ping(Message[int]):
    def __init__(self, n: int) -> None:
        self.n = n


class Echo(Actor):
    @handler
    def ping(self, msg: Ping, ctx: Context[Self]) -> int:
        if msg.n < 0:
            raise RuntimeError(f"bad ping {msg.n}")
        return msg.n


class Gate(Actor):
    """Blocks in its first message until opened: later messages stay queued."""

    def __init__(self) -> None:
        self.entered = anyio.Event()
        self.open = anyio.Event()

    @handler
    async def ping(self, msg: Ping, ctx: Context[Self]) -> int:
        self.entered.set()
        await self.open.wait()
        return msg.n


async def test_counts_per_actor_type() -> None:
    async with ActorSystem() as system:
        echoes = [system.spawn(Echo()) for _ in range(3)]
        for addr in echoes:
            for i in range(5):
                addr.do_send(Ping(i))
            assert await addr.send(Ping(7)) == 7
        stats = system.stats()
        assert isinstance(stats, SystemStats)
        row = stats.actor_types["Echo"]
        assert (row.live, row.messages, row.failures, row.restarts) == (3, 18, 0, 0)
        assert row.handling_seconds > 0
        assert stats.actors == 3
        assert stats.messages == 18
        for addr in echoes:
            addr.stop()
        await system.spawn(Echo()).send(Ping(1))
        after = system.stats().actor_types["Echo"]
        assert after.messages == 19  # stopped actors' counts stay with their class
        assert after.live == 1


async def test_mailbox_depth_is_seen_while_messages_wait() -> None:
    async with ActorSystem() as system:
        gate = Gate()
        addr = system.spawn(gate)
        addr.do_send(Ping(0))
        await gate.entered.wait()
        for i in range(4):
            addr.do_send(Ping(i))
        row = system.stats().actor_types["Gate"]
        assert (row.mailbox, row.max_mailbox) == (4, 4)
        gate.open.set()
        assert await addr.send(Ping(9)) == 9
        row = system.stats().actor_types["Gate"]
        assert (row.mailbox, row.messages) == (0, 6)


async def test_failures_restarts_and_dead_letters() -> None:
    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(Echo, SupervisorStrategy.restart(5, 10.0))
        with pytest.raises(ActorFailed):
            await addr.send(Ping(-3))
        assert await addr.send(Ping(1)) == 1
        addr.stop()
        addr.do_send(Ping(2))  # a dead letter: stopped
        stats = system.stats()
        row = stats.actor_types["Echo"]
        assert (row.failures, row.restarts) == (1, 1)
        assert stats.dead_letters == 1
        assert stats.dead_letters_by_reason == {"stopped": 1}
        (failure,) = stats.recent_failures
        assert failure.actor_type == "Echo"
        assert failure.decision == "restart"
        assert "RuntimeError: bad ping -3" in failure.traceback
        assert "Traceback" in failure.traceback
        data = stats.to_dict()
        assert data["actor_types"]["Echo"]["failures"] == 1
        assert data["recent_failures"][0]["error"] == "RuntimeError('bad ping -3')"


async def test_a_failure_record_is_bounded_however_long_the_error() -> None:
    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(Echo, SupervisorStrategy.restart(5, 10.0))
        with pytest.raises(ActorFailed):
            await addr.send(Ping(-(10**3000)))  # an exception whose repr is 3,000+ characters
        (failure,) = system.stats().recent_failures
        assert failure.error.startswith("RuntimeError('bad ping -1000")
        assert failure.error.endswith("...")
        assert len(failure.error) <= 1003
        assert len(failure.traceback) <= 8004


async def test_metrics_through_the_opentelemetry_api() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    telemetry.enable_metrics(provider)
    try:
        async with ActorSystem() as system:
            addr = system.spawn(Echo())
            for i in range(3):
                assert await addr.send(Ping(i)) == i
            addr.do_send(Ping(3))  # handled in a dispatcher turn: timed
            assert await addr.send(Ping(4)) == 4
            with pytest.raises(ActorFailed):
                await addr.send(Ping(-1))
            addr.do_send(Ping(5))  # stopped by the failure: a dead letter
            data = reader.get_metrics_data()
    finally:
        provider.shutdown()
    points: dict[str, list[Any]] = {}
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)

    def value(name: str, **attrs: str) -> float:
        found = [p.value for p in points[name] if dict(p.attributes) == attrs]
        return float(sum(found))

    assert value("cinema.actor.messages", **{"cinema.actor.type": "Echo"}) == 6
    assert value("cinema.actor.failures", **{"cinema.actor.type": "Echo"}) == 1
    assert value("cinema.dead_letters", **{"cinema.dead_letter.reason": "stopped"}) == 1
    assert value("cinema.actor.handling_time", **{"cinema.actor.type": "Echo"}) > 0
    assert "cinema.actor.mailbox_depth" in points
