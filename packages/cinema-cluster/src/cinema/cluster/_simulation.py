"""A deterministic discrete-event simulation of a cluster over a :class:`MemoryNetwork`.

Every node is a :class:`~cinema.cluster._membership.Membership` engine, the very code a
:class:`~cinema.cluster.ClusterNode` runs; the simulation only replaces sockets and sleeps by an
event queue and the network's :class:`VirtualClock`. Given the same seed and the same calls, a run
is identical, so tests can drive a hundred nodes (and benchmarks a thousand) in one process, with
loss, delay and partitions, in well under a second of real time per simulated minute.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Iterable
from typing import Final, NamedTuple, final

from ._membership import Membership, Outgoing
from ._memory import MemoryNetwork
from ._types import MemberDown, MemberSuspect, Node, NodeStatus
from ._validation import address_check_for

__all__ = ["Simulation"]

# The simulated wall clock starts here (ms since the epoch), so incarnations look real.
_EPOCH_MS: Final = 1_700_000_000_000


class _Tick(NamedTuple):
    node_id: str
    generation: int


class _Delivery(NamedTuple):
    src: str
    dst: str
    data: bytes
    expects_reply: bool


@final
class Simulation:
    """A simulated cluster: add nodes, kill, restart, partition, and let simulated time run.

    :param seed: seeds the network and every node's peer selection.
    :param gossip_interval: seconds between a node's gossip rounds.
    :param suspect_timeout: the nodes' ``suspect_timeout`` (seconds).
    :param network: the network (default: a new one seeded from ``seed``); set its ``loss``,
        ``delay`` and ``jitter``, or call its ``partition``, at any time.
    :param fanout: see :class:`~cinema.cluster._membership.Membership` (as the next ones).
    :param monitors: ring successors each node watches.
    :param max_piggyback: recently changed entries per message.
    :param samples: random entries per message.
    :param tombstone_ttl: seconds Down and Left members are listed (default from the engine).
    :param reconnect_window: seconds Down members are remembered and retried.
    :param reconnect_interval: seconds between a node's retries of a Down member or seed
        (default: the engine's, ``2 * suspect_timeout``).
    :param sync_interval: seconds between periodic full-state syncs (for up to 32 members;
        default ``6 * suspect_timeout``).
    :param indirect_probes: members asked to probe a silent one.
    :param suspicion_mult: a suspicion nobody confirms turns Down after this many
        ``suspect_timeout``.

    Every Suspect and Down verdict a node reaches is recorded in :attr:`verdicts`, so that tests
    and benchmarks can count false ones.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        gossip_interval: float = 0.1,
        suspect_timeout: float = 1.0,
        network: MemoryNetwork | None = None,
        fanout: int = 3,
        monitors: int = 3,
        max_piggyback: int = 6,
        samples: int = 3,
        tombstone_ttl: float | None = None,
        reconnect_window: float = 24 * 3600.0,
        reconnect_interval: float | None = None,
        sync_interval: float | None = None,
        indirect_probes: int = 3,
        suspicion_mult: float = 6.0,
    ) -> None:
        self.seed = seed
        self.gossip_interval = gossip_interval
        self.suspect_timeout = suspect_timeout
        self.network = network if network is not None else MemoryNetwork(seed=seed)
        self.clock = self.network.clock
        self.fanout = fanout
        self.monitors = monitors
        self.max_piggyback = max_piggyback
        self.samples = samples
        self.tombstone_ttl = tombstone_ttl
        self.reconnect_window = reconnect_window
        # As a node's default (30 s at the default suspect_timeout of 5 s), in proportion.
        self.reconnect_interval = reconnect_interval
        self.sync_interval = 6 * suspect_timeout if sync_interval is None else sync_interval
        self.indirect_probes = indirect_probes
        self.suspicion_mult = suspicion_mult
        #: ``(time, observer, subject, status)`` of every Suspect and Down verdict reached.
        self.verdicts: list[tuple[float, str, str, NodeStatus]] = []
        self._paused: dict[str, list[_Delivery]] = {}  # paused node -> deliveries held
        self._check = address_check_for({"mem"})
        self._nodes: dict[str, Membership] = {}  # running nodes, by id
        self._by_addr: dict[str, Membership] = {}
        self._last_incarnation: dict[str, int] = {}
        self._generation: dict[str, int] = {}
        self._queue: list[tuple[float, int, _Tick | _Delivery]] = []
        self._seq = itertools.count()
        #: Bytes each node has sent (requests, replies and notices), by node id.
        self.bytes_sent: dict[str, int] = {}
        #: Messages each node has sent, by node id.
        self.messages_sent: dict[str, int] = {}

    # ---------------------------------------------------------------- population

    @property
    def now(self) -> float:
        """Simulated seconds since the start."""
        return self.clock.now()

    def node(self, node_id: str) -> Membership:
        """The running node with this id.

        :raises KeyError: no such node is running.
        """
        return self._nodes[node_id]

    @property
    def running(self) -> list[str]:
        """Ids of the running nodes, sorted."""
        return sorted(self._nodes)

    @staticmethod
    def address(node_id: str) -> str:
        """The address a node with this id listens on."""
        return f"mem://{node_id}"

    def add_node(self, node_id: str, *, seeds: Iterable[str] = ()) -> Membership:
        """Start a node (or restart a stopped one with a newer incarnation) that joins ``seeds``.

        :param seeds: addresses (or node ids) of nodes to join through.
        """
        if node_id in self._nodes:
            raise ValueError(f"node {node_id!r} is already running")
        wall = self._wall_clock()
        incarnation = max(wall, self._last_incarnation.get(node_id, 0) + 1)
        self._last_incarnation[node_id] = incarnation
        generation = self._generation.get(node_id, 0) + 1
        self._generation[node_id] = generation
        engine = Membership(
            node_id,
            self.address(node_id),
            suspect_timeout=self.suspect_timeout,
            now=self.now,
            incarnation=incarnation,
            rng=random.Random(f"{self.seed}/{node_id}/{generation}"),
            wall_clock=self._wall_clock,
            fanout=self.fanout,
            monitors=self.monitors,
            max_piggyback=self.max_piggyback,
            samples=self.samples,
            tombstone_ttl=self.tombstone_ttl,
            reconnect_window=self.reconnect_window,
            reconnect_interval=self.reconnect_interval,
            sync_interval=self.sync_interval,
            indirect_probes=self.indirect_probes,
            suspicion_mult=self.suspicion_mult,
            address_check=self._check,
        )
        engine.add_seeds(s if "://" in s else self.address(s) for s in seeds)
        self._nodes[node_id] = engine
        self._by_addr[engine.addr] = engine
        self.bytes_sent.setdefault(node_id, 0)
        self.messages_sent.setdefault(node_id, 0)
        # A random phase, so that rounds are not in lockstep across nodes.
        first = self.now + self.network.rng.random() * self.gossip_interval
        self._push(first, _Tick(node_id, generation))
        return engine

    def add_cluster(self, node_ids: Iterable[str]) -> None:
        """Start nodes that already know each other (a converged cluster, without the joins)."""
        ids = list(node_ids)
        for node_id in ids:
            self.add_node(node_id)
        nodes = [(Node(i, self.address(i)), self._nodes[i].incarnation) for i in ids]
        for node_id in ids:
            engine = self._nodes[node_id]
            for node, incarnation in nodes:
                engine.add_member(node, self.now, announce=False, incarnation=incarnation)

    def kill(self, node_id: str) -> None:
        """Crash a node: it stops at once, sending nothing more."""
        engine = self._nodes.pop(node_id)
        del self._by_addr[engine.addr]
        self._paused.pop(node_id, None)

    def pause(self, node_id: str) -> None:
        """Freeze a node (as SIGSTOP does): it runs no round and handles nothing; what is sent
        to it waits, and is handled when it resumes."""
        if node_id not in self._nodes:
            raise KeyError(node_id)
        self._paused.setdefault(node_id, [])

    def resume(self, node_id: str) -> None:
        """Let a paused node run again: it handles what waited, then gossips as before."""
        held = self._paused.pop(node_id)
        for delivery in held:
            self._on_deliver(delivery)
        self._push(self.now, _Tick(node_id, self._generation[node_id]))

    @property
    def paused(self) -> list[str]:
        """Ids of the paused nodes, sorted."""
        return sorted(self._paused)

    def isolate(self, node_id: str) -> None:
        """Cut one node off from all others (a partition of it against the rest)."""
        others = [self.address(i) for i in self._nodes if i != node_id]
        self.network.partition([self.address(node_id)], others)

    def false_verdicts(
        self, status: NodeStatus, *, healthy: Iterable[str] | None = None, since: float = 0.0
    ) -> int:
        """How many ``status`` verdicts (Suspect or Down) were reached about ``healthy`` nodes
        (default: the running, unpaused ones) at or after ``since``."""
        alive = set(healthy) if healthy is not None else set(self._nodes) - set(self._paused)
        return sum(
            1
            for t, _, subject, s in self.verdicts
            if s is status and subject in alive and t >= since
        )

    def leave(self, node_id: str) -> None:
        """Stop a node gracefully: it sends its leave notices, then stops."""
        engine = self._nodes[node_id]
        for out in engine.leave(self.now):
            self._send(engine, out.addr, out.data, expects_reply=False)
        self.kill(node_id)

    # ---------------------------------------------------------------- views

    def view(self, observer: str) -> dict[str, NodeStatus]:
        """``observer``'s view: member id -> status (itself included)."""
        return {n.id: n.status for n in self._nodes[observer].members(self.now)}

    def everyone_sees(self, node_id: str, statuses: Iterable[NodeStatus] | NodeStatus) -> bool:
        """Whether every other running node shows ``node_id`` with one of ``statuses``.

        A node that has forgotten ``node_id`` (or shows it Left past its grace) counts as seeing
        it ``LEFT``.
        """
        wanted = {statuses} if isinstance(statuses, NodeStatus) else set(statuses)
        for observer, engine in self._nodes.items():
            if observer == node_id:
                continue
            status = engine.status_of(node_id)
            if status is None:
                status = NodeStatus.LEFT
            if status not in wanted:
                return False
        return True

    def converged(self) -> bool:
        """Whether every running node sees exactly the running nodes, all Up."""
        expected = set(self._nodes)
        for engine in self._nodes.values():
            live = {n.id for n in engine.members(self.now) if n.status is NodeStatus.UP}
            if live != expected:
                return False
        return True

    # ---------------------------------------------------------------- time

    def run(self, duration: float) -> None:
        """Let ``duration`` simulated seconds pass."""
        self._run_until_time(self.now + duration)

    def run_rounds(self, rounds: int) -> None:
        """Let ``rounds`` gossip intervals pass."""
        self.run(rounds * self.gossip_interval)

    def run_until(
        self, predicate: Callable[[], bool], *, timeout: float, check_every: float | None = None
    ) -> float | None:
        """Run until ``predicate()`` holds, checking every ``check_every`` simulated seconds
        (default: one gossip interval).

        :returns: the simulated seconds it took, or ``None`` if ``timeout`` passed first.
        """
        step = check_every if check_every is not None else self.gossip_interval
        start = self.now
        while True:
            if predicate():
                return self.now - start
            if self.now - start >= timeout:
                return None
            self._run_until_time(self.now + step)

    def _run_until_time(self, end: float) -> None:
        queue = self._queue
        while queue and queue[0][0] <= end:
            when, _, event = heapq.heappop(queue)
            self.clock.advance_to(when)
            if isinstance(event, _Tick):
                self._on_tick(event)
            else:
                self._on_deliver(event)
        self.clock.advance_to(end)

    def _push(self, when: float, event: _Tick | _Delivery) -> None:
        heapq.heappush(self._queue, (when, next(self._seq), event))

    def _wall_clock(self) -> int:
        return _EPOCH_MS + int(self.now * 1000)

    def _on_tick(self, tick: _Tick) -> None:
        node_id, generation = tick
        engine = self._nodes.get(node_id)
        if engine is None or self._generation[node_id] != generation:
            return
        if node_id in self._paused:
            return  # resume() schedules the next round
        self._send_all(engine, engine.tick(self.now))
        self._record(engine)
        self._push(self.now + self.gossip_interval, tick)

    def _send_all(self, engine: Membership, messages: list[Outgoing]) -> None:
        for out in messages:
            self._send(engine, out.addr, out.data, expects_reply=out.expects_reply)

    def _record(self, engine: Membership) -> None:
        # Nobody subscribes to a simulated node's events: keep the verdicts, drop the rest.
        for event in engine.drain_events():
            if isinstance(event, (MemberSuspect, MemberDown)):
                self.verdicts.append((self.now, engine.id, event.node.id, event.node.status))

    def _send(self, sender: Membership, addr: str, data: bytes, *, expects_reply: bool) -> None:
        self.bytes_sent[sender.id] += len(data)
        self.messages_sent[sender.id] += 1
        delay = self.network.transit(sender.addr, addr)
        if delay is None:
            return
        self._push(self.now + delay, _Delivery(sender.addr, addr, data, expects_reply))

    def _on_deliver(self, delivery: _Delivery) -> None:
        src, dst, data, expects_reply = delivery
        engine = self._by_addr.get(dst)
        if engine is None:
            return  # nobody listens there (crashed): lost
        held = self._paused.get(engine.id)
        if held is not None:
            held.append(delivery)
            return
        answer = engine.receive(data, self.now, peer=src, reply=expects_reply)
        if answer is not None:
            self._send(engine, src, answer, expects_reply=False)
        self._send_all(engine, engine.take_outgoing())
        self._record(engine)


Simulation.__module__ = "cinema.cluster"
