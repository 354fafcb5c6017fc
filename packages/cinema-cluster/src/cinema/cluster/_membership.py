"""The membership engine: SWIM + Lifeguard member state, merge rules, failure detection, state
sync and the distributed registry, with no I/O and no clock of its own.

The caller (a :class:`~cinema.cluster.ClusterNode`, or a simulation) passes the current time
into every call, calls :meth:`Membership.tick` once per gossip interval and delivers the
messages it returns; whatever arrives goes into :meth:`Membership.receive`, after which
:meth:`Membership.take_outgoing` gives the messages that the arrival caused (indirect probes,
relayed answers, sync pages). That keeps the rules testable deterministically and lets a
thousand nodes run in one process.

How it scales (bytes per node per round do not grow with the cluster):

- Every gossip message is bounded: the sender's own entry, the receiver's entry as the sender
  sees it (so a wrongly suspected receiver refutes at once), at most ``max_piggyback`` recently
  changed entries (each retransmitted about ``3 * log2(N)`` times, SWIM's dissemination), and
  ``samples`` random entries (anti-entropy).
- Each node is watched by its ``monitors`` ring predecessors: every node exchanges gossip each
  round with the ``monitors`` nodes that follow it in the sorted ring of live ids, and with
  ``fanout`` random others.
- Full-state sync (push/pull, in pages) happens on join, when a partition heals, and
  periodically with one random member at an interval that grows with the cluster, so that its
  cost per round stays flat.

How it avoids false verdicts (Lifeguard):

- A member that stays silent for ``suspect_timeout / 2`` is probed indirectly: ``indirect_probes``
  recently heard members are asked to reach it and relay its answer. Only when that fails too,
  for another ``suspect_timeout / 2``, and someone else did answer us meanwhile (else the
  problem is probably ours), is the member suspected.
- Local health: a node that fails probes without anyone answering, that has to refute
  suspicions of itself, or that notices it was paused, stretches its own probe timeouts (up to
  ``MAX_HEALTH + 1`` times) and, after a pause, restarts its timers instead of accusing.
- A suspicion turns Down after ``suspect_timeout`` when enough nodes suspect independently (the
  entry lists them), and after up to ``suspicion_mult * suspect_timeout`` when only one does:
  time for the member to hear of it and refute.
- At equal incarnation a higher heartbeat is newer information than any claim made before it:
  an accusation made with an older heartbeat than one already heard is not adopted; the member
  is told instead, and refutes.
"""

from __future__ import annotations

import bisect
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, final

from ._errors import GossipRejected
from ._types import (
    MemberDown,
    MemberEvent,
    MemberLeft,
    MemberSuspect,
    MemberUp,
    Node,
    NodeStatus,
)
from ._validation import (
    DEFAULT_MAX_ACTORS,
    DEFAULT_MAX_MEMBERS,
    DEFAULT_MAX_REGISTRY_BYTES,
    MAX_ACTORS_PER_MEMBER,
    MAX_ID_LENGTH,
    MAX_INCARNATION_LEAD_MS,
    MAX_NAME_LENGTH,
    MAX_PROBES_PER_MESSAGE,
    MAX_REGISTRY_BYTES_PER_MEMBER,
    MAX_SUSPECTERS,
    STATUS_FROM_PB,
    STATUS_TO_PB,
    AddressCheck,
    BoundedLog,
    Parsed,
    address_check_for,
    parse_gossip,
    registry_bytes,
    short,
)
from .proto import gossip_pb2 as pb

__all__ = ["MAX_HEALTH", "Membership", "Outgoing", "wall_clock_ms"]

log = logging.getLogger("cinema.cluster")

#: The highest local-health score: probe timeouts are multiplied by ``health + 1``.
MAX_HEALTH: Final = 8
# A full-state sync page: at most this many entries and about this many bytes.
_PAGE_ENTRIES: Final = 512
_PAGE_BYTES: Final = 512 * 1024
# Members in a cluster of this size or fewer sync every ``sync_interval``; beyond it the interval
# grows in proportion, so that periodic sync costs the same bytes per round at any size.
_SYNC_SCALE: Final = 32
# Pending relays a helper keeps (targets, requesters per target).
_MAX_RELAY_TARGETS: Final = 64
_MAX_RELAY_REQUESTERS: Final = 8
# Members told per round that someone accuses them on stale information.
_MAX_TELL: Final = 3

_RANK: Final = {NodeStatus.UP: 0, NodeStatus.SUSPECT: 1, NodeStatus.DOWN: 2, NodeStatus.LEFT: 3}
_LIVE: Final = (NodeStatus.UP, NodeStatus.SUSPECT)
_EVENT: Final[dict[NodeStatus, type[MemberEvent]]] = {
    NodeStatus.UP: MemberUp,
    NodeStatus.SUSPECT: MemberSuspect,
    NodeStatus.DOWN: MemberDown,
    NodeStatus.LEFT: MemberLeft,
}


def wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch (the default source of incarnations)."""
    return time.time_ns() // 1_000_000


@final
@dataclass(frozen=True, slots=True)
class Outgoing:
    """One gossip message to deliver.

    :ivar addr: where to send it.
    :ivar node_id: the id of the node expected there (``None`` for a seed not yet known).
    :ivar data: the serialized :class:`Gossip` message.
    :ivar expects_reply: deliver as a request whose reply goes to :meth:`Membership.receive`;
        ``False`` for a one-way message (a leave notice, a relayed answer).
    """

    addr: str
    node_id: str | None
    data: bytes
    expects_reply: bool = True


class _Member:
    """One member as this node sees it; this node itself is one too."""

    __slots__ = (
        "accused",
        "actors",
        "addr",
        "awaiting",
        "encoded",
        "heartbeat",
        "id",
        "incarnation",
        "last_direct",
        "pending_addr",
        "probe_since",
        "registry_bytes",
        "registry_version",
        "status",
        "status_since",
        "suspecters",
        "verdict_heartbeat",
    )

    def __init__(self, id: str, addr: str, now: float) -> None:
        self.id = id
        self.addr = addr
        self.status = NodeStatus.UP
        self.incarnation = 0
        self.heartbeat = 0
        self.status_since = now
        # When we last heard from the member itself (or a helper relayed its answer).
        self.last_direct = now
        # Since when a request of ours has gone unanswered (None: none pending).
        self.awaiting: float | None = None
        # Since when it is being probed indirectly (None: not).
        self.probe_since: float | None = None
        # Ids of the nodes that suspect it on their own (for SUSPECT), in order.
        self.suspecters: dict[str, None] = {}
        # The newest heartbeat an accusation of it (Suspect, Down) was made on: a heartbeat
        # heard second hand refutes the accusation only if it is well beyond this one.
        self.verdict_heartbeat = 0
        # A claim about it that we did not adopt (made on older news): told to it, to refute.
        self.accused: NodeStatus | None = None
        # An address it was announced at, not yet confirmed by an answer from there.
        self.pending_addr: str | None = None
        self.registry_version = 0
        self.registry_bytes = 0
        self.encoded: bytes | None = None  # this entry serialized, while it is unchanged
        # name -> (type name, registered_at_ms)
        self.actors: dict[str, tuple[str, int]] = {}


@final
class Membership:
    """One node's view of the cluster and the rules that keep it up to date.

    :param node_id: this node's id (unique in the cluster).
    :param addr: the address others reach this node at.
    :param suspect_timeout: seconds of silence before a member is suspected (after a failed
        indirect probe); with enough independent suspicions, Down after twice that.
    :param now: the current time (seconds, any monotonic origin; the same clock for every call).
    :param incarnation: this life's incarnation; default: the wall clock in milliseconds, so that
        it grows across restarts.
    :param rng: randomness for peer selection (seed it for reproducible simulations).
    :param fanout: random peers gossiped with per round, besides the monitored ones.
    :param monitors: how many ring successors each node watches (and so how many nodes watch it).
    :param max_piggyback: recently changed entries per message.
    :param samples: random entries per message (anti-entropy).
    :param tombstone_ttl: seconds Down and Left members are listed by :meth:`members` (and Left
        ones remembered). Default: ``max(60, 24 * suspect_timeout)``.
    :param reconnect_window: seconds a Down member is remembered and retried (Serf: 24 h), so
        that partitions of any length heal.
    :param reconnect_interval: seconds between retries of one Down member (or an unanswered
        seed) when other members are known (default ``2 * suspect_timeout``).
    :param sync_interval: seconds between full-state syncs with a random member (for clusters
        of up to 32; longer in proportion beyond).
    :param indirect_probes: members asked to probe a silent one (SWIM's ``k``).
    :param suspicion_mult: a suspicion nobody confirms turns Down after this many
        ``suspect_timeout``.
    :param max_members: members remembered at most (more are ignored, with a log line).
    :param max_actors: registered actors remembered at most, all members together.
    :param max_registry_bytes: bytes of actor and type names remembered at most.
    :param address_check: whether a member's address is usable here; entries with other
        addresses are dropped. Default: ``tcp``, ``unix`` and ``mem`` addresses.
    :param wall_clock: source of wall-clock milliseconds (registration times, the incarnation
        bound for validation).
    """

    def __init__(
        self,
        node_id: str,
        addr: str,
        *,
        suspect_timeout: float,
        now: float,
        incarnation: int | None = None,
        rng: random.Random | None = None,
        fanout: int = 3,
        monitors: int = 3,
        max_piggyback: int = 6,
        samples: int = 3,
        tombstone_ttl: float | None = None,
        reconnect_window: float = 24 * 3600.0,
        reconnect_interval: float | None = None,
        sync_interval: float = 30.0,
        indirect_probes: int = 3,
        suspicion_mult: float = 6.0,
        max_members: int = DEFAULT_MAX_MEMBERS,
        max_actors: int = DEFAULT_MAX_ACTORS,
        max_registry_bytes: int = DEFAULT_MAX_REGISTRY_BYTES,
        address_check: AddressCheck | None = None,
        wall_clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        if not node_id or len(node_id) > MAX_ID_LENGTH:
            raise ValueError(f"node id must have 1..{MAX_ID_LENGTH} characters: {node_id!r}")
        if not addr or len(addr) > MAX_ID_LENGTH:
            raise ValueError(f"address must have 1..{MAX_ID_LENGTH} characters: {addr!r}")
        if not suspect_timeout > 0:
            raise ValueError(f"suspect_timeout must be positive, not {suspect_timeout!r}")
        if not suspicion_mult >= 1:
            raise ValueError(f"suspicion_mult must be at least 1, not {suspicion_mult!r}")
        if reconnect_interval is None:
            reconnect_interval = 2 * suspect_timeout
        for name, value in (
            ("reconnect_interval", reconnect_interval),
            ("sync_interval", sync_interval),
            ("reconnect_window", reconnect_window),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be positive, not {value!r}")
        self.id = node_id
        self.suspect_timeout = float(suspect_timeout)
        self._wall_clock = wall_clock
        me = _Member(node_id, addr, now)
        me.incarnation = wall_clock() if incarnation is None else incarnation
        self._me = me
        self._members: dict[str, _Member] = {node_id: me}
        self._rng = rng if rng is not None else random.Random()
        self.fanout = fanout
        self.monitors = monitors
        self.max_piggyback = max_piggyback
        self.samples = samples
        self.tombstone_ttl = (
            max(60.0, 24 * self.suspect_timeout) if tombstone_ttl is None else tombstone_ttl
        )
        self.reconnect_window = max(float(reconnect_window), self.tombstone_ttl)
        self.reconnect_interval = float(reconnect_interval)
        self.sync_interval = float(sync_interval)
        self.indirect_probes = indirect_probes
        self.suspicion_mult = float(suspicion_mult)
        self.max_members = max_members
        self.max_actors = max_actors
        self.max_registry_bytes = max_registry_bytes
        if address_check is None:
            scheme, sep, _ = addr.partition("://")
            address_check = address_check_for({"tcp", "unix", "mem", scheme if sep else "tcp"})
        self._address_check = address_check
        #: Local health (Lifeguard): 0 is healthy; probe timeouts scale with ``health + 1``.
        self.health = 0
        # Ordered dicts, not sets, wherever the order is iterated: a run must not depend on
        # PYTHONHASHSEED.
        self._suspects: dict[str, None] = {}
        self._dead: dict[str, None] = {}  # Down or Left: tombstones
        self._awaiting: dict[str, None] = {}
        self._probing: dict[str, None] = {}
        self._tell: dict[str, None] = {}
        self._live_ring: list[str] | None = None  # sorted live ids with our own; None = stale
        self._live_others: list[str] = []
        self._monitored: dict[str, None] = {}
        # Rumors: node id -> times sent so far; buckets[k] holds the ids sent k times (stale
        # entries are skipped), so that the least-sent news always goes out first.
        self._rumors: dict[str, int] = {}
        self._rumor_buckets: list[deque[str]] = []
        self._seeds: list[str] = []
        self._events: list[MemberEvent] = []
        # actor name -> ids of members (ours included) that announce it
        self._actor_index: dict[str, dict[str, None]] = {}
        self._actor_total = 0
        self._registry_total = 0
        self._outbox: list[Outgoing] = []
        # helper side of indirect probes: target id -> requester id -> since
        self._relays: dict[str, dict[str, float]] = {}
        # sync chains we run: address -> when the last page was asked for
        self._syncing: dict[str, float] = {}
        self._synced_with: dict[str, float] = {}  # member id -> last sync with it
        self._last_tick: float | None = None
        self._period: float | None = None  # the measured time between our rounds
        self._last_heard = now  # the last message from anyone
        self._heard_since_tick = False
        phase = self._rng.random()
        self._last_sync = now - self.sync_interval * phase  # a random phase
        self._next_reconnect = now + self.reconnect_interval * (0.5 + phase)
        self._reject_log = BoundedLog(log)
        self._limit_log = BoundedLog(log)

    # ------------------------------------------------------------------ own state

    @property
    def addr(self) -> str:
        """The address others reach this node at."""
        return self._me.addr

    @property
    def incarnation(self) -> int:
        """This node's incarnation."""
        return self._me.incarnation

    @property
    def heartbeat(self) -> int:
        """This node's heartbeat (one per round)."""
        return self._me.heartbeat

    @property
    def status(self) -> NodeStatus:
        """This node's own status: ``UP``, or ``LEFT`` once it left."""
        return self._me.status

    @property
    def registry_version(self) -> int:
        """Grows with every change of this node's actor list."""
        return self._me.registry_version

    # ------------------------------------------------------------------ queries

    def members(self, now: float) -> list[Node]:
        """Every member this node knows, itself included, sorted by id.

        Down members are listed for ``tombstone_ttl`` (then remembered, unlisted, for
        ``reconnect_window``); Left ones for one ``suspect_timeout`` after they left.
        """
        nodes: list[Node] = []
        for m in self._members.values():
            if m.status is NodeStatus.LEFT and m is not self._me:
                if now - m.status_since >= self.suspect_timeout:
                    continue
            elif m.status is NodeStatus.DOWN and now - m.status_since >= self.tombstone_ttl:
                continue
            nodes.append(Node(m.id, m.addr, m.status))
        nodes.sort(key=lambda n: n.id)
        return nodes

    def member(self, node_id: str) -> Node | None:
        """The member with this id (``None`` if unknown or forgotten)."""
        m = self._members.get(node_id)
        return None if m is None else Node(m.id, m.addr, m.status)

    def incarnation_of(self, node_id: str) -> int | None:
        """The incarnation this node knows of a member (``None`` if unknown)."""
        m = self._members.get(node_id)
        return None if m is None else m.incarnation

    def incarnation_at(self, addr: str) -> int | None:
        """The incarnation of the live member at ``addr`` (``None`` if none is known there)."""
        for m in self._members.values():
            if m.addr == addr and m.status in _LIVE and m is not self._me:
                return m.incarnation
        return None

    def status_of(self, node_id: str) -> NodeStatus | None:
        """The status of a member (``None`` if unknown)."""
        m = self._members.get(node_id)
        return None if m is None else m.status

    def suspecters_of(self, node_id: str) -> list[str]:
        """Ids of the nodes known to suspect a member on their own (empty unless SUSPECT)."""
        m = self._members.get(node_id)
        return [] if m is None or m.status is not NodeStatus.SUSPECT else list(m.suspecters)

    def lookup_actor(self, name: str) -> tuple[str, str] | None:
        """Where the actor registered under ``name`` lives: ``(node id, type name)``.

        Only live (Up or Suspect) members count. When several announce the name, the earliest
        registration wins, ties broken by the smaller node id: every node that has heard the
        same announcements picks the same one.
        """
        holders = self._actor_index.get(name)
        if not holders:
            return None
        best: tuple[int, str, str] | None = None
        for node_id in holders:
            m = self._members[node_id]
            if m.status not in _LIVE:
                continue
            type_name, at = m.actors[name]
            candidate = (at, node_id, type_name)
            if best is None or candidate < best:
                best = candidate
        return None if best is None else (best[1], best[2])

    def actors(self) -> dict[str, tuple[str, str]]:
        """Every registered actor name with its resolved ``(node id, type name)``, sorted."""
        found: dict[str, tuple[str, str]] = {}
        for name in sorted(self._actor_index):
            location = self.lookup_actor(name)
            if location is not None:
                found[name] = location
        return found

    def drain_events(self) -> list[MemberEvent]:
        """Membership events since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    def take_outgoing(self) -> list[Outgoing]:
        """Messages caused by the last calls (indirect probes, relays, sync pages): send them."""
        out, self._outbox = self._outbox, []
        return out

    # ------------------------------------------------------------------ local changes

    def add_member(
        self, node: Node, now: float, *, announce: bool = True, incarnation: int = 0
    ) -> None:
        """Learn of a member by hand (as the seed's ``add_member``).

        :param announce: spread it as news (``False`` when pre-building a simulated cluster).
        :param incarnation: its incarnation, if known; by default 0, so that anything the
            member itself says wins.
        """
        if node.id in self._members:
            return
        if not self._address_check(node.addr):
            raise ValueError(f"unusable address for member {node.id!r}: {node.addr!r}")
        m = _Member(node.id, node.addr, now)
        m.status = node.status
        m.incarnation = incarnation
        self._members[node.id] = m
        self._after_status_change(m, None, now)
        if announce:
            self._rumor(node.id)

    def add_seeds(self, addrs: Iterable[str]) -> None:
        """Addresses to join through: contacted every round while no other member is known to
        be live, then every ``reconnect_interval`` while no live member is known there."""
        for addr in addrs:
            if addr != self.addr and addr not in self._seeds:
                self._seeds.append(addr)

    def register_actor(self, name: str, type_name: str) -> None:
        """Announce an actor on this node. Registering it again (same type) is a no-op."""
        if not name or len(name) > MAX_NAME_LENGTH or len(type_name) > MAX_NAME_LENGTH:
            raise ValueError(f"actor and type names must have 1..{MAX_NAME_LENGTH} characters")
        me = self._me
        current = me.actors.get(name)
        if current is not None and current[0] == type_name:
            return
        if current is None and len(me.actors) >= MAX_ACTORS_PER_MEMBER:
            raise ValueError(f"a node announces at most {MAX_ACTORS_PER_MEMBER} actors")
        size = me.registry_bytes + len(name) + len(type_name)
        if current is not None:
            size -= len(name) + len(current[0])
        if size > MAX_REGISTRY_BYTES_PER_MEMBER:
            raise ValueError(
                f"a node announces at most {MAX_REGISTRY_BYTES_PER_MEMBER} bytes of names"
            )
        actors = dict(me.actors)
        # Never before this life began (others reject such times), whatever the clock says.
        actors[name] = (type_name, max(self._wall_clock(), me.incarnation))
        self._set_actors(me, actors)
        me.registry_version += 1

    def unregister_actor(self, name: str) -> bool:
        """Withdraw an actor of this node; ``False`` if it was not registered here."""
        me = self._me
        if name not in me.actors:
            return False
        actors = dict(me.actors)
        del actors[name]
        self._set_actors(me, actors)
        me.registry_version += 1
        return True

    def leave(self, now: float) -> list[Outgoing]:
        """Mark this node Left and return the notices to send (one-way) to the usual peers."""
        me = self._me
        me.status = NodeStatus.LEFT
        me.status_since = now
        me.heartbeat += 1
        me.encoded = None
        targets = self._targets(now)
        if not self._live_others:
            # Still joining (a seed may know us already): tell the seeds.
            targets.extend((addr, None) for addr in self._seeds)
        return [
            Outgoing(addr, node_id, self._message_for(node_id, now), expects_reply=False)
            for addr, node_id in targets
        ]

    # ------------------------------------------------------------------ rounds

    def tick(self, now: float) -> list[Outgoing]:
        """Run one gossip round: beat, apply the timeouts, and return the messages to send."""
        me = self._me
        if self._last_tick is not None:
            gap = now - self._last_tick
            if gap > self.suspect_timeout / 2:
                self._after_pause(gap, now)
            elif gap > 0:
                self._period = gap if self._period is None else 0.75 * self._period + 0.25 * gap
        self._last_tick = now
        me.heartbeat += 1
        me.encoded = None
        if self._heard_since_tick and self.health > 0:
            self.health -= 1
        self._heard_since_tick = False
        self._apply_timeouts(now)
        targets = self._targets(now)
        out = self.take_outgoing()
        for addr, node_id in targets:
            if node_id is not None:
                m = self._members[node_id]
                if m.awaiting is None:
                    m.awaiting = now
                self._awaiting[node_id] = None
            out.append(Outgoing(addr, node_id, self._message_for(node_id, now)))
        out.extend(self._probe_requests(now))
        out.extend(self._background(now))
        return out

    def receive(
        self, data: bytes, now: float, *, peer: str = "?", reply: bool = True
    ) -> bytes | None:
        """Apply a gossip message and return the reply to send back (``None`` if none is due).

        Bad entries are dropped one by one; a message that cannot be parsed or whose sender
        entry is bad is rejected whole. Either way a rate-limited warning goes to the log and
        nothing is raised. Messages the arrival causes wait in :meth:`take_outgoing`.

        :param peer: the peer's address: for the log line, and, for a reply, the address that
            answered (a member's new address is adopted once it answers as that member).
        :param reply: whether the sender waits for a reply (requests), as opposed to a one-way
            message or a reply.
        """
        try:
            parsed = parse_gossip(data, wall_ms=self._wall_clock(), check=self._address_check)
            if parsed.entries[0].id == self.id:
                raise GossipRejected(f"the sender claims to be this node ({short(self.id)})")
        except GossipRejected as exc:
            self._reject_log.warning("rejected gossip from %s: %s", short(peer, 80), exc)
            return None
        if parsed.dropped:
            self._reject_log.warning(
                "dropped %d bad entries of gossip from %s, e.g. %s",
                len(parsed.dropped),
                short(peer, 80),
                parsed.dropped[0],
            )
        entries = parsed.entries
        sender = entries[0]
        self._last_heard = now
        self._heard_since_tick = True
        prior = self._members.get(sender.id)
        was_down = prior is not None and prior.status is NodeStatus.DOWN
        self._merge(sender, now, answered_from=peer if not reply else None, direct=True)
        relayed = set(parsed.relayed)
        for entry in entries[1:]:
            # A helper's relayed answer carries the member as the helper just heard it.
            self._merge(entry, now, direct=entry.id in relayed)
        heard = self._members.get(sender.id)
        if heard is not None and heard is not self._me and heard.addr == sender.addr:
            self._heard_from(heard, now)
            if was_down:
                # A Down member answers (a partition healed, a pause ended): exchange state.
                self._start_sync(heard.addr, heard.id, now)
        if parsed.relayed and heard is not None:
            described = {e.id for e in entries}
            for node_id in parsed.relayed:
                m = self._members.get(node_id)
                if m is not None and m is not self._me and node_id in described:
                    self._heard_from(m, now)
        if parsed.sync_next and not reply:
            self._continue_sync(peer, sender.id, parsed.sync_next, now)
        if not reply or self._me.status is NodeStatus.LEFT:
            return None
        if parsed.probe_for:
            self._accept_probes(sender.id, parsed.probe_for, now)
        if parsed.sync:
            return self._sync_reply(sender.id, parsed, now)
        return self._message_for(sender.id, now)

    # ------------------------------------------------------------------ failure detection

    def _probe_timeout(self) -> float:
        return self.suspect_timeout / 2 * (self.health + 1)

    def _suspicion_timeout(self, m: _Member) -> float:
        # Lifeguard: from suspicion_mult * suspect_timeout with one suspecter down to
        # suspect_timeout with K independent confirmations (K shrinks in small clusters).
        low = self.suspect_timeout
        high = self.suspicion_mult * low
        k = max(0, min(self.monitors - 1, len(self._live_others) - 1))
        confirmations = max(0, len(m.suspecters) - 1)
        if k == 0 or confirmations >= k:
            return low
        fraction = math.log(confirmations + 1) / math.log(k + 1)
        return high - (high - low) * fraction

    def _heard_from(self, m: _Member, now: float) -> None:
        m.last_direct = now
        m.awaiting = None
        m.probe_since = None
        self._awaiting.pop(m.id, None)
        self._probing.pop(m.id, None)
        relays = self._relays.pop(m.id, None)
        if relays:
            for requester in relays:
                r = self._members.get(requester)
                if r is not None and r.status in _LIVE and r is not self._me:
                    data = self._message_for(requester, now, include=m.id, relayed=m.id)
                    self._outbox.append(Outgoing(r.addr, requester, data, expects_reply=False))

    def _after_pause(self, gap: float, now: float) -> None:
        # This node did not run for `gap` seconds (a pause, a stalled loop): its silence
        # timers measured its own absence. Restart them rather than accuse anyone, and push
        # the suspicions it holds back by the pause so that the cluster can tell it news.
        log.info("no gossip round for %.1f s: restarting failure-detection timers", gap)
        for node_id in self._live_others:
            m = self._members[node_id]
            m.last_direct = max(m.last_direct, now)
            m.awaiting = None
            m.probe_since = None
            self._probing.pop(m.id, None)
            m.probe_since = None
        self._awaiting.clear()
        self._probing.clear()
        for node_id in self._suspects:
            self._members[node_id].status_since += gap
        self.health = MAX_HEALTH

    def _apply_timeouts(self, now: float) -> None:
        self._ring(now)
        members = self._members
        threshold = self._probe_timeout()
        isolated = now - self._last_heard >= threshold and len(self._live_others) > 1
        for node_id in self._monitored:
            m = members[node_id]
            if m.probe_since is None and now - m.last_direct >= threshold:
                m.probe_since = now
                self._probing[node_id] = None
        for node_id in list(self._awaiting):
            w = members.get(node_id)
            if w is None or w.status not in _LIVE:
                del self._awaiting[node_id]
                continue
            if w.awaiting is None:
                del self._awaiting[node_id]
            elif w.probe_since is None and now - w.awaiting >= threshold:
                w.probe_since = now
                self._probing[node_id] = None
        for node_id in list(self._probing):
            p = members.get(node_id)
            started = None if p is None else p.probe_since
            if p is None or started is None or p.status not in _LIVE:
                self._probing.pop(node_id, None)
                continue
            m = p
            if now - started < threshold:
                continue
            answered = self._last_heard > started or len(self._live_others) <= 1
            del self._probing[node_id]
            self._awaiting.pop(node_id, None)
            m.probe_since = None
            m.awaiting = None
            if not answered:
                # Nobody answered us at all: the problem is probably ours. Doubt ourselves.
                self.health = min(MAX_HEALTH, self.health + 1)
                continue
            if m.status is NodeStatus.UP:
                m.suspecters = {self.id: None}
                m.verdict_heartbeat = m.heartbeat
                self._set_status(m, NodeStatus.SUSPECT, started + threshold, now)
                self._rumor(node_id)
            elif self.id not in m.suspecters and len(m.suspecters) < MAX_SUSPECTERS:
                m.suspecters[self.id] = None
                m.encoded = None
                self._rumor(node_id)
        last = self._last_tick if self._last_tick is not None else now
        for node_id in list(self._suspects):
            m = members[node_id]
            if isolated:
                # Hearing nobody, we cannot hear refutations either: hold our verdicts.
                m.status_since += max(0.0, now - last)
                continue
            deadline = m.status_since + self._suspicion_timeout(m)
            if now >= deadline:
                self._set_status(m, NodeStatus.DOWN, deadline, now)
                self._rumor(node_id)
        for node_id in list(self._dead):
            m = members[node_id]
            ttl = self.tombstone_ttl if m.status is NodeStatus.LEFT else self.reconnect_window
            if now - m.status_since >= ttl:
                self._forget(m)
        for node_id in list(self._relays):
            requesters = self._relays[node_id]
            for requester, since in list(requesters.items()):
                if now - since >= self.suspect_timeout:
                    del requesters[requester]
            if not requesters:
                del self._relays[node_id]

    def _probe_requests(self, now: float) -> list[Outgoing]:
        """Indirect probes (ping-req) for the members being probed: to a few members that
        answered us recently, each asked to reach them all."""
        if not self._probing:
            return []
        targets = list(self._probing)[:MAX_PROBES_PER_MESSAGE]
        recent = [
            i
            for i in self._live_others
            if i not in self._probing
            and now - self._members[i].last_direct < self.suspect_timeout
            and self._members[i].status is NodeStatus.UP
        ]
        helpers = self._rng.sample(recent, min(len(recent), self.indirect_probes))
        out = []
        for helper in helpers:
            h = self._members[helper]
            data = self._message_for(helper, now, probe_for=targets)
            out.append(Outgoing(h.addr, helper, data))
        # And try the silent ones directly again, in case only our last request was lost.
        for node_id in targets:
            m = self._members[node_id]
            if node_id not in self._monitored:
                out.append(Outgoing(m.addr, node_id, self._message_for(node_id, now)))
        return out

    def _accept_probes(self, requester: str, targets: list[str], now: float) -> None:
        """Helper side of an indirect probe: reach each target; relay its answer."""
        for node_id in targets:
            m = self._members.get(node_id)
            if m is None or m is self._me or node_id == requester or m.status not in _LIVE:
                continue
            relays = self._relays.get(node_id)
            if relays is None:
                if len(self._relays) >= _MAX_RELAY_TARGETS:
                    continue
                relays = self._relays[node_id] = {}
            if requester not in relays and len(relays) >= _MAX_RELAY_REQUESTERS:
                continue
            first = not relays
            relays[requester] = now
            if first:
                self._outbox.append(Outgoing(m.addr, node_id, self._message_for(node_id, now)))

    # ------------------------------------------------------------------ sync and healing

    def start_sync(self, addr: str, now: float, node_id: str | None = None) -> None:
        """Start a full-state sync (push/pull) with the node at ``addr`` now; the requests
        wait in :meth:`take_outgoing`. The engine does this by itself on join, on healing and
        periodically; this is for tools and benchmarks."""
        self._syncing.pop(addr, None)
        self._start_sync(addr, node_id, now)

    def _start_sync(self, addr: str, node_id: str | None, now: float) -> None:
        started = self._syncing.get(addr)
        if started is not None and now - started < self.suspect_timeout:
            return  # one chain per peer at a time
        if node_id is not None:
            self._synced_with[node_id] = now
        self._syncing[addr] = now
        data = self._message_for(node_id, now, sync=True)
        self._outbox.append(Outgoing(addr, node_id, data))

    def _continue_sync(self, addr: str, node_id: str, after: str, now: float) -> None:
        if addr not in self._syncing:
            return  # not a chain of ours (or it was given up)
        self._syncing[addr] = now
        data = self._message_for(node_id, now, sync=True, sync_after=after)
        self._outbox.append(Outgoing(addr, node_id, data))

    def _sync_reply(self, requester: str, parsed: Parsed, now: float) -> bytes:
        if not parsed.sync_after:
            last = self._synced_with.get(requester)
            r = self._members.get(requester)
            if (last is None or now - last >= self.suspect_timeout) and r is not None:
                # Push/pull: pull the requester's state too (it pushed only its first page).
                self._start_sync(r.addr, requester, now)
        return self._message_for(requester, now, page_after=parsed.sync_after)

    def _background(self, now: float) -> list[Outgoing]:
        """Joining through seeds, periodic sync, and retries of Down members and seeds."""
        live = self._live_others
        if not live:
            for addr in self._seeds:
                self._syncing.pop(addr, None)
                self._start_sync(addr, None, now)
        else:
            if now - self._last_sync >= self.sync_interval * max(1.0, len(live) / _SYNC_SCALE):
                self._last_sync = now
                pick = self._members[self._rng.choice(live)]
                self._start_sync(pick.addr, pick.id, now)
            if now >= self._next_reconnect:
                self._next_reconnect = now + self.reconnect_interval
                self._reconnect(now)
        for addr, since in list(self._syncing.items()):
            if now - since >= self.suspect_timeout:
                del self._syncing[addr]
        return self.take_outgoing()

    def _reconnect(self, now: float) -> None:
        down = [i for i in self._dead if self._members[i].status is NodeStatus.DOWN]
        if down:
            m = self._members[self._rng.choice(down)]
            self._start_sync(m.addr, m.id, now)
        live_addrs = {self._members[i].addr for i in self._live_others}
        lost = [a for a in self._seeds if a not in live_addrs]
        if lost:
            self._start_sync(self._rng.choice(lost), None, now)

    # ------------------------------------------------------------------ internals

    def _forget(self, m: _Member) -> None:
        del self._members[m.id]
        self._dead.pop(m.id, None)
        self._suspects.pop(m.id, None)
        self._probing.pop(m.id, None)
        self._awaiting.pop(m.id, None)
        self._tell.pop(m.id, None)
        self._rumors.pop(m.id, None)
        self._relays.pop(m.id, None)
        self._synced_with.pop(m.id, None)
        self._set_actors(m, {})
        self._live_ring = None

    def _rumor(self, node_id: str) -> None:
        m = self._members.get(node_id)
        if m is not None:
            m.encoded = None
        self._rumors[node_id] = 0
        if not self._rumor_buckets:
            self._rumor_buckets.append(deque())
        self._rumor_buckets[0].append(node_id)

    def _rumor_limit(self) -> int:
        # SWIM's dissemination: each node retransmits a piece of news about 3 * log2(N) times.
        return 3 * max(1, math.ceil(math.log2(len(self._members) + 1)))

    def _take_rumors(self, budget: int, included: set[str]) -> list[str]:
        """Up to ``budget`` rumors not in ``included`` (which they join), least sent first;
        counts the sends."""
        taken: list[str] = []
        skipped: list[tuple[int, str]] = []
        limit = self._rumor_limit()
        rumors = self._rumors
        buckets = self._rumor_buckets
        for sends, bucket in enumerate(buckets):
            while bucket and len(taken) < budget:
                node_id = bucket.popleft()
                if rumors.get(node_id) != sends or node_id not in self._members:
                    if rumors.get(node_id) == sends:
                        del rumors[node_id]
                    continue  # stale entry
                if node_id in included:
                    skipped.append((sends, node_id))
                    continue
                taken.append(node_id)
                included.add(node_id)
                if sends + 1 >= limit:
                    del rumors[node_id]
                else:
                    rumors[node_id] = sends + 1
                    if len(buckets) <= sends + 1:
                        buckets.append(deque())
                    buckets[sends + 1].append(node_id)
            if len(taken) >= budget:
                break
        for sends, node_id in reversed(skipped):
            buckets[sends].appendleft(node_id)
        return taken

    def _after_status_change(self, m: _Member, old: NodeStatus | None, now: float) -> None:
        m.encoded = None
        self._live_ring = None
        self._suspects.pop(m.id, None)
        self._dead.pop(m.id, None)
        if m.status is NodeStatus.SUSPECT:
            self._suspects[m.id] = None
        else:
            m.suspecters = {}
            if m.status in (NodeStatus.DOWN, NodeStatus.LEFT):
                self._dead[m.id] = None
        if old != m.status:
            self._events.append(_EVENT[m.status](Node(m.id, m.addr, m.status)))

    def _set_status(self, m: _Member, status: NodeStatus, since: float, now: float) -> None:
        old = m.status
        m.status = status
        m.status_since = since
        self._after_status_change(m, old, now)

    def _ring(self, now: float) -> list[str]:
        if self._live_ring is None:
            ring = sorted(i for i, m in self._members.items() if m.status in _LIVE or m is self._me)
            self._live_ring = ring
            self._live_others = [i for i in ring if i != self.id]
            monitored: dict[str, None] = {}
            if len(ring) - 1 <= self.monitors:
                monitored = dict.fromkeys(self._live_others)
            else:
                start = ring.index(self.id)
                for step in range(1, self.monitors + 1):
                    monitored[ring[(start + step) % len(ring)]] = None
            for node_id in monitored:
                if node_id not in self._monitored:
                    # Newly watched: what we knew of it came second hand, possibly long ago;
                    # start its clock now rather than suspect it for our own lack of attention.
                    m = self._members[node_id]
                    m.last_direct = max(m.last_direct, now)
            self._monitored = monitored
        return self._live_ring

    def _targets(self, now: float) -> list[tuple[str, str | None]]:
        self._ring(now)
        chosen = list(self._monitored)
        others = self._live_others
        if len(others) > len(chosen):
            picks = self._rng.sample(others, min(len(others), self.fanout + len(chosen)))
            extra = [p for p in picks if p not in self._monitored][: self.fanout]
            chosen.extend(extra)
        for node_id in list(self._tell)[:_MAX_TELL]:
            del self._tell[node_id]
            m = self._members.get(node_id)
            if m is not None and m.status in _LIVE and node_id not in chosen:
                chosen.append(node_id)
        return [(self._members[i].addr, i) for i in chosen]

    def _message_for(
        self,
        target: str | None,
        now: float,
        *,
        include: str | None = None,
        probe_for: list[str] | None = None,
        relayed: str | None = None,
        sync: bool = False,
        sync_after: str = "",
        page_after: str | None = None,
    ) -> bytes:
        # A Gossip message is its MemberState entries, each as field 1 (tag 0x0A, length):
        # entries are encoded once and reused until they change, then joined.
        members = self._members
        parts = [self._entry_bytes(self._me, now)]
        included = {self.id}
        if target is not None and target in members and target != self.id:
            m = members[target]
            if m.accused is not None:
                parts.append(self._accusation_bytes(m, now))
                m.accused = None
            else:
                parts.append(self._entry_bytes(m, now))
            included.add(target)
        if include is not None and include not in included and include in members:
            parts.append(self._entry_bytes(members[include], now))
            included.add(include)
        extra = pb.Gossip()
        if page_after is not None:
            ring = self._ring(now)
            start = bisect.bisect_right(ring, page_after) if page_after else 0
            size = 0
            count = 0
            index = start
            while index < len(ring) and count < _PAGE_ENTRIES and size < _PAGE_BYTES:
                node_id = ring[index]
                index += 1
                if node_id in included:
                    continue
                data = self._entry_bytes(members[node_id], now)
                parts.append(data)
                included.add(node_id)
                size += len(data)
                count += 1
            if index < len(ring):
                extra.sync_next = ring[index - 1]
        for node_id in self._take_rumors(self.max_piggyback, included):
            parts.append(self._entry_bytes(members[node_id], now))
        others = self._live_others
        if others and self.samples and page_after is None:
            room = self.samples
            for node_id in self._rng.sample(others, min(len(others), self.samples + 2)):
                if not room:
                    break
                sample = members.get(node_id)  # the list may predate a change in this exchange
                if sample is not None and node_id not in included:
                    included.add(node_id)
                    parts.append(self._entry_bytes(sample, now))
                    room -= 1
        if probe_for:
            extra.probe_for.extend(probe_for)
        if relayed is not None:
            extra.relayed.append(relayed)
        if sync:
            extra.sync = True
            extra.sync_after = sync_after
        return b"".join(_field1(part) for part in parts) + extra.SerializeToString()

    def _entry_bytes(self, m: _Member, now: float) -> bytes:
        if m.encoded is not None:
            return m.encoded
        e = pb.MemberState()
        self._fill(e, m, now)
        data = e.SerializeToString()
        if m.status is NodeStatus.UP:  # other statuses carry an age that changes with time
            m.encoded = data
        return data

    def _accusation_bytes(self, m: _Member, now: float) -> bytes:
        # The member as someone claimed it (on older news): so that it refutes at once.
        e = pb.MemberState()
        self._fill(e, m, now)
        assert m.accused is not None
        e.status = STATUS_TO_PB[m.accused]
        e.status_age_ms = 0
        return e.SerializeToString()

    def _fill(self, e: pb.MemberState, m: _Member, now: float) -> None:
        e.id = m.id
        e.addr = m.addr
        e.status = STATUS_TO_PB[m.status]
        e.incarnation = m.incarnation
        e.heartbeat = m.heartbeat
        if m.status is not NodeStatus.UP:
            e.status_age_ms = _age_ms(now - m.status_since)
        if m.status is NodeStatus.SUSPECT:
            e.suspecters.extend(m.suspecters)
        e.registry_version = m.registry_version
        for name, (type_name, at) in m.actors.items():
            e.actors.add(name=name, type_name=type_name, registered_at_ms=at)

    # ------------------------------------------------------------------ merge rules

    def _merge_self(self, e: pb.MemberState, now: float) -> None:
        me = self._me
        if me.status is NodeStatus.LEFT:
            return
        status = STATUS_FROM_PB[e.status]
        if e.incarnation > me.incarnation:
            # Someone describes us in a later life than ours (stale after a clock step back,
            # or hostile): refute above it, or we could never be Up again.
            me.incarnation = e.incarnation + 1
            self._restamp_actors()
        elif e.incarnation == me.incarnation and (
            status is not NodeStatus.UP or e.addr != me.addr or e.heartbeat > me.heartbeat
        ):
            # A suspicion, a verdict or another address in this very life: refute it with a
            # newer incarnation, which beats any claim about the older one.
            me.incarnation += 1
        else:
            return
        me.encoded = None
        self.health = min(MAX_HEALTH, self.health + 1)

    def _restamp_actors(self) -> None:
        # Registration times may not predate the incarnation by more than the allowed lead.
        me = self._me
        floor = me.incarnation - MAX_INCARNATION_LEAD_MS
        if any(at < floor for _, at in me.actors.values()):
            self._set_actors(me, {n: (t, max(at, floor)) for n, (t, at) in me.actors.items()})
            me.registry_version += 1

    def _merge(
        self,
        e: pb.MemberState,
        now: float,
        *,
        answered_from: str | None = None,
        direct: bool = False,
    ) -> None:
        if e.id == self.id:
            self._merge_self(e, now)
            return
        status = STATUS_FROM_PB[e.status]
        since = now - e.status_age_ms / 1000.0
        m = self._members.get(e.id)
        if m is None:
            if status not in _LIVE:
                return  # news of the death of a stranger: nothing to forget
            if len(self._members) >= self.max_members:
                self._limit_log.warning(
                    "ignoring member %s: %d members known, the limit",
                    short(e.id),
                    len(self._members),
                )
                return
            m = _Member(e.id, e.addr, now)
            m.incarnation = e.incarnation
            m.heartbeat = e.heartbeat
            m.status = status
            if status is NodeStatus.SUSPECT:
                m.status_since = self._clamp_since(since, now)
                m.suspecters = _suspecters(e)
            m.verdict_heartbeat = e.heartbeat
            self._members[e.id] = m
            m.registry_version = -1
            self._adopt_actors(m, e)
            self._after_status_change(m, None, now)
            self._rumor(e.id)
            return
        if m.pending_addr is not None and answered_from == m.pending_addr == e.addr:
            # The announced address answered as this member: adopt it.
            m.addr = e.addr
            m.pending_addr = None
            m.encoded = None
            self._live_ring = None
            self._rumor(e.id)
        if e.incarnation > m.incarnation:
            # A newer life or a refutation: produced by the member itself, so it is news.
            old = m.status
            if e.addr != m.addr:
                if answered_from == e.addr:
                    m.addr = e.addr
                    m.pending_addr = None
                elif m.pending_addr != e.addr:
                    # Not before that address answers as this member: ask it.
                    m.pending_addr = e.addr
                    data = self._message_for(m.id, now)
                    self._outbox.append(Outgoing(e.addr, m.id, data))
            m.incarnation = e.incarnation
            m.heartbeat = e.heartbeat
            m.accused = None
            m.last_direct = max(m.last_direct, now)
            m.awaiting = None
            m.probe_since = None
            self._probing.pop(m.id, None)
            if status is NodeStatus.UP:
                m.status = status
                m.status_since = now
            else:
                m.status = status
                m.status_since = self._clamp_since(since, now)
            m.suspecters = _suspecters(e) if status is NodeStatus.SUSPECT else {}
            m.verdict_heartbeat = e.heartbeat
            m.registry_version = -1  # any registry of the new life replaces the old one
            self._adopt_actors(m, e)
            self._after_status_change(m, old, now)
            self._rumor(e.id)
            return
        if e.incarnation < m.incarnation or m.status is NodeStatus.LEFT:
            return  # stale, or final for this life
        if m.status is NodeStatus.UP:
            changed = self._merge_into_up(m, e, status, since, now)
        else:
            direct = direct and e.addr == m.addr
            changed = self._merge_into_verdict(m, e, status, since, now, direct=direct)
        if e.registry_version > m.registry_version:
            changed = self._adopt_actors(m, e) or changed
        if changed:
            self._rumor(e.id)

    def _merge_into_up(
        self, m: _Member, e: pb.MemberState, status: NodeStatus, since: float, now: float
    ) -> bool:
        # An entry of this life about a member we hold Up; True if our entry changed.
        known = m.heartbeat
        if e.heartbeat > known:
            # Newer news of this life than ours (the member produced it after what we knew).
            self._alive_news(m, e.heartbeat, now)
        if status is NodeStatus.UP:
            return False
        if e.heartbeat >= known:
            self._adopt_claim(m, e, status, since, now)
            return True
        # An accusation made on older news than ours: not adopted; tell the member, so that
        # it refutes wherever the accusation went.
        m.accused = status
        self._tell[m.id] = None
        return False

    def _merge_into_verdict(
        self,
        m: _Member,
        e: pb.MemberState,
        status: NodeStatus,
        since: float,
        now: float,
        *,
        direct: bool,
    ) -> bool:
        # An entry of this life about a member we hold Suspect or Down.
        if status is NodeStatus.UP:
            # Only the member itself refutes an accusation (a higher incarnation, or its own
            # message or answer), or a heartbeat it produced well after the accusation was made:
            # a heartbeat others heard before it (a dead node's last words, slowly spread by
            # the random entries) is no proof of life since.
            beyond = m.verdict_heartbeat + (0 if direct else self._silence_beats())
            if e.heartbeat > beyond and (direct or e.heartbeat > m.heartbeat):
                self._alive_news(m, max(e.heartbeat, m.heartbeat), now)
                self._set_status(m, NodeStatus.UP, now, now)
                return True
            if e.heartbeat > m.heartbeat:
                # Not a refutation, but the newest heartbeat we know: our accusation is made on
                # it from now on, so that those who heard it too adopt the accusation.
                m.heartbeat = e.heartbeat
                m.encoded = None
            return False
        if e.heartbeat > m.heartbeat:
            m.heartbeat = e.heartbeat
            m.encoded = None
        if e.heartbeat < m.verdict_heartbeat:
            # Made on older news than our own accusation: it can only add a suspecter.
            if status is NodeStatus.SUSPECT and m.status is NodeStatus.SUSPECT:
                return self._merge_suspecters(m, e)
            return False
        m.verdict_heartbeat = max(m.verdict_heartbeat, e.heartbeat)
        if _RANK[status] > _RANK[m.status]:
            self._adopt_claim(m, e, status, since, now)
            return True
        if status is NodeStatus.SUSPECT and m.status is NodeStatus.SUSPECT:
            return self._merge_suspecters(m, e)
        return False

    def _alive_news(self, m: _Member, heartbeat: int, now: float) -> None:
        m.heartbeat = heartbeat
        m.encoded = None
        m.last_direct = max(m.last_direct, now)
        m.awaiting = None
        m.probe_since = None
        self._probing.pop(m.id, None)

    def _silence_beats(self) -> int:
        """Heartbeats a live member produces in the silence a suspicion takes at least (one
        ``suspect_timeout``), at the rate of our own rounds (10 until two rounds are seen)."""
        if self._period is None:
            return 10
        return max(1, int(self.suspect_timeout / self._period))

    def _adopt_claim(
        self, m: _Member, e: pb.MemberState, status: NodeStatus, since: float, now: float
    ) -> None:
        suspecters = _suspecters(e) if status is NodeStatus.SUSPECT else {}
        self._set_status(m, status, self._clamp_since(min(since, now), now), now)
        m.suspecters = suspecters
        m.verdict_heartbeat = max(m.verdict_heartbeat, e.heartbeat)

    def _clamp_since(self, since: float, now: float) -> float:
        # A claimed age beyond any timeout would skip the wait others get to refute.
        return max(since, now - self.suspicion_mult * self.suspect_timeout)

    def _merge_suspecters(self, m: _Member, e: pb.MemberState) -> bool:
        grew = False
        for node_id in e.suspecters:
            if len(m.suspecters) >= MAX_SUSPECTERS:
                break
            if node_id not in m.suspecters:
                m.suspecters[node_id] = None
                grew = True
        if grew:
            m.encoded = None
        return grew

    def _adopt_actors(self, m: _Member, e: pb.MemberState) -> bool:
        if e.registry_version <= m.registry_version:
            return False
        actors = {a.name: (a.type_name, a.registered_at_ms) for a in e.actors}
        size = registry_bytes(actors)
        if (
            self._actor_total - len(m.actors) + len(actors) > self.max_actors
            or self._registry_total - m.registry_bytes + size > self.max_registry_bytes
        ):
            self._limit_log.warning(
                "ignoring the %d actors of member %s: over the registry limits",
                len(actors),
                short(m.id),
            )
            return False
        self._set_actors(m, actors, size)
        m.registry_version = e.registry_version
        return True

    def _set_actors(
        self, m: _Member, actors: dict[str, tuple[str, int]], size: int | None = None
    ) -> None:
        m.encoded = None
        for name in m.actors:
            if name not in actors:
                self._unindex(name, m.id)
        for name in actors:
            self._actor_index.setdefault(name, {})[m.id] = None
        self._actor_total += len(actors) - len(m.actors)
        new_size = registry_bytes(actors) if size is None else size
        self._registry_total += new_size - m.registry_bytes
        m.actors = actors
        m.registry_bytes = new_size

    def _unindex(self, name: str, node_id: str) -> None:
        holders = self._actor_index.get(name)
        if holders is not None:
            holders.pop(node_id, None)
            if not holders:
                del self._actor_index[name]


Membership.__module__ = "cinema.cluster"
Outgoing.__module__ = "cinema.cluster"


def _suspecters(e: pb.MemberState) -> dict[str, None]:
    return dict.fromkeys(list(e.suspecters)[:MAX_SUSPECTERS])


def _field1(data: bytes) -> bytes:
    """``data`` as a length-delimited field number 1 (protobuf wire format)."""
    size = len(data)
    head = bytearray(b"\x0a")
    while size >= 0x80:
        head.append((size & 0x7F) | 0x80)
        size >>= 7
    head.append(size)
    return bytes(head) + data


def _age_ms(seconds: float) -> int:
    return min(max(0, int(seconds * 1000)), 0xFFFFFFFF)
