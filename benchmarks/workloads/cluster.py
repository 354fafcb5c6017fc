"""Cluster gossip at scale (simulated) and the cost of cluster lookups on real calls.

- ``gossip[N]``: a converged cluster of N nodes in the deterministic simulation
  (:class:`cinema.cluster.Simulation`, the nodes' real membership engine over the in-memory
  network, gossip interval 1 simulated second, suspect_timeout 5 rounds). Measures the rounds
  until a node that joins through one seed is known Up by every node (target
  ``<= 2 * log2(N) + 2``), the rounds until a node that dies is Down everywhere (target
  ``<= 2 * suspect_timeout + 3`` intervals = 13), and the gossip bytes each node sends per round
  in steady state (target: N=1000 within 2x of N=10). Rounds do not depend on the machine: the
  run is reproducible from its seed.
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
from typing import Self

from google.protobuf.wrappers_pb2 import Int64Value

from benchmarks.harness import SLICES, Metrics, Target, Workload, clock, run_anyio, slice_sizes
from cinema import Actor, Context, handler

INTERVAL = 1.0
SUSPECT_ROUNDS = 5


def _gossip(n: int) -> Metrics:
    from cinema.cluster import NodeStatus, Simulation

    sim = Simulation(seed=n, gossip_interval=INTERVAL, suspect_timeout=SUSPECT_ROUNDS * INTERVAL)
    sim.add_cluster(f"n{i:04d}" for i in range(n))
    sim.run_rounds(3)
    before = dict(sim.bytes_sent)
    steady_rounds = 5
    sim.run_rounds(steady_rounds)
    sent = sum(sim.bytes_sent[i] - before[i] for i in before)
    bytes_per_node_round = sent / n / steady_rounds

    sim.add_node("joiner", seeds=["n0000"])
    joined = sim.run_until(lambda: sim.everyone_sees("joiner", NodeStatus.UP), timeout=100)
    if joined is None:
        raise RuntimeError("the join did not reach every node in 100 rounds")
    sim.run_rounds(3)
    victim = f"n{n // 2:04d}"
    sim.kill(victim)
    down = sim.run_until(lambda: sim.everyone_sees(victim, NodeStatus.DOWN), timeout=100)
    if down is None:
        raise RuntimeError("the dead node was not Down everywhere in 100 rounds")
    return {
        "join_rounds": joined / INTERVAL,
        "down_rounds": down / INTERVAL,
        "bytes_per_node_round": bytes_per_node_round,
    }


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
        title=f"simulated cluster of {n} nodes (quick: {quick}): rounds to join / to Down,"
        " bytes sent per node per round",
        run=_gossip,
        size=n,
        quick_size=quick,
        metrics=("join_rounds", "down_rounds", "bytes_per_node_round"),
        requires=("cinema.cluster:Simulation",),
        compare={}
        if n == 10
        else {"bytes_per_node_round": "cluster.gossip[10]:bytes_per_node_round"},
        targets={
            "join_rounds": Target("<=", 2 * math.log2(n) + 2),
            "down_rounds": Target("<=", 2 * SUSPECT_ROUNDS + 3),
            **({} if n == 10 else {"bytes_per_node_round": Target("<=", 2.0, relative=True)}),
        },
        max_runs=1,  # deterministic from its seed: one run says it all
        timeout=600.0,
    )


WORKLOADS = [
    _gossip_workload(10, 10),
    _gossip_workload(100, 100),
    _gossip_workload(1000, 300),
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
