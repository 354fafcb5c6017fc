"""The short form in a cluster: ``ClusterNode.serve``, ``ClusterClient.wait_for`` and a dataclass
``Message[R]`` called with ``call(msg)``, on three in-memory nodes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Self

import anyio
import pytest

from cinema import Actor, ActorSystem, Context, Message, handler
from cinema.cluster import (
    ActorNotInCluster,
    ClusterClient,
    ClusterNode,
    MemberUp,
    MemoryNetwork,
    MemoryTransport,
    Node,
    NodeStatus,
)
from cinema.remote import (
    LocalNode,
    MessageRouter,
    MsgspecSerializer,
    RemoteHandler,
    UnknownActor,
    UnknownMessageType,
)
from cinema.remote.proto import wire_pb2 as pb
from tests.cluster.support import PING, Ping, PingPong

pytestmark = pytest.mark.anyio

INTERVAL, TIMEOUT = 0.05, 2.0
DEADLINE = 10.0


@dataclass
class AddItem(Message[int]):
    name: str
    qty: int


@dataclass
class Item:
    name: str
    qty: int


@dataclass
class Contents(Message[list[Item]]):
    pass


class Cart(Actor):
    def __init__(self, where: str) -> None:
        self.where = where
        self.items: dict[str, int] = {}

    @handler
    def add(self, msg: AddItem, ctx: Context[Self]) -> int:
        self.items[msg.name] = self.items.get(msg.name, 0) + msg.qty
        return sum(self.items.values())

    @handler
    def contents(self, msg: Contents, ctx: Context[Self]) -> list[Item]:
        return [Item(name, qty) for name, qty in sorted(self.items.items())]


@asynccontextmanager
async def three_nodes(seed: int) -> AsyncIterator[tuple[ClusterNode, ClusterNode, ClusterNode]]:
    transport = MemoryTransport(MemoryNetwork(seed=seed))
    async with AsyncExitStack() as stack:
        nodes = []
        for i in (1, 2, 3):
            node = ClusterNode(
                f"n{i}",
                f"mem://n{i}",
                seeds=["mem://n1"],
                transport=transport,
                gossip_interval=INTERVAL,
                suspect_timeout=TIMEOUT,
            )
            nodes.append(await stack.enter_async_context(node))
        yield nodes[0], nodes[1], nodes[2]


async def test_serve_and_wait_for_on_three_nodes() -> None:
    async with ActorSystem() as system, three_nodes(seed=21) as (n1, n2, n3):
        cart = Cart("n2")
        with anyio.fail_after(DEADLINE):
            waited: list[tuple[str, str]] = []

            async def wait(client: ClusterClient) -> None:
                waited.append(await client.wait_for("cart", timeout=DEADLINE))

            async with anyio.create_task_group() as tg:
                # Both wait before the name exists anywhere: woken by gossip, not by polling.
                tg.start_soon(wait, ClusterClient(n1))
                tg.start_soon(wait, ClusterClient(n3))
                await anyio.wait_all_tasks_blocked()
                assert waited == []
                await n2.serve("cart", system.spawn(cart))
            assert waited == [("n2", "Cart"), ("n2", "Cart")]  # the actor's real class name
            assert n2.lookup_actor("cart") == ("n2", "Cart")

            count = await ClusterClient(n1).remote_addr("cart").call(AddItem("tea", 2))
            assert count == 2
            typed = ClusterClient(n3).remote_addr(Cart, "cart")
            assert await typed.call(AddItem("jam", 1)) == 3
            assert await typed.call(Contents()) == [Item("jam", 1), Item("tea", 2)]
            # On the hosting node itself it is resolvable at once.
            assert await ClusterClient(n2).wait_for("cart", timeout=DEADLINE) == ("n2", "Cart")
            assert await ClusterClient(n2).remote_addr("cart").call(AddItem("tea", 1)) == 4
        assert cart.items == {"tea": 3, "jam": 1}


async def test_wrong_names_fail_fast() -> None:
    async with ActorSystem() as system, three_nodes(seed=22) as (n1, n2, _n3):
        with anyio.fail_after(DEADLINE):
            await n2.serve("cart", system.spawn(Cart("n2")))
            # Registered in the cluster but served by nobody on n2: the server says so.
            await n2.register_actor("ghost", "Cart")
            client = ClusterClient(n1)
            await client.wait_for("cart", timeout=DEADLINE)
            await client.wait_for("ghost", timeout=DEADLINE)
            with pytest.raises(UnknownActor, match="'ghost'"):
                await client.remote_addr("ghost").call(AddItem("tea", 1))
            with pytest.raises(ActorNotInCluster):
                await client.remote_addr("crat").call(AddItem("tea", 1))
        with pytest.raises(TimeoutError, match="'crat'"):
            await client.wait_for("crat", timeout=0.2)
        assert await client.remote_addr("cart").call(AddItem("tea", 1)) == 1


async def test_serve_uses_the_local_node_of_a_given_router() -> None:
    transport = MemoryTransport(MemoryNetwork(seed=23))
    async with ActorSystem() as system:
        local = LocalNode("solo")
        pingpong = system.spawn(PingPong("solo"))
        router = MessageRouter(local).route(Ping, local.handler(pingpong, Ping)).build()
        async with ClusterNode(
            "solo", "mem://solo", handler=router, transport=transport, gossip_interval=INTERVAL
        ) as node:
            with anyio.fail_after(DEADLINE):
                assert node.local_node is local
                await node.serve("cart", system.spawn(Cart("solo")))
                await node.serve("pingpong", pingpong)
                client = ClusterClient(node)
                assert await client.remote_addr("cart").call(AddItem("x", 5)) == 5
                pong = await client.remote_addr("pingpong").call(PING, Ping(msg="hi"))
                assert pong.reply == "pong: hi from solo"
                assert node.lookup_actor("pingpong") == ("solo", "PingPong")


class Subscriber(Actor):
    @handler
    def add(self, msg: AddItem, ctx: Context[Self]) -> int:
        return 0

    @handler
    def member(self, msg: MemberUp, ctx: Context[Self]) -> None:
        pass


async def test_membership_events_are_never_taken_from_peers() -> None:
    """msgspec could decode a MemberUp (a dataclass), but only the runtime sends those."""
    async with ActorSystem() as system:
        node = LocalNode("n")
        node.serve("sub", system.spawn(Subscriber()))
        assert dict(node.served_types("sub")) == {"AddItem": AddItem}
        forged = MsgspecSerializer().encode(MemberUp(Node("x", "mem://x", NodeStatus.UP)))
        request = pb.Envelope(
            kind=pb.ENVELOPE_KIND_REQUEST,
            actor_name="sub",
            message_type="MemberUp",
            payload=forged,
            serializer="msgspec",
        )
        with pytest.raises(UnknownMessageType):
            await node.handle(request)


class Opaque(RemoteHandler):
    async def handle(self, envelope: pb.Envelope) -> pb.Envelope | None:
        return None


async def test_serve_needs_a_local_node() -> None:
    async with ActorSystem() as system:
        node = ClusterNode("x", "mem://x", handler=Opaque(), transport=MemoryTransport())
        with pytest.raises(TypeError, match="no LocalNode"):
            await node.serve("cart", system.spawn(Cart("x")))
