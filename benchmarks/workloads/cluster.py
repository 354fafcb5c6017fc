"""Cluster membership at scale and under faults (simulated), and the cost of cluster lookups.

The simulated workloads run the nodes' real membership engine (:class:`cinema.cluster.Simulation`
over the in-memory network) with the default timing: a gossip round every 0.5 s, suspect_timeout
5 s (10 rounds). Figures are counted in rounds and bytes, so they do not depend on the machine,
and each run is reproducible from its seed. For comparison (published figures): SWIM detects a
crash in O(1) protocol periods and disseminates in O(log N); memberlist/Serf (Lifeguard) report a
50x reduction of false positives over SWIM under slow or lossy members, push/pull every 30 s and
reconnect to failed members every 30 s for 24 h (Serf).

- ``gossip[N]``: a converged cluster of N nodes. The rounds until a joiner (through one seed) is
  known Up everywhere and until the joiner knows every member and registered actor (targets
  ``<= 2 * log2(N) + 2``), the rounds until a crash is Down everywhere (``<= 2 * 10 + 3``), and
  the bytes each node sends per round: gossip in steady state, plus periodic push/pull amortized
  (a measured full sync, divided by the rounds between a node's syncs). Target: flat, within 2x
  of N=10.
- ``loss[N,P%]``: P% independent loss for 100 rounds: false Suspect and false Down verdicts
  (any node about any live node); metric ``clean_rounds`` = rounds before the first false Down
  (100 when there is none).
- ``pause[30]``: a node paused for 4 suspect timeouts comes back; false verdicts about healthy
  nodes after it resumes (``clean_rounds`` as above, over 60 rounds) and rounds to converge.
- ``heal[30]``: a 10-minute partition into two halves; rounds until the cluster is whole again.
- ``call_lookup[asyncio]``: two cluster nodes on loopback TCP in one process;
  ``ClusterRemoteAddr.call`` (registry lookup + pooled connection) against ``RemoteAddr.call``
  on the very same connection, slices interleaved. Target: the cluster call keeps >= 0.9x the
  direct call's rate (lookup cost < 10%).
"""

from __future__ import annotations

import math
import socket
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Self

from google.protobuf.wrappers_pb2 import Int64Value

from benchmarks.harness import SLICES, Metrics, Target, Workload, clock, run_anyio, slice_sizes
from cinema import Actor, Context, handler

if TYPE_CHECKING:
    from cinema.cluster import Simulation

INTERVAL = 0.5
SUSPECT_ROUNDS = 10
TIMEOUT = SUSPECT_ROUNDS * INTERVAL
LOSS_ROUNDS = 100


def _sim(n: int, seed: int) -> Simulation:
    from cinema.cluster import Simulation

    sim = Simulation(seed=seed, gossip_interval=INTERVAL, suspect_timeout=TIMEOUT)
    sim.add_cluster(f"n{i:04d}" for i in range(n))
    return sim


def _gossip(n: int) -> Metrics:
    from cinema.cluster import NodeStatus

    sim = _sim(n, seed=n)
    for i in range(0, n, max(1, n // 50)):
        sim.node(f"n{i:04d}").register_actor(f"actor{i}", "Worker")
    sim.run_rounds(30)  # the registrations' rumors die down: steady state
    before = dict(sim.bytes_sent)
    steady_rounds = 4
    sim.run_rounds(steady_rounds)
    sent = sum(sim.bytes_sent[i] - before[i] for i in before)
    gossip_bytes = sent / n / steady_rounds

    # One push/pull between two members, measured; a node starts one every
    # sync_interval * max(1, N / 32) seconds and answers about as many.
    a, b = sim.node("n0000"), sim.node(f"n{n - 1:04d}")
    sync_bytes = 0
    a.start_sync(b.addr, sim.now)
    pending = [(a, b.addr, out.data) for out in a.take_outgoing()]
    while pending:
        sender, addr, data = pending.pop()
        receiver = sim.node(addr.removeprefix("mem://"))
        sync_bytes += len(data)
        reply = receiver.receive(data, sim.now, peer=sender.addr)
        if reply is not None:
            sync_bytes += len(reply)
            sender.receive(reply, sim.now, peer=receiver.addr, reply=False)
        for out in sender.take_outgoing() + receiver.take_outgoing():
            origin = sender if out.addr == receiver.addr else receiver
            if out.expects_reply and out.addr in (sender.addr, receiver.addr):
                pending.append((origin, out.addr, out.data))
    sync_rounds = sim.sync_interval * max(1.0, (n - 1) / 32) / INTERVAL
    pushpull_bytes = sync_bytes / sync_rounds

    joiner = sim.add_node("joiner", seeds=["n0000"])
    members, actors = n + 1, len(sim.node("n0000").actors())
    joined = sim.run_until(lambda: sim.everyone_sees("joiner", NodeStatus.UP), timeout=100)
    if joined is None:
        raise RuntimeError("the join did not reach every node in 100 rounds")
    view = sim.run_until(
        lambda: len(joiner.members(sim.now)) == members and len(joiner.actors()) == actors,
        timeout=100,
    )
    if view is None:
        raise RuntimeError("the joiner did not learn the cluster in 100 rounds")
    sim.run_rounds(3)
    victim = f"n{n // 2:04d}"
    sim.kill(victim)
    down = sim.run_until(lambda: sim.everyone_sees(victim, NodeStatus.DOWN), timeout=100)
    if down is None:
        raise RuntimeError("the dead node was not Down everywhere in 100 rounds")
    return {
        "join_rounds": joined / INTERVAL,
        "joiner_view_rounds": max(view / INTERVAL, 0.5),  # 0: learnt within the round
        "down_rounds": down / INTERVAL,
        "bytes_per_node_round": gossip_bytes + pushpull_bytes,
        "gossip_bytes_per_node_round": gossip_bytes,
        "pushpull_bytes_per_node_round": pushpull_bytes,
    }


def _clean_rounds(sim: Simulation, start: float, rounds: int) -> float:
    from cinema.cluster import NodeStatus

    alive = set(sim.running) - set(sim.paused)
    first = min(
        (t for t, _, s, st in sim.verdicts if st is NodeStatus.DOWN and s in alive and t >= start),
        default=None,
    )
    return float(rounds) if first is None else (first - start) / INTERVAL


def _loss(loss: float, n: int) -> Metrics:
    from cinema.cluster import NodeStatus

    sim = _sim(n, seed=7)
    sim.run_rounds(3)
    sim.network.loss = loss
    start = sim.now
    sim.run_rounds(LOSS_ROUNDS)
    return {
        "clean_rounds": _clean_rounds(sim, start, LOSS_ROUNDS),
        "false_suspect": float(sim.false_verdicts(NodeStatus.SUSPECT, since=start)),
        "false_down": float(sim.false_verdicts(NodeStatus.DOWN, since=start)),
    }


def _pause(n: int) -> Metrics:
    from cinema.cluster import NodeStatus

    sim = _sim(n, seed=11)
    sim.run_rounds(3)
    sim.pause("n0003")
    sim.run(4 * TIMEOUT)
    start = sim.now
    sim.resume("n0003")
    back = sim.run_until(sim.converged, timeout=60 * INTERVAL)
    sim.run(max(0.0, start + 60 * INTERVAL - sim.now))
    healthy = [i for i in sim.running if i != "n0003"]
    return {
        "clean_rounds": _clean_rounds(sim, start, 60),
        "converged_rounds": math.inf if back is None else max(back / INTERVAL, 0.5),
        "false_suspect": float(
            sim.false_verdicts(NodeStatus.SUSPECT, healthy=healthy, since=start)
        ),
        "false_down": float(sim.false_verdicts(NodeStatus.DOWN, healthy=healthy, since=start)),
    }


def _heal(n: int) -> Metrics:
    sim = _sim(n, seed=13)
    sim.run_rounds(3)
    half = n // 2
    sim.network.partition(
        [sim.address(f"n{i:04d}") for i in range(half)],
        [sim.address(f"n{i:04d}") for i in range(half, n)],
    )
    sim.run(600.0)
    sim.network.heal()
    took = sim.run_until(sim.converged, timeout=200 * INTERVAL)
    if took is None:
        raise RuntimeError("the partition did not heal in 200 rounds")
    return {"heal_rounds": max(took / INTERVAL, 0.5)}


class Echo(Actor):
    @handler
    def echo(self, msg: Int64Value, ctx: Context[Self]) -> Int64Value:
        return msg


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _call_lookup(n: int) -> Metrics:
    import anyio

    from cinema import ActorSystem
    from cinema.cluster import ClusterClient, ClusterNode
    from cinema.remote import LocalNode, MessageRouter, rpc

    echo = rpc(Int64Value, Int64Value)
    message = Int64Value(value=42)
    a_addr, b_addr = f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"
    async with ActorSystem() as system:
        actor = system.spawn(Echo())
        local = LocalNode("a")
        local.expose("echo", actor)
        router = MessageRouter(local).route(Int64Value, local.handler(actor, Int64Value)).build()
        async with (
            ClusterNode("a", a_addr, handler=router) as a,
            ClusterNode("b", b_addr, seeds=[a_addr]) as b,
        ):
            await a.register_actor("echo", "Echo")
            with anyio.fail_after(30):
                await b.wait_until(lambda: b.lookup_actor("echo") is not None)
            cluster_addr = ClusterClient(b).remote_addr(Echo, "echo")
            direct_addr = (await b.pool.get(a_addr)).remote_addr(Echo, "", "echo")
            timer = clock()

            def batch(
                call: Callable[[], Awaitable[Int64Value]],
            ) -> Callable[[int], Awaitable[float]]:
                async def run(k: int) -> float:
                    start = timer()
                    for _ in range(k):
                        await call()
                    return timer() - start

                return run

            cluster = batch(partial(cluster_addr.call, echo, message))
            direct = batch(partial(direct_addr.call, echo, message))
            warmup, size = slice_sizes(n)
            await cluster(warmup)
            await direct(warmup)
            best_cluster = best_direct = math.inf
            for _ in range(SLICES):  # interleaved, so that load bursts hit both alike
                best_direct = min(best_direct, await direct(size))
                best_cluster = min(best_cluster, await cluster(size))
    cluster_rate, direct_rate = size / best_cluster, size / best_direct
    return {
        "cluster_calls_per_s": cluster_rate,
        "direct_calls_per_s": direct_rate,
        "cluster_vs_direct": cluster_rate / direct_rate,
    }


def _call_lookup_run(n: int) -> Metrics:
    main: Callable[[], Awaitable[Metrics]] = partial(_call_lookup, n)
    return run_anyio(main, "asyncio")


def _gossip_workload(n: int, quick: int) -> Workload:
    return Workload(
        name=f"gossip[{n}]",
        title=f"simulated cluster of {n} nodes (quick: {quick}): rounds to join / to learn the"
        " cluster / to Down, bytes sent per node per round (push/pull included)",
        run=_gossip,
        size=n,
        quick_size=quick,
        metrics=("join_rounds", "joiner_view_rounds", "down_rounds", "bytes_per_node_round"),
        requires=("cinema.cluster:Simulation",),
        compare={}
        if n == 10
        else {"bytes_per_node_round": "cluster.gossip[10]:bytes_per_node_round"},
        targets={
            "join_rounds": Target("<=", 2 * math.log2(n) + 2),
            "joiner_view_rounds": Target("<=", 2 * math.log2(n) + 2),
            "down_rounds": Target("<=", 2 * SUSPECT_ROUNDS + 3),
            **({} if n == 10 else {"bytes_per_node_round": Target("<=", 2.0, relative=True)}),
        },
        max_runs=1,  # deterministic from its seed: one run says it all
        smoke_size=min(quick, 20),
        timeout=1800.0,
    )


def _loss_workload(n: int, quick: int, loss: float) -> Workload:
    return Workload(
        name=f"loss[{n},{round(loss * 100)}%]",
        title=f"{round(loss * 100)}% loss for {LOSS_ROUNDS} rounds, {n} nodes (quick: {quick}):"
        " rounds before a false Down; false Suspect / Down verdicts",
        run=partial(_loss, loss),
        size=n,
        quick_size=quick,
        metrics=("clean_rounds",),
        requires=("cinema.cluster:Simulation",),
        targets={"clean_rounds": Target(">=", LOSS_ROUNDS)} if loss <= 0.1 else {},
        max_runs=1,
        smoke_size=20,
        timeout=1800.0,
    )


WORKLOADS = [
    _gossip_workload(10, 10),
    _gossip_workload(100, 100),
    _gossip_workload(1000, 100),
    _gossip_workload(3000, 100),
    *(_loss_workload(n, 50, 0.1) for n in (100, 300, 1000)),
    *(_loss_workload(n, 50, loss) for n in (100, 300, 1000) for loss in (0.2, 0.3)),
    Workload(
        name="pause[30]",
        title="a node paused for 4 suspect timeouts resumes: rounds before a false Down of a"
        " healthy node (of 60), rounds to converge",
        run=_pause,
        size=30,
        quick_size=10,
        metrics=("clean_rounds", "converged_rounds"),
        requires=("cinema.cluster:Simulation",),
        targets={"clean_rounds": Target(">=", 60)},
        max_runs=1,
    ),
    Workload(
        name="heal[30]",
        title="a 10-minute partition into two halves heals: rounds until whole again",
        run=_heal,
        size=30,
        quick_size=6,
        metrics=("heal_rounds",),
        requires=("cinema.cluster:Simulation",),
        targets={"heal_rounds": Target("<=", 10)},
        max_runs=1,
        timeout=1800.0,
    ),
    Workload(
        name="call_lookup[asyncio]",
        title="ClusterRemoteAddr.call vs RemoteAddr.call on one loopback connection",
        run=_call_lookup_run,
        size=20_000,
        quick_size=3_000,
        metrics=("cluster_calls_per_s", "direct_calls_per_s", "cluster_vs_direct"),
        requires=("cinema.cluster:ClusterClient",),
        backend="asyncio",
        targets={"cluster_vs_direct": Target(">=", 0.9)},
    ),
]
