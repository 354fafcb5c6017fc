"""Acceptance: API.md "Cluster" (with README "Cluster" and docs/cluster.md), tested through
the public API only, with real nodes over loopback TCP on ephemeral ports."""

from __future__ import annotations

import inspect
from typing import assert_type

import anyio
import pytest

import cinema
from cinema import ActorSystem
from cinema.cluster import (
    DEFAULT_GOSSIP_INTERVAL,
    DEFAULT_SUSPECT_TIMEOUT,
    ActorNotInCluster,
    ClusterClient,
    ClusterNode,
    ClusterRemoteAddr,
    MemberDown,
    MemberLeft,
    MemberSuspect,
    MemberUp,
    Node,
    NodeStatus,
    NodeUnavailable,
)
from cinema.remote import (
    ConnectionLost,
    Envelope,
    LocalNode,
    MessageRouter,
    RemoteClient,
    RemoteHandler,
    TcpTransport,
    UnknownActor,
)
from cinema.testing import free_port
from tests.acceptance.cluster_support import (
    EventRecorder,
    Pinger,
    RunningNode,
    addr,
    all_up,
    fast,
)
from tests.acceptance.remote_support import (
    PING,
    Barrier,
    Ping,
    Pong,
    TcpProxy,
)
from tests.acceptance.remote_support import accept_races as accept_races
from tests.acceptance.remote_support import anyio_backend as anyio_backend
from tests.acceptance.support import Outcome

pytestmark = pytest.mark.anyio

DEADLINE = 10.0  # only turns a hang into a failure


def pinger_router(local: LocalNode, system: ActorSystem, *names: str) -> RemoteHandler:
    """Serves one Pinger per name (exposed under that name), the first also by type."""
    pingers = [system.spawn(Pinger(name)) for name in names]
    for name, pinger in zip(names, pingers, strict=True):
        local.expose(name, pinger)
    return MessageRouter(local).route(Ping, local.handler(pingers[0], Ping)).build()


# --- names, fields, defaults -----------------------------------------------------------------


def test_seed_names_and_node_fields() -> None:
    import cinema.cluster as cluster

    for name in ("ClusterNode", "Node", "NodeStatus", "ClusterClient", "ClusterRemoteAddr"):
        assert name in cluster.__all__, name
    node = Node("n1", "127.0.0.1:7001", NodeStatus.SUSPECT)
    assert (node.id, node.addr, node.status) == ("n1", "127.0.0.1:7001", NodeStatus.SUSPECT)
    assert {NodeStatus.UP, NodeStatus.SUSPECT, NodeStatus.DOWN, NodeStatus.LEFT} <= set(NodeStatus)
    assert len({NodeStatus.UP, NodeStatus.SUSPECT, NodeStatus.DOWN, NodeStatus.LEFT}) == 4


def test_documented_defaults() -> None:
    """README: gossip_interval 0.5 s, suspect_timeout 5.0 s."""
    assert DEFAULT_GOSSIP_INTERVAL == 0.5
    assert DEFAULT_SUSPECT_TIMEOUT == 5.0
    parameters = inspect.signature(ClusterNode).parameters
    assert parameters["gossip_interval"].default == 0.5
    assert parameters["suspect_timeout"].default == 5.0


def test_cluster_errors_are_cinema_errors_with_documented_bases() -> None:
    assert issubclass(ActorNotInCluster, UnknownActor)
    assert issubclass(NodeUnavailable, ConnectionLost)
    assert issubclass(ActorNotInCluster, cinema.CinemaError)
    assert issubclass(NodeUnavailable, cinema.CinemaError)


# --- membership ------------------------------------------------------------------------------


async def test_nodes_join_through_seeds_and_list_members_including_self() -> None:
    p1, p2, p3 = free_port(), free_port(), free_port()
    async with (
        ClusterNode("node-1", addr(p1), **fast()) as node1,
        ClusterNode("node-2", addr(p2), seeds=[addr(p1)], **fast()) as node2,
        ClusterNode("node-3", addr(p3), seeds=[addr(p1)], **fast()) as node3,
    ):
        nodes = (node1, node2, node3)
        with anyio.fail_after(DEADLINE):
            for node in nodes:
                await node.wait_until(all_up(node, "node-1", "node-2", "node-3"))
        for node in nodes:
            members = node.members()
            assert_type(members, list[Node])
            assert [(m.id, m.addr, m.status) for m in members] == [
                ("node-1", addr(p1), NodeStatus.UP),
                ("node-2", addr(p2), NodeStatus.UP),
                ("node-3", addr(p3), NodeStatus.UP),
            ]


async def test_a_lone_node_lists_itself() -> None:
    port = free_port()
    async with ClusterNode("alone", addr(port), **fast()) as node:
        assert [(m.id, m.addr, m.status) for m in node.members()] == [
            ("alone", addr(port), NodeStatus.UP)
        ]
        assert node.status_of("alone") is NodeStatus.UP
        assert node.status_of("stranger") is None


async def test_unreachable_seeds_are_retried_in_the_background() -> None:
    p1, p2 = free_port(), free_port()
    with anyio.fail_after(DEADLINE):
        # The seed is not up: entering the block must not fail nor wait for it.
        async with ClusterNode("early", addr(p1), seeds=[addr(p2)], **fast()) as early:
            assert [m.id for m in early.members()] == ["early"]
            async with ClusterNode("late", addr(p2), **fast()) as late:
                await early.wait_until(all_up(early, "early", "late"))
                await late.wait_until(all_up(late, "early", "late"))


async def test_graceful_exit_shows_left_then_the_node_drops_out() -> None:
    p1, p2 = free_port(), free_port()
    async with (
        ActorSystem(shutdown_timeout=0.2) as system,
        ClusterNode("node-1", addr(p1), **fast(suspect_timeout=0.5)) as node1,
        anyio.create_task_group() as tg,
    ):
        recorder = EventRecorder()
        node1.subscribe(system.spawn(recorder))
        node2 = ClusterNode("node-2", addr(p2), seeds=[addr(p1)], **fast(suspect_timeout=0.5))
        running = RunningNode(node2)
        with anyio.fail_after(DEADLINE):
            await tg.start(running.run)
            await node2.register_actor("svc", "Service")
            await node1.wait_until(lambda: node1.lookup_actor("svc") == ("node-2", "Service"))
            await running.stop()  # leaves the block normally: a graceful leave
            await recorder.wait_event(MemberLeft, "node-2")
            # Left nodes' actors vanish from the registry.
            await node1.wait_until(lambda: node1.status_of("node-2") is not NodeStatus.UP)
            assert node1.lookup_actor("svc") is None
            # ... and the left node drops out of the view.
            await node1.wait_until(lambda: "node-2" not in [m.id for m in node1.members()])
        assert NodeStatus.LEFT in recorder.statuses("node-2")
        assert NodeStatus.DOWN not in recorder.statuses("node-2")
        left = [e for _, e in recorder.events if isinstance(e, MemberLeft)]
        assert left[0].node.status is NodeStatus.LEFT


async def test_crashed_node_is_suspect_after_timeout_and_down_after_twice() -> None:
    """Up -> Suspect after suspect_timeout, Down after twice that, counted from the last news;
    the bystander's repetition of the dead node's last entry is not news."""
    timeout, interval = 0.3, 0.05
    p1, p2, p3 = free_port(), free_port(), free_port()
    options = fast(suspect_timeout=timeout, gossip_interval=interval)
    async with (
        ActorSystem(shutdown_timeout=0.2) as system,
        ClusterNode("node-1", addr(p1), **options) as node1,
        ClusterNode("node-3", addr(p3), seeds=[addr(p1)], **options) as node3,
        anyio.create_task_group() as tg,
    ):
        recorder, bystander = EventRecorder(), EventRecorder()
        node1.subscribe(system.spawn(recorder))
        node3.subscribe(system.spawn(bystander))
        running = RunningNode(ClusterNode("node-2", addr(p2), seeds=[addr(p1)], **options))
        with anyio.fail_after(DEADLINE):
            await tg.start(running.run)
            await running.node.register_actor("svc", "Service")
            for node in (node1, node3):
                await node.wait_until(all_up(node, "node-1", "node-2", "node-3"))
            await node1.wait_until(lambda: node1.lookup_actor("svc") is not None)
            await node3.wait_until(lambda: node3.lookup_actor("svc") is not None)
            crashed_at = anyio.current_time()
            running.crash()
            suspect_at = await recorder.wait_event(MemberSuspect, "node-2", crashed_at)
            down_at = await recorder.wait_event(MemberDown, "node-2", crashed_at)
            bystander_down_at = await bystander.wait_event(MemberDown, "node-2", crashed_at)
        # The last news came at most about one round before the crash.
        assert suspect_at - crashed_at >= timeout - 2 * interval
        assert down_at - crashed_at >= 2 * timeout - 2 * interval
        assert down_at - suspect_at >= timeout - 2 * interval
        # Gossip between node-1 and node-3 repeating node-2's last entry did not keep it alive,
        # nor did it make the bystander declare it Down earlier.
        assert bystander_down_at - crashed_at >= 2 * timeout - 2 * interval
        # Not grossly late either (a wide margin for a busy machine).
        assert down_at - crashed_at <= 2 * timeout + 3.0
        after_crash = [
            e.node.status for t, e in recorder.events if t >= crashed_at and e.node.id == "node-2"
        ]
        assert after_crash[0] is NodeStatus.SUSPECT
        assert NodeStatus.UP not in after_crash
        assert node3.status_of("node-2") is NodeStatus.DOWN
        assert node1.status_of("node-2") is NodeStatus.DOWN
        assert node1.member("node-2") == Node("node-2", addr(p2), NodeStatus.DOWN)
        # A Down node's actors vanish from every registry.
        assert node1.lookup_actor("svc") is None
        assert node3.lookup_actor("svc") is None


async def test_restarted_node_with_the_same_id_comes_back_up() -> None:
    timeout = 0.3
    p1, p2 = free_port(), free_port()
    options = fast(suspect_timeout=timeout)
    async with (
        ClusterNode("node-1", addr(p1), **options) as node1,
        anyio.create_task_group() as tg,
    ):
        first = RunningNode(ClusterNode("node-2", addr(p2), seeds=[addr(p1)], **options))
        with anyio.fail_after(DEADLINE):
            await tg.start(first.run)
            await node1.wait_until(all_up(node1, "node-2"))
            old_incarnation = first.node.incarnation
            first.crash()
            await first.exited.wait()
            await node1.wait_until(lambda: node1.status_of("node-2") is NodeStatus.DOWN)
            second = RunningNode(ClusterNode("node-2", addr(p2), seeds=[addr(p1)], **options))
            await tg.start(second.run)
            await node1.wait_until(all_up(node1, "node-2"))
            await second.node.wait_until(all_up(second.node, "node-1", "node-2"))
        assert second.node.incarnation > old_incarnation
        await second.stop()


async def test_live_node_refutes_suspicion_after_a_partition() -> None:
    """Each node is advertised through a relay (``bind=`` vs ``addr``); cutting both relays
    makes each suspect the other; once healed, the live node refutes and is Up again."""
    timeout = 0.3
    pa, pb = free_port(), free_port()
    options = fast(suspect_timeout=timeout)
    async with (
        ActorSystem(shutdown_timeout=0.2) as system,
        TcpProxy(pa).running() as relay_a,
        TcpProxy(pb).running() as relay_b,
        ClusterNode("node-a", relay_a.address, bind=addr(pa), **options) as node_a,
        ClusterNode(
            "node-b", relay_b.address, bind=addr(pb), seeds=[relay_a.address], **options
        ) as node_b,
    ):
        recorder = EventRecorder()
        node_a.subscribe(system.spawn(recorder))
        with anyio.fail_after(DEADLINE):
            await node_a.wait_until(all_up(node_a, "node-a", "node-b"))
            await node_b.wait_until(all_up(node_b, "node-a", "node-b"))
            incarnation = node_b.incarnation
            relay_a.cut()
            relay_b.cut()
            suspected_at = await recorder.wait_event(MemberSuspect, "node-b")
            relay_a.heal()
            relay_b.heal()
            await recorder.wait_event(MemberUp, "node-b", suspected_at)
            await node_a.wait_until(all_up(node_a, "node-a", "node-b"))
        assert node_b.incarnation > incarnation  # node-b refuted with a new incarnation


async def test_bind_listens_elsewhere_than_the_advertised_address() -> None:
    pa, pb = free_port(), free_port()
    async with (
        ActorSystem(shutdown_timeout=0.2) as system,
        TcpProxy(pb).running() as relay,
    ):
        local = LocalNode("node-b")
        router = pinger_router(local, system, "pinger")
        async with (
            ClusterNode("node-a", addr(pa), **fast()) as node_a,
            ClusterNode(
                "node-b",
                relay.address,
                bind=addr(pb),
                handler=router,
                seeds=[addr(pa)],
                **fast(),
            ) as node_b,
        ):
            with anyio.fail_after(DEADLINE):
                await node_a.wait_until(all_up(node_a, "node-b"))
                await node_b.wait_until(all_up(node_b, "node-a"))
                # Peers know node-b by its advertised address, not its listening one.
                assert node_a.member("node-b") == Node("node-b", relay.address, NodeStatus.UP)
                assert [m.addr for m in node_b.members()] == [addr(pa), relay.address]
                assert node_b.listening_address is not None
                assert str(pb) in node_b.listening_address
                await node_b.register_actor("pinger", "Pinger")
                await node_a.wait_until(lambda: node_a.lookup_actor("pinger") is not None)
                remote = ClusterClient(node_a).remote_addr(Pinger, "pinger")
                pong = await remote.call(PING, Ping(msg="via relay"))
                assert pong.reply == "pong: via relay from pinger"
            assert relay.accepted >= 1  # node-a reached node-b through the advertised address


# --- building blocks -------------------------------------------------------------------------


async def test_building_blocks_run_until_cancelled() -> None:
    p1, p2, p3 = free_port(), free_port(), free_port()
    node1 = ClusterNode("bb-1", addr(p1), gossip_interval=0.05)
    node2 = ClusterNode("bb-2", addr(p2), gossip_interval=0.05)
    node3 = ClusterNode("bb-3", addr(p3), gossip_interval=0.05)
    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as tg:
            tg.start_soon(node1.start_server, p1)
            tg.start_soon(node2.start_gossip_server, p2)
            tg.start_soon(node3.start_server, p3)
            node1.add_member(Node("bb-2", addr(p2)))
            assert [m.id for m in node1.members()] == ["bb-1", "bb-2"]
            tg.start_soon(node1.start_periodic_gossip, 0.05, 3.0)
            tg.start_soon(node2.start_periodic_gossip, 0.05, 3.0)
            await node2.wait_until(all_up(node2, "bb-1", "bb-2"))
            # node-1 has gossiped with node-2, and its own server task is listening by now.
            await node1.wait_until(lambda: node1.listening_address is not None)
            assert await node3.join([addr(p1)]) is True
            tg.start_soon(node3.start_periodic_gossip, 0.05, 3.0)
            for node in (node1, node2, node3):
                await node.wait_until(all_up(node, "bb-1", "bb-2", "bb-3"))
            await node3.leave()
            await node1.wait_until(lambda: node1.status_of("bb-3") is not NodeStatus.UP)
            assert node1.status_of("bb-3") in (NodeStatus.LEFT, None)
            tg.cancel_scope.cancel()


async def test_join_with_unreachable_seeds_returns_false() -> None:
    port = free_port()
    node = ClusterNode("joiner", addr(port), **fast())
    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as tg:
            tg.start_soon(node.start_server, port)
            assert await node.join([addr(free_port())]) is False
            tg.cancel_scope.cancel()


# --- registry --------------------------------------------------------------------------------


async def test_registry_spreads_and_withdraws_by_gossip() -> None:
    p1, p2 = free_port(), free_port()
    async with (
        ClusterNode("node-1", addr(p1), **fast()) as node1,
        ClusterNode("node-2", addr(p2), seeds=[addr(p1)], **fast()) as node2,
    ):
        assert node1.lookup_actor("store") is None
        with anyio.fail_after(DEADLINE):
            await node2.register_actor("store", "UserStore")
            assert node2.lookup_actor("store") == ("node-2", "UserStore")
            await node1.wait_until(lambda: node1.lookup_actor("store") is not None)
            assert node1.lookup_actor("store") == ("node-2", "UserStore")
            assert node1.actors() == {"store": ("node-2", "UserStore")}
            assert await node2.unregister_actor("store") is True
            assert node2.lookup_actor("store") is None
            await node1.wait_until(lambda: node1.lookup_actor("store") is None)
            assert await node2.unregister_actor("store") is False
            assert await node1.unregister_actor("never-registered") is False
        assert node1.actors() == {}


async def test_registry_conflicts_resolve_the_same_way_everywhere() -> None:
    """The earliest registration (registering node's clock) wins, even against a smaller id."""
    p1, p2 = free_port(), free_port()
    async with (
        ClusterNode("node-1", addr(p1), **fast()) as node1,
        ClusterNode("node-2", addr(p2), seeds=[addr(p1)], **fast()) as node2,
    ):
        with anyio.fail_after(DEADLINE):
            await node1.wait_until(all_up(node1, "node-1", "node-2"))
            await node2.register_actor("dup", "OnNode2")
            await node1.wait_until(lambda: node1.lookup_actor("dup") is not None)
            await anyio.sleep(0.02)  # a later wall-clock millisecond for node-1's registration
            await node1.register_actor("dup", "OnNode1")
            await node1.register_actor("marker", "Marker")
            await node2.wait_until(lambda: node2.lookup_actor("marker") is not None)
        assert node1.lookup_actor("dup") == ("node-2", "OnNode2")
        assert node2.lookup_actor("dup") == ("node-2", "OnNode2")
        assert node1.actors()["dup"] == node2.actors()["dup"]


# --- ClusterClient ---------------------------------------------------------------------------


async def test_cluster_client_send_call_do_send() -> None:
    p1, p2 = free_port(), free_port()
    async with ActorSystem(shutdown_timeout=0.2) as system:
        pinger = Pinger("node-2")
        local = LocalNode("node-2")
        local.expose("pingpong", system.spawn(pinger))
        router = MessageRouter(local).route(Ping, local.handler(system.spawn(Pinger("x")), Ping))
        async with (
            ClusterNode("node-1", addr(p1), **fast()) as node1,
            ClusterNode(
                "node-2", addr(p2), handler=router.build(), seeds=[addr(p1)], **fast()
            ) as node2,
        ):
            with anyio.fail_after(DEADLINE):
                await node2.register_actor("pingpong", "Pinger")
                await node1.wait_until(lambda: node1.lookup_actor("pingpong") is not None)
                remote = ClusterClient(node1).remote_addr(Pinger, "pingpong")
                assert isinstance(remote, ClusterRemoteAddr)
                assert_type(remote, ClusterRemoteAddr[Pinger])
                envelope = await remote.send(Ping(msg="raw"))
                assert isinstance(envelope, Envelope)
                assert envelope.message_type == "cluster_test.Pong"
                assert Pong.FromString(envelope.payload).reply == "pong: raw from node-2"
                pong = await remote.call(PING, Ping(msg="typed"), timeout=DEADLINE)
                assert_type(pong, Pong)
                assert pong.reply == "pong: typed from node-2"
                assert inspect.iscoroutinefunction(remote.do_send)
                await remote.do_send(Ping(msg="one-way"))
                await pinger.wait_seen("one-way")
                # The node can call an actor registered on itself too.
                own = ClusterClient(node2).remote_addr(Pinger, "pingpong")
                assert (await own.call(PING, Ping(msg="self"))).reply == "pong: self from node-2"


async def test_cluster_client_unknown_actor_fails_fast() -> None:
    async with ClusterNode("node-1", addr(free_port()), **fast()) as node1:
        remote = ClusterClient(node1).remote_addr(Pinger, "nobody")
        with anyio.fail_after(1.0):
            with pytest.raises(ActorNotInCluster):
                await remote.call(PING, Ping(msg="?"))
            with pytest.raises(UnknownActor):
                await remote.send(Ping(msg="?"))
            with pytest.raises(UnknownActor):
                await remote.do_send(Ping(msg="?"))


async def test_cluster_client_fails_fast_for_a_crashed_or_down_node() -> None:
    timeout = 0.3
    p1, p2 = free_port(), free_port()
    options = fast(suspect_timeout=timeout)
    async with ActorSystem(shutdown_timeout=0.2) as system:
        local = LocalNode("node-2")
        router = pinger_router(local, system, "pingpong")
        async with (
            ClusterNode("node-1", addr(p1), **options) as node1,
            anyio.create_task_group() as tg,
        ):
            running = RunningNode(
                ClusterNode("node-2", addr(p2), handler=router, seeds=[addr(p1)], **options)
            )
            remote = ClusterClient(node1).remote_addr(Pinger, "pingpong")
            with anyio.fail_after(DEADLINE):
                await tg.start(running.run)
                await running.node.register_actor("pingpong", "Pinger")
                await node1.wait_until(lambda: node1.lookup_actor("pingpong") is not None)
                assert (await remote.call(PING, Ping(msg="a"))).reply == "pong: a from pingpong"
                running.crash()
                await running.exited.wait()
            # Still registered (not yet Down) but unreachable: a clear error, not a hang.
            with anyio.fail_after(3.0), pytest.raises(ConnectionLost):
                await remote.call(PING, Ping(msg="b"))
            with anyio.fail_after(DEADLINE):
                await node1.wait_until(lambda: node1.status_of("node-2") is NodeStatus.DOWN)
            with anyio.fail_after(1.0), pytest.raises((UnknownActor, ConnectionLost)):
                await remote.call(PING, Ping(msg="c"))


async def test_cluster_client_many_requests_in_flight_on_the_pooled_connection() -> None:
    count = 10
    barrier = Barrier(count)
    p1, p2 = free_port(), free_port()
    async with ActorSystem(shutdown_timeout=0.2) as system, TcpProxy(p2).running() as relay:
        local = LocalNode("node-2")
        first = None
        for i in range(count):
            worker = system.spawn(Pinger(f"w{i}", barrier))
            local.expose(f"w{i}", worker)
            first = first or worker
        assert first is not None
        router = MessageRouter(local).route(Ping, local.handler(first, Ping)).build()
        async with (
            ClusterNode("node-1", addr(p1), **fast()) as node1,
            ClusterNode(
                "node-2", relay.address, bind=addr(p2), handler=router, seeds=[addr(p1)], **fast()
            ) as node2,
        ):
            with anyio.fail_after(DEADLINE):
                for i in range(count):
                    await node2.register_actor(f"w{i}", "Pinger")
                await node1.wait_until(lambda: len(node1.actors()) == count)
                client = ClusterClient(node1)
                await client.remote_addr(Pinger, "w0").do_send(Ping(msg="warm-up"))
                connections_before = relay.accepted
                replies: dict[int, str] = {}

                async def call(i: int) -> None:
                    pong = await client.remote_addr(Pinger, f"w{i}").call(PING, Ping(msg="m"))
                    replies[i] = pong.reply

                # Each handler waits until all have arrived: all must be in flight at once.
                async with anyio.create_task_group() as tg:
                    for i in range(count):
                        tg.start_soon(call, i)
            assert replies == {i: f"pong: m from w{i}" for i in range(count)}
            # One pooled connection carried them (allow one re-made by a gossip hiccup).
            assert relay.accepted - connections_before <= 1


# --- further edges of the same sentences ------------------------------------------------------


async def test_address_in_use_fails_on_entering() -> None:
    port = free_port()
    async with ClusterNode("first", addr(port), **fast()):
        with pytest.raises(OSError, match=r"(?i)in use"):
            async with ClusterNode("second", addr(port), **fast()):
                pass  # pragma: no cover - entering must fail


async def test_wait_until_returns_at_once_when_the_predicate_holds() -> None:
    async with ClusterNode("alone", addr(free_port()), **fast()) as node:
        with anyio.fail_after(1.0):
            await node.wait_until(lambda: True)


async def test_membership_spreads_transitively_and_events_report_up() -> None:
    p1, p2, p3 = free_port(), free_port(), free_port()
    async with (
        ActorSystem(shutdown_timeout=0.2) as system,
        ClusterNode("node-1", addr(p1), **fast()) as node1,
    ):
        recorder = EventRecorder()
        recorder_addr = system.spawn(recorder)
        node1.subscribe(recorder_addr)
        async with (
            ClusterNode("node-2", addr(p2), seeds=[addr(p1)], **fast()) as node2,
            ClusterNode("node-3", addr(p3), seeds=[addr(p2)], **fast()) as node3,
        ):
            with anyio.fail_after(DEADLINE):
                for node in (node1, node2, node3):
                    await node.wait_until(all_up(node, "node-1", "node-2", "node-3"))
                await recorder.wait_event(MemberUp, "node-2")
                await recorder.wait_event(MemberUp, "node-3")
            ups = [e for _, e in recorder.events if isinstance(e, MemberUp)]
            assert {e.node.id for e in ups} == {"node-2", "node-3"}
            assert all(e.node.status is NodeStatus.UP for e in ups)
            assert node1.member("node-3") == Node("node-3", addr(p3), NodeStatus.UP)
            assert node1.unsubscribe(recorder_addr) is True
            assert node1.unsubscribe(recorder_addr) is False


async def test_leaving_by_an_exception_is_still_a_graceful_leave() -> None:
    p1, p2 = free_port(), free_port()
    async with (
        ActorSystem(shutdown_timeout=0.2) as system,
        ClusterNode("node-1", addr(p1), **fast(suspect_timeout=0.5)) as node1,
    ):
        recorder = EventRecorder()
        node1.subscribe(system.spawn(recorder))
        with anyio.fail_after(DEADLINE):
            # Accept the KeyError bare or wrapped: whether it is wrapped is tested below.
            with pytest.RaisesGroup(KeyError, allow_unwrapped=True, flatten_subgroups=True):
                async with ClusterNode(
                    "node-2", addr(p2), seeds=[addr(p1)], **fast(suspect_timeout=0.5)
                ) as node2:
                    await node2.wait_until(all_up(node2, "node-1", "node-2"))
                    await node1.wait_until(all_up(node1, "node-2"))
                    raise KeyError("application error")
            await recorder.wait_event(MemberLeft, "node-2")
        assert NodeStatus.DOWN not in recorder.statuses("node-2")


async def test_an_exception_from_the_node_block_propagates_unwrapped() -> None:
    with pytest.raises(KeyError):
        async with ClusterNode("node-1", addr(free_port()), **fast()):
            raise KeyError("application error")


async def test_a_node_restarted_while_suspect_or_after_leaving_is_up_again() -> None:
    timeout = 0.3
    p1, p2 = free_port(), free_port()
    options = fast(suspect_timeout=timeout)
    async with (
        ActorSystem(shutdown_timeout=0.2) as system,
        ClusterNode("node-1", addr(p1), **options) as node1,
        anyio.create_task_group() as tg,
    ):
        recorder = EventRecorder()
        node1.subscribe(system.spawn(recorder))

        def node2() -> RunningNode:
            return RunningNode(ClusterNode("node-2", addr(p2), seeds=[addr(p1)], **options))

        with anyio.fail_after(DEADLINE):
            life = node2()
            await tg.start(life.run)
            await node1.wait_until(all_up(node1, "node-2"))
            life.crash()
            await life.exited.wait()
            suspected = await recorder.wait_event(MemberSuspect, "node-2")
            life = node2()  # back before it is Down
            await tg.start(life.run)
            await recorder.wait_event(MemberUp, "node-2", suspected)
            await node1.wait_until(all_up(node1, "node-2"))
            await life.stop()  # graceful leave
            left = await recorder.wait_event(MemberLeft, "node-2")
            life = node2()  # a new life after leaving
            await tg.start(life.run)
            await recorder.wait_event(MemberUp, "node-2", left)
            await node1.wait_until(all_up(node1, "node-2"))
            await life.node.wait_until(all_up(life.node, "node-1", "node-2"))
            await life.stop()


async def test_cluster_client_follows_an_actor_that_moves() -> None:
    p1, p2, p3 = free_port(), free_port(), free_port()
    async with ActorSystem(shutdown_timeout=0.2) as system:
        router2 = pinger_router(LocalNode("node-2"), system, "mover")
        router3 = pinger_router(LocalNode("node-3"), system, "mover")
        async with (
            ClusterNode("node-1", addr(p1), **fast()) as node1,
            ClusterNode("node-2", addr(p2), handler=router2, seeds=[addr(p1)], **fast()) as node2,
            ClusterNode("node-3", addr(p3), handler=router3, seeds=[addr(p1)], **fast()) as node3,
        ):
            remote = ClusterClient(node1).remote_addr(Pinger, "mover")
            with anyio.fail_after(DEADLINE):
                await node2.register_actor("mover", "Pinger")
                await node1.wait_until(lambda: node1.lookup_actor("mover") == ("node-2", "Pinger"))
                envelope = await remote.send(Ping(msg="a"))
                assert envelope.message_type == "cluster_test.Pong"
                assert await node2.unregister_actor("mover")
                await node3.register_actor("mover", "Pinger")
                await node1.wait_until(lambda: node1.lookup_actor("mover") == ("node-3", "Pinger"))
                await remote.call(PING, Ping(msg="b"))
                await node3.wait_until(lambda: True)
            moved = await ClusterClient(node1).remote_addr(Pinger, "mover").send(Ping(msg="c"))
            assert Pong.FromString(moved.payload).reply == "pong: c from mover"


async def test_cluster_client_to_a_node_that_left_fails_fast() -> None:
    p1, p2 = free_port(), free_port()
    async with ActorSystem(shutdown_timeout=0.2) as system:
        router = pinger_router(LocalNode("node-2"), system, "svc")
        async with (
            ClusterNode("node-1", addr(p1), **fast()) as node1,
            anyio.create_task_group() as tg,
        ):
            running = RunningNode(
                ClusterNode("node-2", addr(p2), handler=router, seeds=[addr(p1)], **fast())
            )
            remote = ClusterClient(node1).remote_addr(Pinger, "svc")
            with anyio.fail_after(DEADLINE):
                await tg.start(running.run)
                await running.node.register_actor("svc", "Pinger")
                await node1.wait_until(lambda: node1.lookup_actor("svc") is not None)
                await remote.call(PING, Ping(msg="before"))
                await running.stop()
                await node1.wait_until(lambda: node1.status_of("node-2") is not NodeStatus.UP)
            with anyio.fail_after(1.0), pytest.raises((UnknownActor, ConnectionLost)):
                await remote.call(PING, Ping(msg="after"))


async def test_a_node_without_handler_answers_actor_requests_with_a_clear_error() -> None:
    p1, p2 = free_port(), free_port()
    async with (
        ClusterNode("node-1", addr(p1), **fast()) as node1,
        ClusterNode("node-2", addr(p2), seeds=[addr(p1)], **fast()) as node2,
    ):
        with anyio.fail_after(DEADLINE):
            await node2.register_actor("ghost", "Ghost")
            await node1.wait_until(lambda: node1.lookup_actor("ghost") is not None)
            with pytest.raises(cinema.CinemaError):
                await ClusterClient(node1).remote_addr(Pinger, "ghost").call(PING, Ping(msg="?"))


async def test_a_dead_pooled_connection_is_dropped_and_made_again() -> None:
    pa, pb = free_port(), free_port()
    async with ActorSystem(shutdown_timeout=0.2) as system, TcpProxy(pb).running() as relay:
        router = pinger_router(LocalNode("node-b"), system, "svc")
        async with (
            ClusterNode("node-a", addr(pa), **fast()) as node_a,
            ClusterNode(
                "node-b", relay.address, bind=addr(pb), handler=router, seeds=[addr(pa)], **fast()
            ) as node_b,
        ):
            remote = ClusterClient(node_a).remote_addr(Pinger, "svc")
            with anyio.fail_after(DEADLINE):
                await node_b.register_actor("svc", "Pinger")
                await node_a.wait_until(lambda: node_a.lookup_actor("svc") is not None)
                await remote.call(PING, Ping(msg="1"))
                relay.cut()  # every relayed connection is closed under the pool's feet
                relay.heal()
                # This call may find the dead connection: then it fails (it is not retried).
                second = Outcome()
                await second.run(lambda: remote.call(PING, Ping(msg="2")))
                if second.error is not None:
                    assert isinstance(second.error, NodeUnavailable), repr(second.error)
                    assert second.error.node_id == "node-b"
                pong = await remote.call(PING, Ping(msg="3"))
            assert pong.reply == "pong: 3 from svc"


async def test_registry_conflict_loser_takes_over_when_the_winner_withdraws() -> None:
    p1, p2 = free_port(), free_port()
    async with (
        ClusterNode("node-1", addr(p1), **fast()) as node1,
        ClusterNode("node-2", addr(p2), seeds=[addr(p1)], **fast()) as node2,
    ):
        with anyio.fail_after(DEADLINE):
            await node1.wait_until(all_up(node1, "node-1", "node-2"))
            await node1.register_actor("dup", "OnNode1")
            await node2.wait_until(lambda: node2.lookup_actor("dup") is not None)
            await anyio.sleep(0.02)  # a later wall-clock millisecond for node-2's registration
            await node2.register_actor("dup", "OnNode2")
            await node2.register_actor("marker", "Marker")
            await node1.wait_until(lambda: node1.lookup_actor("marker") is not None)
            assert node1.lookup_actor("dup") == node2.lookup_actor("dup") == ("node-1", "OnNode1")
            assert await node1.unregister_actor("dup") is True
            assert node1.lookup_actor("dup") == ("node-2", "OnNode2")
            await node2.wait_until(lambda: node2.lookup_actor("dup") == ("node-2", "OnNode2"))


async def test_a_new_life_does_not_bring_back_the_old_lifes_actors() -> None:
    timeout = 0.3
    p1, p2 = free_port(), free_port()
    options = fast(suspect_timeout=timeout)
    async with (
        ActorSystem(shutdown_timeout=0.2) as system,
        ClusterNode("node-1", addr(p1), **options) as node1,
        anyio.create_task_group() as tg,
    ):
        recorder = EventRecorder()
        node1.subscribe(system.spawn(recorder))
        first = RunningNode(ClusterNode("node-2", addr(p2), seeds=[addr(p1)], **options))
        with anyio.fail_after(DEADLINE):
            await tg.start(first.run)
            await first.node.register_actor("old-svc", "Old")
            await node1.wait_until(lambda: node1.lookup_actor("old-svc") is not None)
            first.crash()
            await first.exited.wait()
            second = RunningNode(ClusterNode("node-2", addr(p2), seeds=[addr(p1)], **options))
            await tg.start(second.run)  # back at once, before node-1 finds the crash
            await second.node.register_actor("new-svc", "New")
            await node1.wait_until(lambda: node1.lookup_actor("new-svc") is not None)
            # The new incarnation replaced everything node-1 knew of node-2's actors.
            assert node1.lookup_actor("old-svc") is None
            assert node1.actors() == {"new-svc": ("node-2", "New")}
            assert NodeStatus.DOWN not in recorder.statuses("node-2")
            await second.stop()


async def test_cluster_client_call_timeout_raises_timeout_error() -> None:
    p1, p2 = free_port(), free_port()
    async with ActorSystem(shutdown_timeout=0.2) as system:
        local = LocalNode("node-2")
        stuck = system.spawn(Pinger("stuck", Barrier(2)))  # never opens: one caller only
        local.expose("stuck", stuck)
        router = MessageRouter(local).route(Ping, local.handler(stuck, Ping)).build()
        async with (
            ClusterNode("node-1", addr(p1), **fast()) as node1,
            ClusterNode("node-2", addr(p2), handler=router, seeds=[addr(p1)], **fast()) as node2,
        ):
            with anyio.fail_after(DEADLINE):
                await node2.register_actor("stuck", "Pinger")
                await node1.wait_until(lambda: node1.lookup_actor("stuck") is not None)
                remote = ClusterClient(node1).remote_addr(Pinger, "stuck")
                with pytest.raises(TimeoutError):
                    await remote.call(PING, Ping(msg="?"), timeout=0.2)
                with pytest.raises(TimeoutError):
                    await remote.send(Ping(msg="?"), timeout=0.1)
                # Gossip on the same pooled connection goes on: node-2 is still Up.
                assert node1.status_of("node-2") is NodeStatus.UP


async def test_own_address_in_seeds_is_ignored() -> None:
    p1, p2 = free_port(), free_port()
    async with (
        ClusterNode("node-1", addr(p1), seeds=[addr(p1)], **fast()) as node1,
        ClusterNode("node-2", addr(p2), seeds=[addr(p2), addr(p1)], **fast()) as node2,
    ):
        with anyio.fail_after(DEADLINE):
            await node1.wait_until(all_up(node1, "node-1", "node-2"))
            await node2.wait_until(all_up(node2, "node-1", "node-2"))
        assert [m.id for m in node1.members()] == ["node-1", "node-2"]


async def test_one_port_serves_gossip_and_plain_remote_clients() -> None:
    p1, p2 = free_port(), free_port()
    async with ActorSystem(shutdown_timeout=0.2) as system:
        router = pinger_router(LocalNode("node-2"), system, "pingpong")
        async with (
            ClusterNode("node-1", addr(p1), **fast()) as node1,
            ClusterNode("node-2", addr(p2), handler=router, seeds=[addr(p1)], **fast()),
        ):
            with anyio.fail_after(DEADLINE):
                await node1.wait_until(all_up(node1, "node-1", "node-2"))
                conn = await TcpTransport().connect(addr(p2))
                async with RemoteClient(conn) as client:
                    remote = client.remote_addr(Pinger, "node-2", "pingpong")
                    pong = await remote.call(PING, Ping(msg="direct"))
                assert pong.reply == "pong: direct from pingpong"
                assert node1.status_of("node-2") is NodeStatus.UP


async def test_a_call_pending_on_a_hung_node_fails_once_the_node_is_given_up() -> None:
    """The node stops answering (connection open, nothing forwarded): a call waiting without
    timeout must not hang forever; at the latest once the node is Down it fails clearly."""
    timeout = 0.3
    pa, pb = free_port(), free_port()
    options = fast(suspect_timeout=timeout)
    async with ActorSystem(shutdown_timeout=0.2) as system, TcpProxy(pb).running() as relay:
        router = pinger_router(LocalNode("node-b"), system, "svc")
        async with (
            ClusterNode("node-a", addr(pa), **options) as node_a,
            ClusterNode(
                "node-b", relay.address, bind=addr(pb), handler=router, seeds=[addr(pa)], **options
            ) as node_b,
        ):
            remote = ClusterClient(node_a).remote_addr(Pinger, "svc")
            pending = Outcome()
            with anyio.fail_after(DEADLINE):
                await node_b.register_actor("svc", "Pinger")
                await node_a.wait_until(lambda: node_a.lookup_actor("svc") is not None)
                await remote.call(PING, Ping(msg="warm-up"))
                relay.freeze()
                await pending.run(lambda: remote.call(PING, Ping(msg="lost")))
            relay.thaw()
            assert isinstance(pending.error, (UnknownActor, ConnectionLost)), repr(pending.error)
