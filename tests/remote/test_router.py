"""LocalNode, node.handler, node.expose and MessageRouter, without a network."""

from __future__ import annotations

import pytest

from cinema import ActorSystem
from cinema.remote import (
    Envelope,
    LocalNode,
    MessageRouter,
    UnknownActor,
    UnknownMessageType,
    UnknownSerializer,
    rpc,
)
from cinema.remote.proto import wire_pb2 as pb
from tests.remote.protos.remote_test_pb2 import Add, AddResult, Echo
from tests.remote.support import Calculator

pytestmark = pytest.mark.anyio


def request(message: Add | Echo, actor: str = "", node: str = "") -> Envelope:
    return pb.Envelope(
        kind=pb.ENVELOPE_KIND_REQUEST,
        correlation_id=7,
        target_node=node,
        actor_name=actor,
        message_type=message.DESCRIPTOR.full_name,
        payload=message.SerializeToString(),
    )


async def test_route_by_type_and_by_name() -> None:
    async with ActorSystem() as system:
        first, second = system.spawn(Calculator(100)), system.spawn(Calculator(200))
        node = LocalNode("n")
        node.expose("second", second)
        router = MessageRouter().route(Add, node.handler(first, Add)).build()
        by_type = await router.handle(request(Add(n=1)))
        by_name = await router.handle(request(Add(n=1), actor="second"))
        assert by_type is not None
        assert by_name is not None
        assert AddResult.FromString(by_type.payload).value == 101
        assert AddResult.FromString(by_name.payload).value == 201
        assert by_type.correlation_id == 7
        assert by_type.kind == pb.ENVELOPE_KIND_REPLY
        # A name the node does not expose is unknown (routing by type is opt-in).
        with pytest.raises(UnknownActor, match="'nobody'"):
            await router.handle(request(Add(n=1), actor="nobody"))
        # An exposed name serves types without any route.
        echoed = await router.handle(request(Echo(text="hi"), actor="second"))
        assert echoed is not None
        assert Echo.FromString(echoed.payload).text == "hi"
        assert node.unexpose("second")
        assert not node.unexpose("second")
        with pytest.raises(UnknownActor, match="'second'"):
            await router.handle(request(Echo(text="hi"), actor="second"))
        with pytest.raises(UnknownMessageType, match="no route"):
            await router.handle(request(Echo(text="hi")))
        with pytest.raises(UnknownActor, match="'other'"):
            await router.handle(request(Add(n=1), node="other"))


async def test_route_by_type_is_the_opt_in_fallback_for_unknown_names() -> None:
    async with ActorSystem() as system:
        first, second = system.spawn(Calculator(100)), system.spawn(Calculator(200))
        node = LocalNode("n", route_by_type=True)
        node.expose("second", second)
        router = MessageRouter().route(Add, node.handler(first, Add)).build()
        fallback = await router.handle(request(Add(n=1), actor="nobody"))
        assert fallback is not None
        assert AddResult.FromString(fallback.payload).value == 101
        by_name = await router.handle(request(Add(n=1), actor="second"))
        assert by_name is not None
        assert AddResult.FromString(by_name.payload).value == 201
        with pytest.raises(UnknownActor, match="no route"):  # no route for the type either
            await router.handle(request(Echo(text="hi"), actor="nobody"))


async def test_a_single_handler_serves_as_the_server_handler() -> None:
    async with ActorSystem() as system:
        handler = LocalNode("n").handler(system.spawn(Calculator()), Add)
        reply = await handler.handle(request(Add(n=3)))
        assert reply is not None
        assert AddResult.FromString(reply.payload).value == 3
        with pytest.raises(UnknownMessageType):
            await handler.handle(request(Echo(text="x")))


async def test_router_builder_refuses_mistakes() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Calculator())
        node, other = LocalNode("n"), LocalNode("m")
        builder = MessageRouter().route(Add, node.handler(addr, Add))
        with pytest.raises(ValueError, match="routed already"):
            builder.route(Add, node.handler(addr, Add))
        with pytest.raises(ValueError, match="cannot serve"):
            builder.route(Echo, node.handler(addr, Add))
        with pytest.raises(ValueError, match="same LocalNode"):
            builder.route(Echo, other.handler(addr, Echo))
        built = builder.build()
        builder.route(Echo, node.handler(addr, Echo))
        assert sorted(built.routes) == ["remote_test.Add"]  # later routes do not leak
        with pytest.raises(UnknownSerializer, match="no serializer handles <class 'object'>"):
            node.handler(addr, object)
        with pytest.raises(TypeError, match="message classes"):
            rpc(Add, 5)  # type: ignore[arg-type]  # the mistake under test
