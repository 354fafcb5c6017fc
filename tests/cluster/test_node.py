"""ClusterNode and ClusterClient on real ports (TCP on loopback) and on the mem:// transport."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial

import anyio
import pytest

from cinema import ActorSystem
from cinema.cluster import (
    ActorNotInCluster,
    ClusterClient,
    ClusterError,
    ClusterNode,
    MemberDown,
    MemberEvent,
    MemberSuspect,
    MemberUp,
    MemoryNetwork,
    MemoryTransport,
    Node,
    NodeStatus,
    NodeUnavailable,
)
from cinema.remote import LocalNode, MessageRouter, RemoteClient, TcpTransport, UnknownActor
from tests.cluster.support import PING, EventLog, Ping, PingPong, eventually, free_port

pytestmark = pytest.mark.anyio

INTERVAL, TIMEOUT = 0.05, 0.4
_names = itertools.count()


def statuses(node: ClusterNode) -> dict[str, NodeStatus]:
    return {n.id: n.status for n in node.members()}


@asynccontextmanager
async def served_pingpong(
    system: ActorSystem, node_id: str
) -> AsyncIterator[tuple[PingPong, MessageRouter]]:
    actor = PingPong(node_id)
    addr = system.spawn(actor)
    local = LocalNode(node_id)
    local.expose("pingpong", addr)
    yield actor, MessageRouter(local).route(Ping, local.handler(addr, Ping))


async def test_three_nodes_over_tcp_converge_and_call_across() -> None:
    ports = [free_port() for _ in range(3)]
    addrs = [f"127.0.0.1:{p}" for p in ports]
    async with ActorSystem() as system, AsyncExitStack() as stack:
        actor, router = await stack.enter_async_context(served_pingpong(system, "node-2"))
        n1 = await stack.enter_async_context(
            ClusterNode("node-1", addrs[0], gossip_interval=INTERVAL, suspect_timeout=TIMEOUT)
        )
        n2 = await stack.enter_async_context(
            ClusterNode(
                "node-2",
                addrs[1],
                handler=router.build(),
                seeds=[addrs[0]],
                gossip_interval=INTERVAL,
                suspect_timeout=TIMEOUT,
            )
        )
        n3 = await stack.enter_async_context(
            ClusterNode(
                "node-3",
                addrs[2],
                seeds=[addrs[0]],
                gossip_interval=INTERVAL,
                suspect_timeout=TIMEOUT,
            )
        )
        expected = {"node-1": NodeStatus.UP, "node-2": NodeStatus.UP, "node-3": NodeStatus.UP}
        await eventually(lambda: all(statuses(n) == expected for n in (n1, n2, n3)))
        assert Node("node-1", addrs[0], NodeStatus.UP) in n3.members()

        await n2.register_actor("pingpong", "PingPong")
        await eventually(lambda: n3.lookup_actor("pingpong") == ("node-2", "PingPong"))
        await eventually(lambda: n1.actors() == {"pingpong": ("node-2", "PingPong")})

        remote = ClusterClient(n3).remote_addr(PingPong, "pingpong")
        pong = await remote.call(PING, Ping(msg="hello"))
        assert pong.reply == "pong: hello from node-2"
        envelope = await remote.send(Ping(msg="raw"))
        assert envelope.message_type == "cluster_test.Pong"
        await remote.do_send(Ping(msg="notify"))
        await eventually(lambda: "notify" in actor.notes)

        # many requests in flight on the one pooled connection
        results = {}

        async def one(i: int) -> None:
            results[i] = (await remote.call(PING, Ping(msg=str(i)))).reply

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(one, i)
        assert results == {i: f"pong: {i} from node-2" for i in range(50)}
        assert n3.pool.addresses.count(addrs[1]) == 1


async def test_gossip_and_actors_share_the_one_port() -> None:
    addr = f"127.0.0.1:{free_port()}"
    async with (
        ActorSystem() as system,
        served_pingpong(system, "solo") as (_, router),
        ClusterNode(
            "solo", addr, handler=router.build(), gossip_interval=INTERVAL, suspect_timeout=TIMEOUT
        ),
        RemoteClient(await TcpTransport().connect(addr)) as client,
    ):
        pong = await client.remote_addr(PingPong, "", "pingpong").call(PING, Ping(msg="x"))
        assert pong.reply == "pong: x from solo"


async def test_unknown_actor_and_down_node_fail_fast() -> None:
    network = MemoryNetwork(seed=1)
    transport = MemoryTransport(network)
    async with (
        ActorSystem() as system,
        served_pingpong(system, "b") as (_, router),
        ClusterNode(
            "a", "mem://a", transport=transport, gossip_interval=INTERVAL, suspect_timeout=TIMEOUT
        ) as a,
    ):
        if True:
            client = ClusterClient(a)
            with pytest.raises(ActorNotInCluster) as info:
                await client.remote_addr(PingPong, "nobody").call(PING, Ping())
            assert isinstance(info.value, UnknownActor)
            with anyio.CancelScope() as crash:
                async with ClusterNode(
                    "b",
                    "mem://b",
                    handler=router.build(),
                    seeds=["mem://a"],
                    transport=transport,
                    gossip_interval=INTERVAL,
                    suspect_timeout=TIMEOUT,
                ) as b:
                    await b.register_actor("pingpong", "PingPong")
                    await eventually(lambda: a.lookup_actor("pingpong") is not None)
                    remote = client.remote_addr(PingPong, "pingpong")
                    assert (await remote.call(PING, Ping(msg="1"))).reply == "pong: 1 from b"
                    crash.cancel()  # b dies without leaving
                    await anyio.sleep_forever()
            with pytest.raises(NodeUnavailable):
                await remote.call(PING, Ping(msg="2"))
            await eventually(lambda: statuses(a).get("b") is NodeStatus.DOWN)
            with pytest.raises(ActorNotInCluster):
                await remote.call(PING, Ping(msg="3"))


async def test_crash_is_seen_as_suspect_then_down_with_events() -> None:
    network = MemoryNetwork(seed=2)
    transport = MemoryTransport(network)
    async with ActorSystem() as system:
        log = EventLog()
        watcher = system.spawn(log)
        async with ClusterNode(
            "a", "mem://a", transport=transport, gossip_interval=INTERVAL, suspect_timeout=TIMEOUT
        ) as a:
            a.subscribe(watcher)
            with anyio.CancelScope() as crash:
                async with ClusterNode(
                    "b",
                    "mem://b",
                    seeds=["mem://a"],
                    transport=transport,
                    gossip_interval=INTERVAL,
                    suspect_timeout=TIMEOUT,
                ):
                    await log.wait_for(lambda ev: MemberUp(Node("b", "mem://b")) in ev)
                    crash.cancel()
                    await anyio.sleep_forever()
            with anyio.fail_after(5):
                await log.wait_for(lambda ev: any(isinstance(e, MemberDown) for e in ev))
            kinds = [type(e) for e in log.events if e.node.id == "b"]
            # (a machine busy enough may add a false suspicion and its refutation before)
            assert kinds[0] is MemberUp
            assert kinds[-2:] == [MemberSuspect, MemberDown]
            assert a.unsubscribe(watcher)
            assert not a.unsubscribe(watcher)


async def test_graceful_exit_leaves() -> None:
    transport = MemoryTransport(MemoryNetwork(seed=3))
    async with ClusterNode(
        "a", "mem://a", transport=transport, gossip_interval=INTERVAL, suspect_timeout=TIMEOUT
    ) as a:
        async with ClusterNode(
            "b",
            "mem://b",
            seeds=["mem://a"],
            transport=transport,
            gossip_interval=INTERVAL,
            suspect_timeout=TIMEOUT,
        ):
            await eventually(lambda: statuses(a).get("b") is NodeStatus.UP)
        await eventually(lambda: statuses(a).get("b") in (NodeStatus.LEFT, None))
        await eventually(lambda: "b" not in statuses(a))


async def test_start_does_not_wait_for_seeds_that_are_not_up_yet() -> None:
    transport = MemoryTransport(MemoryNetwork(seed=4))
    async with ClusterNode(
        "late",
        "mem://late",
        seeds=["mem://seed"],
        transport=transport,
        gossip_interval=INTERVAL,
        suspect_timeout=TIMEOUT,
    ) as late:
        assert statuses(late) == {"late": NodeStatus.UP}
        await anyio.sleep(0.1)  # a few failed rounds against the missing seed
        async with ClusterNode(
            "seed",
            "mem://seed",
            transport=transport,
            gossip_interval=INTERVAL,
            suspect_timeout=TIMEOUT,
        ) as seed:
            await eventually(lambda: statuses(seed).get("late") is NodeStatus.UP)
            await eventually(lambda: statuses(late).get("seed") is NodeStatus.UP)


async def test_restart_under_the_same_id_comes_back_up() -> None:
    transport = MemoryTransport(MemoryNetwork(seed=5))
    async with ClusterNode(
        "a", "mem://a", transport=transport, gossip_interval=INTERVAL, suspect_timeout=TIMEOUT
    ) as a:
        with anyio.CancelScope() as crash:
            async with ClusterNode(
                "b",
                "mem://b",
                seeds=["mem://a"],
                transport=transport,
                gossip_interval=INTERVAL,
                suspect_timeout=TIMEOUT,
            ) as b:
                first = b.incarnation
                await eventually(lambda: statuses(a).get("b") is NodeStatus.UP)
                crash.cancel()
                await anyio.sleep_forever()
        await eventually(lambda: statuses(a).get("b") is NodeStatus.DOWN)
        async with ClusterNode(
            "b",
            "mem://b",
            seeds=["mem://a"],
            transport=transport,
            gossip_interval=INTERVAL,
            suspect_timeout=TIMEOUT,
        ) as b:
            assert b.incarnation > first
            await eventually(lambda: statuses(a).get("b") is NodeStatus.UP)


async def test_partition_on_the_memory_transport() -> None:
    network = MemoryNetwork(seed=6)
    transport = MemoryTransport(network)
    async with AsyncExitStack() as stack:
        nodes = []
        for name in "abcd":
            seeds = ["mem://a"] if name != "a" else []
            nodes.append(
                await stack.enter_async_context(
                    ClusterNode(
                        name,
                        f"mem://{name}",
                        seeds=seeds,
                        transport=transport,
                        gossip_interval=INTERVAL,
                        suspect_timeout=TIMEOUT,
                    )
                )
            )
        await eventually(lambda: all(len(statuses(n)) == 4 for n in nodes))
        network.partition(["a", "b"], ["c", "d"])
        await eventually(lambda: statuses(nodes[0])["c"] is NodeStatus.DOWN)
        await eventually(lambda: statuses(nodes[3])["a"] is NodeStatus.DOWN)
        network.heal()
        await eventually(lambda: all(set(statuses(n).values()) == {NodeStatus.UP} for n in nodes))


async def test_building_blocks() -> None:
    transport = MemoryTransport(MemoryNetwork(seed=7))
    one = ClusterNode("one", "mem://one", transport=transport)
    two = ClusterNode("two", "mem://two", transport=transport)
    async with anyio.create_task_group() as tg:
        tg.start_soon(one.start_gossip_server)
        tg.start_soon(two.start_server, None, None)
        await eventually(
            lambda: one.listening_address is not None and two.listening_address is not None
        )
        one.add_member(Node("two", "mem://two"))
        tg.start_soon(one.start_periodic_gossip, 0.05, 0.5)
        tg.start_soon(two.start_periodic_gossip, 0.05, 0.5)
        await eventually(lambda: statuses(two).get("one") is NodeStatus.UP)
        await one.register_actor("x", "X")
        await eventually(lambda: two.lookup_actor("x") == ("one", "X"))
        assert await one.unregister_actor("x")
        await eventually(lambda: two.lookup_actor("x") is None)
        three = ClusterNode("three", "mem://three", transport=transport)
        tg.start_soon(three.start_gossip_server)
        await eventually(lambda: three.listening_address is not None)
        assert not await three.join(["mem://nowhere"])  # not up: kept, retried each round
        assert await three.join(["mem://one"])
        assert statuses(three).get("one") is NodeStatus.UP
        tg.start_soon(three.start_periodic_gossip, 0.05, 0.5)
        await eventually(lambda: statuses(two).get("three") is NodeStatus.UP)
        await two.leave()
        await eventually(lambda: statuses(one).get("two") in (NodeStatus.LEFT, None))
        tg.cancel_scope.cancel()


async def test_events_reach_a_subscribed_actor_as_typed_messages() -> None:
    transport = MemoryTransport(MemoryNetwork(seed=8))
    async with ActorSystem() as system:
        log = EventLog()
        addr = system.spawn(log)
        async with ClusterNode(
            "a", "mem://a", transport=transport, gossip_interval=INTERVAL, suspect_timeout=TIMEOUT
        ) as a:
            a.subscribe(addr)
            async with ClusterNode(
                "b",
                "mem://b",
                seeds=["mem://a"],
                transport=transport,
                gossip_interval=INTERVAL,
                suspect_timeout=TIMEOUT,
            ):
                await log.wait_for(lambda ev: len(ev) >= 1)
            with anyio.fail_after(5):
                await log.wait_for(lambda ev: len(ev) >= 2)
        seen = [(type(e).__name__, e.node.id) for e in log.events]
        assert seen[0] == ("MemberUp", "b")
        assert seen[-1] == ("MemberLeft", "b")
        assert all(isinstance(e, MemberEvent) for e in log.events)


def sees_this_life(a: ClusterNode, incarnation: int) -> bool:
    return (
        a.lookup_actor("pingpong") is not None
        and a.status_of("b") is NodeStatus.UP
        and a.incarnation_of("b") == incarnation
    )


async def test_calls_follow_a_restarted_node_on_a_fresh_connection() -> None:
    transport = MemoryTransport(MemoryNetwork(seed=9))
    async with (
        ActorSystem() as system,
        served_pingpong(system, "b") as (_, router),
        ClusterNode(
            "a", "mem://a", transport=transport, gossip_interval=INTERVAL, suspect_timeout=TIMEOUT
        ) as a,
    ):
        remote = ClusterClient(a).remote_addr(PingPong, "pingpong")
        for life in range(2):
            with anyio.CancelScope() as crash:
                async with ClusterNode(
                    "b",
                    "mem://b",
                    handler=router.build(),
                    seeds=["mem://a"],
                    transport=transport,
                    gossip_interval=INTERVAL,
                    suspect_timeout=TIMEOUT,
                ) as b:
                    await b.register_actor("pingpong", "PingPong")
                    await a.wait_until(partial(sees_this_life, a, b.incarnation))
                    pong = await remote.call(PING, Ping(msg=str(life)))
                    assert pong.reply == f"pong: {life} from b"
                    crash.cancel()
                    await anyio.sleep_forever()


async def test_hostile_gossip_on_the_port_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    from cinema.cluster import GOSSIP_EXTENSION
    from cinema.cluster.proto import gossip_pb2 as gpb

    transport = MemoryTransport(MemoryNetwork(seed=10))
    async with ClusterNode(
        "a", "mem://a", transport=transport, gossip_interval=INTERVAL, suspect_timeout=TIMEOUT
    ) as a:
        before = a.members()
        hostile = [
            b"\xff\xfe garbage",
            gpb.Gossip(
                members=[gpb.MemberState(id="a", addr="mem://evil", status=gpb.MEMBER_STATUS_UP)]
            ).SerializeToString(),
            gpb.Gossip(
                members=[
                    gpb.MemberState(id=f"n{i}", addr=f"mem://n{i}", status=gpb.MEMBER_STATUS_UP)
                    for i in range(1100)
                ]
            ).SerializeToString(),
            *(
                gpb.Gossip(
                    members=[gpb.MemberState(id="x", addr=bad, status=gpb.MEMBER_STATUS_UP)]
                ).SerializeToString()
                for bad in ("127.0.0.1:99999", "nocolon", "bogus://x")
            ),
        ]
        async with RemoteClient(await transport.connect("mem://a")) as client:
            for data in hostile:
                reply = await client.request_extension(GOSSIP_EXTENSION, data)
                assert reply == b""
        assert a.members() == before
        rejected = [r for r in caplog.records if "rejected gossip" in r.getMessage()]
        assert len(rejected) == len(hostile)


async def test_bind_separates_the_listening_address_from_the_advertised_one() -> None:
    port = free_port()
    async with (
        ClusterNode(
            "a",
            f"localhost:{port}",
            bind=f"127.0.0.1:{port}",
            gossip_interval=INTERVAL,
            suspect_timeout=TIMEOUT,
        ) as a,
        ClusterNode(
            "b",
            f"127.0.0.1:{free_port()}",
            seeds=[f"localhost:{port}"],
            gossip_interval=INTERVAL,
            suspect_timeout=TIMEOUT,
        ) as b,
    ):
        assert a.listening_address is not None
        assert "127.0.0.1" in a.listening_address
        await b.wait_until(lambda: b.status_of("a") is NodeStatus.UP)
        assert b.member("a") == Node("a", f"localhost:{port}", NodeStatus.UP)


async def test_a_shared_secret_keeps_strangers_out() -> None:
    transport = MemoryTransport(MemoryNetwork(seed=11))

    def node(name: str, secret: str, seeds: list[str]) -> ClusterNode:
        return ClusterNode(
            name,
            f"mem://{name}",
            seeds=seeds,
            secret=secret,
            transport=transport,
            gossip_interval=INTERVAL,
            suspect_timeout=TIMEOUT,
        )

    async with (
        node("a", "s3cret", []) as a,
        node("b", "s3cret", ["mem://a"]) as b,
        node("c", "wrong", ["mem://a"]) as c,
    ):
        await a.wait_until(lambda: a.status_of("b") is NodeStatus.UP)
        await anyio.sleep(0.3)  # c keeps knocking, in vain
        assert a.status_of("c") is None
        assert c.status_of("a") is None
        assert b.status_of("c") is None


async def test_an_address_in_use_fails_at_entry() -> None:
    addr = f"127.0.0.1:{free_port()}"
    async with ClusterNode("a", addr, gossip_interval=INTERVAL):
        with pytest.raises(OSError, match="in use"):
            async with ClusterNode("b", addr, gossip_interval=INTERVAL):
                pass


async def test_a_connection_idle_too_long_is_replaced_before_use() -> None:
    transport = MemoryTransport(MemoryNetwork(seed=12))
    async with ActorSystem() as system, served_pingpong(system, "a") as (_, router):
        a = ClusterNode("a", "mem://a", handler=router.build(), transport=transport)
        b = ClusterNode("b", "mem://b", transport=transport)
        b.pool.max_idle = 0.1
        async with anyio.create_task_group() as tg:  # servers only: no periodic gossip
            tg.start_soon(a.start_server)
            await eventually(lambda: a.listening_address is not None)
            await a.register_actor("pingpong", "PingPong")
            assert await b.join(["mem://a"])
            remote = ClusterClient(b).remote_addr(PingPong, "pingpong")
            assert (await remote.call(PING, Ping(msg="1"))).reply == "pong: 1 from a"
            first = b.pool.peek("mem://a")
            assert first is not None
            assert (await remote.call(PING, Ping(msg="2"))).reply == "pong: 2 from a"
            assert b.pool.peek("mem://a") is first  # in use: kept
            await anyio.sleep(0.3)
            assert (await remote.call(PING, Ping(msg="3"))).reply == "pong: 3 from a"
            assert b.pool.peek("mem://a") is not first
            assert first.is_closed
            await b.aclose()
            assert not b.pool.addresses
            tg.cancel_scope.cancel()


def test_seeds_may_be_any_iterable_and_exclude_the_node_itself() -> None:
    node = ClusterNode("a", "mem://a", seeds=(s for s in ["mem://a", "mem://b", "mem://c"]))
    assert node._engine._seeds == ["mem://b", "mem://c"]


async def test_a_slow_lossy_memory_network_neither_crashes_nor_splits_the_nodes() -> None:
    transport = MemoryTransport(MemoryNetwork(seed=21, delay=0.3, loss=0.05))
    async with AsyncExitStack() as stack:
        nodes = [
            await stack.enter_async_context(
                ClusterNode(
                    f"n{i}",
                    f"mem://n{i}",
                    seeds=["mem://n0"] if i else [],
                    transport=transport,
                    gossip_interval=0.1,
                    suspect_timeout=2.0,
                )
            )
            for i in range(5)
        ]
        await eventually(
            lambda: all(
                len(statuses(n)) == 5 and set(statuses(n).values()) == {NodeStatus.UP}
                for n in nodes
            ),
            timeout=30,
        )


async def test_a_non_loopback_node_without_a_secret_refuses_to_start() -> None:
    node = ClusterNode("a", f"0.0.0.0:{free_port()}")
    with pytest.raises(ClusterError, match="without a shared secret"):
        async with node:
            pass
    async with ClusterNode("a", f"0.0.0.0:{free_port()}", insecure=True) as a:
        assert a.listening_address is not None
    async with ClusterNode("a", f"0.0.0.0:{free_port()}", secret="s3cret") as a:
        assert a.listening_address is not None


async def test_calls_are_bounded_and_fail_fast_once_their_node_stops_answering() -> None:
    network = MemoryNetwork(seed=22)
    transport = MemoryTransport(network)
    async with (
        ActorSystem() as system,
        served_pingpong(system, "b") as (_, router),
        ClusterNode(
            "a", "mem://a", transport=transport, gossip_interval=INTERVAL, suspect_timeout=TIMEOUT
        ) as a,
        ClusterNode(
            "b",
            "mem://b",
            handler=router.build(),
            seeds=["mem://a"],
            transport=transport,
            gossip_interval=INTERVAL,
            suspect_timeout=TIMEOUT,
        ) as b,
    ):
        await b.register_actor("pingpong", "PingPong")
        await eventually(lambda: a.lookup_actor("pingpong") is not None)
        remote = ClusterClient(a, default_timeout=0.3).remote_addr(PingPong, "pingpong")
        assert (await remote.call(PING, Ping(msg="1"))).reply == "pong: 1 from b"
        network.partition(["a"], ["b"])  # b's frames vanish; the connection stays open
        with pytest.raises(TimeoutError):
            await remote.call(PING, Ping(msg="2"))  # no timeout given: the default bounds it
        patient = ClusterClient(a, default_timeout=60).remote_addr(PingPong, "pingpong")
        with anyio.fail_after(20):  # far less than the 60 s the call may take
            with pytest.raises(NodeUnavailable):
                # a gives the connection up (gossip on it times out twice in a row, or b goes
                # Down): the call fails with it
                await patient.call(PING, Ping(msg="3"))
        await eventually(lambda: a.status_of("b") is NodeStatus.DOWN, timeout=20)
        assert "mem://b" not in a.pool.addresses  # and a Down node's connection is gone
