"""Cluster calls are traced across nodes; node.stats() and the stats extension."""

from __future__ import annotations

import json

import anyio
import pytest
from opentelemetry.trace import SpanKind

from cinema import ActorSystem
from cinema.cluster import (
    STATS_EXTENSION,
    ClusterClient,
    ClusterNode,
    MemoryNetwork,
    MemoryTransport,
    NodeStatus,
)
from cinema.remote import LocalNode, MessageRouter
from tests.backends import NETWORK_BACKENDS, BackendParam, network_backend
from tests.cluster.support import PING, Ping, PingPong, eventually

from .conftest import Spans

pytestmark = pytest.mark.anyio

INTERVAL, TIMEOUT = 0.05, 0.4


@pytest.fixture(params=NETWORK_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> BackendParam:
    return network_backend(request)


def _router(system: ActorSystem, node_id: str) -> MessageRouter:
    addr = system.spawn(PingPong(node_id))
    local = LocalNode(node_id)
    local.expose("pingpong", addr)
    return MessageRouter(local).route(Ping, local.handler(addr, Ping))


async def test_a_cluster_call_is_one_trace_and_the_nodes_count(spans: Spans) -> None:
    tracer = spans.provider.get_tracer("test")
    transport = MemoryTransport(MemoryNetwork(seed=3))
    options = {"transport": transport, "gossip_interval": INTERVAL, "suspect_timeout": TIMEOUT}
    async with (
        ActorSystem() as system,
        ClusterNode("a", "mem://a", **options) as a,  # type: ignore[arg-type]
    ):
        with anyio.CancelScope() as crash:
            async with ClusterNode(
                "b",
                "mem://b",
                handler=_router(system, "b").build(),
                seeds=["mem://a"],
                **options,  # type: ignore[arg-type]
            ) as b:
                await b.register_actor("pingpong", "PingPong")
                await eventually(lambda: a.lookup_actor("pingpong") is not None)
                remote = ClusterClient(a).remote_addr(PingPong, "pingpong")
                with tracer.start_as_current_span("caller") as outer:
                    pong = await remote.call(PING, Ping(msg="traced"))
                assert pong.reply == "pong: traced from b"

                stats = a.stats()
                assert stats.members_by_status["Up"] == 2
                assert stats.registry_size == 1
                assert stats.gossip_bytes_out > 0
                assert stats.gossip_bytes_in > 0
                assert stats.gossip_exchanges > 0
                served = b.stats().server
                assert served is not None
                assert served.requests >= 1

                # The stats extension: what the dashboard reads, over the node's own port.
                client = await a.pool.get("mem://b")
                document = json.loads(await client.request_extension(STATS_EXTENSION, b""))
                assert document["node"]["node_id"] == "b"
                assert {m["id"] for m in document["node"]["members"]} == {"a", "b"}
                assert document["registry"] == {"pingpong": {"node": "b", "type": "PingPong"}}
                kinds = {
                    name
                    for system_stats in document["systems"]
                    for name in system_stats["actor_types"]
                }
                assert "PingPong" in kinds
                crash.cancel()  # b dies without leaving
                await anyio.sleep_forever()
        await eventually(lambda: a.status_of("b") is NodeStatus.DOWN)
        after = a.stats()
        assert after.suspicions >= 1
        assert after.members_by_status["Down"] == 1
        assert after.registry_size == 0

    trace_id = outer.get_span_context().trace_id
    wire = spans.named("pingpong/cluster_test.Ping")
    client_span = next(s for s in wire if s.kind == SpanKind.CLIENT)
    server_span = next(s for s in wire if s.kind == SpanKind.SERVER)
    assert client_span.parent is not None
    assert client_span.parent.span_id == outer.get_span_context().span_id
    assert server_span.parent is not None
    assert server_span.parent.span_id == client_span.context.span_id
    assert server_span.context.trace_id == trace_id
    handled = next(s for s in spans.named("PingPong/Ping") if s.kind == SpanKind.SERVER)
    assert handled.context.trace_id == trace_id
