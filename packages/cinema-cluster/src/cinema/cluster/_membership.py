"""The membership engine: SWIM-style member state, merge rules, failure detection and the
distributed registry, with no I/O and no clock of its own.

The caller (a :class:`~cinema.cluster.ClusterNode`, or a simulation) passes the current time
into every call, calls :meth:`Membership.tick` once per gossip interval and delivers the bytes it
returns; whatever arrives goes into :meth:`Membership.receive`. That keeps the rules testable
deterministically and lets a thousand nodes run in one process.

How it scales (bytes per node per round do not grow with the cluster):

- Every gossip message is bounded: the sender's own entry, the receiver's entry as the sender sees
  it (so a wrongly suspected receiver refutes at once), at most ``max_piggyback`` recently changed
  entries (each retransmitted about ``3 * log2(N)`` times, SWIM's dissemination), and
  ``samples`` random entries (anti-entropy, so that late joiners converge).
- Heartbeats are *not* spread to everyone every round (that costs O(N) per node). Each node is
  watched by its ``monitors`` ring predecessors: every node exchanges gossip each round with the
  ``monitors`` nodes that follow it in the sorted ring of live ids, and with ``fanout`` random
  others. A monitor hears the node's heartbeat every round and applies the timeouts; other nodes
  take its verdict from the gossip, which carries how long ago the suspicion began, so that all
  of them mark the node Down at the same moment: ``2 * suspect_timeout`` after the last news.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, final

from google.protobuf.message import DecodeError

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
from .proto import gossip_pb2 as pb

__all__ = ["Membership", "Outgoing", "wall_clock_ms"]

log = logging.getLogger("cinema.cluster")

#: Entries in one gossip message above this make the whole message be rejected.
MAX_ENTRIES: Final = 256
#: Actors one member may announce.
MAX_ACTORS_PER_MEMBER: Final = 4096
MAX_ID_LENGTH: Final = 256
MAX_NAME_LENGTH: Final = 512
MAX_HEARTBEAT: Final = 1 << 62
#: An incarnation more than this far (ms) ahead of our wall clock is absurd (or hostile).
MAX_INCARNATION_LEAD_MS: Final = 24 * 3600 * 1000

# Unanswered requests (over at least suspect_timeout) before a non-monitor suspects a peer.
_UNANSWERED_TO_SUSPECT: Final = 2

_STATUS_FROM_PB: Final = {
    pb.MEMBER_STATUS_UP: NodeStatus.UP,
    pb.MEMBER_STATUS_SUSPECT: NodeStatus.SUSPECT,
    pb.MEMBER_STATUS_DOWN: NodeStatus.DOWN,
    pb.MEMBER_STATUS_LEFT: NodeStatus.LEFT,
}
_STATUS_TO_PB: Final = {v: k for k, v in _STATUS_FROM_PB.items()}
# At equal incarnation the stronger claim wins: a suspicion overrides "alive" (only the node
# itself can refute it, by raising its incarnation), and Down / Left are final for that life.
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
        ``False`` for a one-way message (a leave notice).
    """

    addr: str
    node_id: str | None
    data: bytes
    expects_reply: bool = True


class _Member:
    __slots__ = (
        "actors",
        "addr",
        "encoded",
        "heartbeat",
        "id",
        "incarnation",
        "last_news",
        "probed_since",
        "registry_version",
        "status",
        "status_since",
        "unanswered",
    )

    def __init__(self, id: str, addr: str, now: float) -> None:
        self.id = id
        self.addr = addr
        self.status = NodeStatus.UP
        self.incarnation = 0
        self.heartbeat = 0
        self.last_news = now
        self.status_since = now
        # Requests we sent it that it has not answered, since the first of them.
        self.unanswered = 0
        self.probed_since = 0.0
        self.registry_version = 0
        self.encoded: bytes | None = None  # this entry serialized, while it is unchanged
        # name -> (type name, registered_at_ms)
        self.actors: dict[str, tuple[str, int]] = {}


@final
class Membership:
    """One node's view of the cluster and the rules that keep it up to date.

    :param node_id: this node's id (unique in the cluster).
    :param addr: the address others reach this node at.
    :param suspect_timeout: seconds without news before a member is suspected; Down after twice
        that.
    :param now: the current time (seconds, any monotonic origin; the same clock for every call).
    :param incarnation: this life's incarnation; default: the wall clock in milliseconds, so that
        it grows across restarts.
    :param rng: randomness for peer selection (seed it for reproducible simulations).
    :param fanout: random peers gossiped with per round, besides the monitored ones.
    :param monitors: how many ring successors each node watches (and so how many nodes watch it).
    :param max_piggyback: recently changed entries per message.
    :param samples: random entries per message (anti-entropy).
    :param tombstone_ttl: seconds a Down or Left member is remembered (so that stale gossip does
        not bring it back); Down ones are shown by :meth:`members` until then. Default:
        ``max(60, 24 * suspect_timeout)``.
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
        wall_clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        if not node_id or len(node_id) > MAX_ID_LENGTH:
            raise ValueError(f"node id must have 1..{MAX_ID_LENGTH} characters: {node_id!r}")
        if not addr or len(addr) > MAX_ID_LENGTH:
            raise ValueError(f"address must have 1..{MAX_ID_LENGTH} characters: {addr!r}")
        if not suspect_timeout > 0:
            raise ValueError(f"suspect_timeout must be positive, not {suspect_timeout!r}")
        self.id = node_id
        self.addr = addr
        self.suspect_timeout = float(suspect_timeout)
        self._wall_clock = wall_clock
        self.incarnation = wall_clock() if incarnation is None else incarnation
        self.heartbeat = 0
        self.status = NodeStatus.UP
        self._status_since = now
        self.registry_version = 0
        self._actors: dict[str, tuple[str, int]] = {}
        self._rng = rng if rng is not None else random.Random()
        self.fanout = fanout
        self.monitors = monitors
        self.max_piggyback = max_piggyback
        self.samples = samples
        self.tombstone_ttl = (
            max(60.0, 24 * self.suspect_timeout) if tombstone_ttl is None else tombstone_ttl
        )
        self._members: dict[str, _Member] = {}
        self._suspects: set[str] = set()
        self._dead: set[str] = set()  # Down or Left: tombstones
        self._live_ring: list[str] | None = None  # sorted live ids with our own; None = stale
        self._live_others: list[str] = []
        self._monitored: set[str] = set()
        self._probing: set[str] = set()
        # Rumors: node id -> times sent so far; buckets[k] holds the ids sent k times (stale
        # entries are skipped), so that the least-sent news always goes out first.
        self._rumors: dict[str, int] = {}
        self._rumor_buckets: list[deque[str]] = []
        self._self_cache: tuple[tuple[int, int, int], bytes] | None = None
        self._seeds: list[str] = []
        self._events: list[MemberEvent] = []
        # actor name -> ids of members (ours included) that announce it
        self._actor_index: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ queries

    def members(self, now: float) -> list[Node]:
        """Every member this node knows, itself included, sorted by id.

        Down members are listed until their tombstone expires; Left ones for one
        ``suspect_timeout`` after they left.
        """
        nodes = [Node(self.id, self.addr, self.status)]
        for m in self._members.values():
            if m.status is NodeStatus.LEFT and now - m.status_since >= self.suspect_timeout:
                continue
            nodes.append(Node(m.id, m.addr, m.status))
        nodes.sort(key=lambda n: n.id)
        return nodes

    def member(self, node_id: str) -> Node | None:
        """The member with this id (``None`` if unknown or forgotten)."""
        if node_id == self.id:
            return Node(self.id, self.addr, self.status)
        m = self._members.get(node_id)
        return None if m is None else Node(m.id, m.addr, m.status)

    def incarnation_of(self, node_id: str) -> int | None:
        """The incarnation this node knows of a member (``None`` if unknown)."""
        if node_id == self.id:
            return self.incarnation
        m = self._members.get(node_id)
        return None if m is None else m.incarnation

    def incarnation_at(self, addr: str) -> int | None:
        """The incarnation of the live member at ``addr`` (``None`` if none is known there)."""
        for m in self._members.values():
            if m.addr == addr and m.status in _LIVE:
                return m.incarnation
        return None

    def status_of(self, node_id: str) -> NodeStatus | None:
        """The status of a member (``None`` if unknown)."""
        node = self.member(node_id)
        return None if node is None else node.status

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
            if node_id == self.id:
                if self.status is not NodeStatus.UP:
                    continue
                type_name, at = self._actors[name]
            else:
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

    # ------------------------------------------------------------------ local changes

    def add_member(
        self, node: Node, now: float, *, announce: bool = True, incarnation: int = 0
    ) -> None:
        """Learn of a member by hand (as the seed's ``add_member``).

        :param announce: spread it as news (``False`` when pre-building a simulated cluster).
        :param incarnation: its incarnation, if known; by default 0, so that anything the
            member itself says wins.
        """
        if node.id == self.id:
            return
        if node.id in self._members:
            return
        m = _Member(node.id, node.addr, now)
        m.status = node.status
        m.incarnation = incarnation
        self._members[node.id] = m
        self._after_status_change(m, None, now)
        if announce:
            self._rumor(node.id)

    def add_seeds(self, addrs: Iterable[str]) -> None:
        """Addresses to contact (every round) while no other member is known to be live."""
        for addr in addrs:
            if addr != self.addr and addr not in self._seeds:
                self._seeds.append(addr)

    def register_actor(self, name: str, type_name: str) -> None:
        """Announce an actor on this node. Registering it again (same type) is a no-op."""
        if not name or len(name) > MAX_NAME_LENGTH or len(type_name) > MAX_NAME_LENGTH:
            raise ValueError(f"actor and type names must have 1..{MAX_NAME_LENGTH} characters")
        current = self._actors.get(name)
        if current is not None and current[0] == type_name:
            return
        if current is None and len(self._actors) >= MAX_ACTORS_PER_MEMBER:
            raise ValueError(f"a node announces at most {MAX_ACTORS_PER_MEMBER} actors")
        self._actors[name] = (type_name, self._wall_clock())
        self._actor_index.setdefault(name, set()).add(self.id)
        self.registry_version += 1

    def unregister_actor(self, name: str) -> bool:
        """Withdraw an actor of this node; ``False`` if it was not registered here."""
        if self._actors.pop(name, None) is None:
            return False
        self._unindex(name, self.id)
        self.registry_version += 1
        return True

    def leave(self, now: float) -> list[Outgoing]:
        """Mark this node Left and return the notices to send (one-way) to the usual peers."""
        self.status = NodeStatus.LEFT
        self._status_since = now
        self.heartbeat += 1
        return [
            Outgoing(addr, node_id, data, expects_reply=False)
            for addr, node_id, data in self._messages(self._targets(now), now)
        ]

    # ------------------------------------------------------------------ rounds

    def tick(self, now: float) -> list[Outgoing]:
        """Run one gossip round: beat, apply the timeouts, and return the messages to send."""
        self.heartbeat += 1
        self._apply_timeouts(now)
        targets = self._targets(now)
        for _, node_id in targets:
            if node_id is not None:
                m = self._members[node_id]
                if m.unanswered == 0:
                    m.probed_since = now
                m.unanswered += 1
                self._probing.add(node_id)
        return [
            Outgoing(addr, node_id, data) for addr, node_id, data in self._messages(targets, now)
        ]

    def receive(
        self, data: bytes, now: float, *, peer: str = "?", reply: bool = True
    ) -> bytes | None:
        """Apply a gossip message and return the reply to send back (``None`` if none is due).

        A message that fails validation is rejected as a whole with a warning in the log, and
        changes nothing.

        :param peer: the peer's address, for the log line.
        :param reply: whether the sender waits for a reply (requests), as opposed to a one-way
            message or a reply.
        """
        try:
            entries = self._validate(data)
        except GossipRejected as exc:
            log.warning("rejected gossip from %s: %s", peer, exc)
            return None
        for entry in entries:
            self._merge(entry, now)
        heard = self._members.get(entries[0].id)
        if heard is not None:
            heard.unanswered = 0
            self._probing.discard(heard.id)
        if not reply or self.status is NodeStatus.LEFT:
            return None
        sender = entries[0]
        return self._message_for(sender.id, now)

    # ------------------------------------------------------------------ internals

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
        return 3 * max(1, math.ceil(math.log2(len(self._members) + 2)))

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
        self._suspects.discard(m.id)
        self._dead.discard(m.id)
        if m.status is NodeStatus.SUSPECT:
            self._suspects.add(m.id)
        elif m.status in (NodeStatus.DOWN, NodeStatus.LEFT):
            self._dead.add(m.id)
        if old != m.status:
            self._events.append(_EVENT[m.status](Node(m.id, m.addr, m.status)))

    def _set_status(self, m: _Member, status: NodeStatus, since: float, now: float) -> None:
        old = m.status
        m.status = status
        m.status_since = since
        self._after_status_change(m, old, now)

    def _ring(self, now: float) -> list[str]:
        if self._live_ring is None:
            others = sorted(i for i, m in self._members.items() if m.status in _LIVE)
            self._live_others = others
            ring = [*others, self.id]
            ring.sort()
            self._live_ring = ring
            monitored: set[str] = set()
            if len(others) <= self.monitors:
                monitored.update(others)
            else:
                start = ring.index(self.id)
                for step in range(1, self.monitors + 1):
                    monitored.add(ring[(start + step) % len(ring)])
            for node_id in monitored - self._monitored:
                # Newly watched: what we knew of it came second hand, possibly long ago;
                # start its clock now rather than suspect it for our own lack of attention.
                m = self._members[node_id]
                m.last_news = max(m.last_news, now)
            self._monitored = monitored
        return self._live_ring

    def _apply_timeouts(self, now: float) -> None:
        self._ring(now)
        timeout = self.suspect_timeout
        for node_id in list(self._monitored):
            m = self._members[node_id]
            if m.status is NodeStatus.UP and now - m.last_news >= timeout:
                self._set_status(m, NodeStatus.SUSPECT, m.last_news + timeout, now)
                self._rumor(node_id)
        for node_id in list(self._probing):
            # Random peers that ignore us: the ring monitors catch every death, but a partition
            # may leave a node's monitors all on the far side, so direct silence counts too.
            m = self._members[node_id]
            if (
                m.status is NodeStatus.UP
                and m.unanswered >= _UNANSWERED_TO_SUSPECT
                and now - m.probed_since >= timeout
                and now - m.last_news >= timeout
            ):
                self._set_status(m, NodeStatus.SUSPECT, now, now)
                self._rumor(node_id)
            elif m.status is not NodeStatus.UP:
                self._probing.discard(node_id)
        for node_id in list(self._suspects):
            m = self._members[node_id]
            if now - m.status_since >= timeout:
                self._set_status(m, NodeStatus.DOWN, m.status_since + timeout, now)
                self._rumor(node_id)
        for node_id in list(self._dead):
            m = self._members[node_id]
            if now - m.status_since >= self.tombstone_ttl:
                del self._members[node_id]
                self._dead.discard(node_id)
                self._probing.discard(node_id)
                self._rumors.pop(node_id, None)
                for name in m.actors:
                    self._unindex(name, node_id)

    def _targets(self, now: float) -> list[tuple[str, str | None]]:
        self._ring(now)
        chosen = sorted(self._monitored)
        others = self._live_others
        pool = len(others) - len(chosen)
        if pool > 0:
            picks = self._rng.sample(others, min(len(others), self.fanout + len(chosen)))
            extra = [p for p in picks if p not in self._monitored][: self.fanout]
            chosen.extend(extra)
        targets: list[tuple[str, str | None]] = [(self._members[i].addr, i) for i in chosen]
        if self._dead and self._rng.random() < 1 / 3:
            # Probe a Down member now and then: if it is alive (a partition healed), the
            # exchange makes each side refute the other's verdict.
            down = [i for i in self._dead if self._members[i].status is NodeStatus.DOWN]
            if down:
                down.sort()
                pick = self._rng.choice(down)
                targets.append((self._members[pick].addr, pick))
        if not others:
            targets.extend((addr, None) for addr in self._seeds)
        return targets

    def _messages(
        self, targets: list[tuple[str, str | None]], now: float
    ) -> list[tuple[str, str | None, bytes]]:
        return [(addr, node_id, self._message_for(node_id, now)) for addr, node_id in targets]

    def _message_for(self, target: str | None, now: float) -> bytes:
        # A Gossip message is its MemberState entries, each as field 1 (tag 0x0A, length):
        # entries are encoded once and reused until they change, then joined.
        parts = [self._self_bytes(now)]
        included = {self.id}
        members = self._members
        if target is not None and target in members:
            parts.append(self._entry_bytes(members[target], now))
            included.add(target)
        for node_id in self._take_rumors(self.max_piggyback, included):
            parts.append(self._entry_bytes(members[node_id], now))
        others = self._live_others
        if others and self.samples:
            room = self.samples
            for node_id in self._rng.sample(others, min(len(others), self.samples + 2)):
                if not room:
                    break
                m = members.get(node_id)  # the list may predate a change in this exchange
                if m is not None and node_id not in included:
                    included.add(node_id)
                    parts.append(self._entry_bytes(m, now))
                    room -= 1
        return b"".join(_field1(part) for part in parts)

    def _self_bytes(self, now: float) -> bytes:
        cached = self._self_cache
        key = (self.heartbeat, self.incarnation, self.registry_version)
        if cached is not None and cached[0] == key and self.status is NodeStatus.UP:
            return cached[1]
        e = pb.MemberState()
        self._fill_self(e, now)
        data = e.SerializeToString()
        self._self_cache = (key, data)
        return data

    def _entry_bytes(self, m: _Member, now: float) -> bytes:
        if m.encoded is not None:
            return m.encoded
        e = pb.MemberState()
        self._fill(e, m, now)
        data = e.SerializeToString()
        if m.status is NodeStatus.UP:  # other statuses carry an age that changes with time
            m.encoded = data
        return data

    def _fill_self(self, e: pb.MemberState, now: float) -> None:
        e.id = self.id
        e.addr = self.addr
        e.status = _STATUS_TO_PB[self.status]
        e.incarnation = self.incarnation
        e.heartbeat = self.heartbeat
        if self.status is not NodeStatus.UP:
            e.status_age_ms = _age_ms(now - self._status_since)
        e.registry_version = self.registry_version
        for name, (type_name, at) in self._actors.items():
            e.actors.add(name=name, type_name=type_name, registered_at_ms=at)

    def _fill(self, e: pb.MemberState, m: _Member, now: float) -> None:
        e.id = m.id
        e.addr = m.addr
        e.status = _STATUS_TO_PB[m.status]
        e.incarnation = m.incarnation
        e.heartbeat = m.heartbeat
        if m.status is not NodeStatus.UP:
            e.status_age_ms = _age_ms(now - m.status_since)
        e.registry_version = m.registry_version
        for name, (type_name, at) in m.actors.items():
            e.actors.add(name=name, type_name=type_name, registered_at_ms=at)

    def _validate(self, data: bytes) -> list[pb.MemberState]:
        msg = pb.Gossip()
        try:
            msg.ParseFromString(data)
        except DecodeError as exc:
            raise GossipRejected(f"not a gossip message ({exc})") from None
        entries = list(msg.members)
        if not entries:
            raise GossipRejected("no members")
        if len(entries) > MAX_ENTRIES:
            raise GossipRejected(f"{len(entries)} members, more than the {MAX_ENTRIES} allowed")
        max_incarnation = self._wall_clock() + MAX_INCARNATION_LEAD_MS
        seen: set[str] = set()
        for e in entries:
            if not e.id or len(e.id) > MAX_ID_LENGTH:
                raise GossipRejected(f"bad member id {e.id[:40]!r}")
            if e.id in seen:
                raise GossipRejected(f"member {e.id!r} listed twice")
            seen.add(e.id)
            if not e.addr or len(e.addr) > MAX_ID_LENGTH:
                raise GossipRejected(f"bad address for member {e.id!r}")
            if e.status not in _STATUS_FROM_PB:
                raise GossipRejected(f"bad status {e.status} for member {e.id!r}")
            if e.incarnation > max_incarnation:
                raise GossipRejected(f"absurd incarnation {e.incarnation} for member {e.id!r}")
            if e.heartbeat > MAX_HEARTBEAT:
                raise GossipRejected(f"absurd heartbeat {e.heartbeat} for member {e.id!r}")
            if len(e.actors) > MAX_ACTORS_PER_MEMBER:
                raise GossipRejected(f"{len(e.actors)} actors for member {e.id!r}")
            names: set[str] = set()
            for a in e.actors:
                if (
                    not a.name
                    or len(a.name) > MAX_NAME_LENGTH
                    or len(a.type_name) > MAX_NAME_LENGTH
                ):
                    raise GossipRejected(f"bad actor entry for member {e.id!r}")
                if a.name in names:
                    raise GossipRejected(f"actor {a.name!r} listed twice for member {e.id!r}")
                names.add(a.name)
            if e.id == self.id:
                if e.incarnation > self.incarnation:
                    raise GossipRejected(
                        f"claims this node ({self.id!r}) at incarnation {e.incarnation},"
                        f" newer than ours ({self.incarnation})"
                    )
                if e.incarnation == self.incarnation and e.addr != self.addr:
                    raise GossipRejected(
                        f"claims this node ({self.id!r}) lives at {e.addr!r}, not {self.addr!r}"
                    )
        sender = entries[0]
        if sender.id == self.id:
            raise GossipRejected(f"the sender claims to be this node ({self.id!r})")
        if _STATUS_FROM_PB[sender.status] not in (NodeStatus.UP, NodeStatus.LEFT):
            raise GossipRejected(f"the sender {sender.id!r} describes itself as not alive")
        return entries

    def _merge(self, e: pb.MemberState, now: float) -> None:
        status = _STATUS_FROM_PB[e.status]
        if e.id == self.id:
            # Someone believes we are suspect, down or gone in this very life: refute it with
            # a newer incarnation, which beats any claim about the older one.
            if (
                e.incarnation == self.incarnation
                and status is not NodeStatus.UP
                and self.status is NodeStatus.UP
            ):
                self.incarnation += 1
            return
        since = now - e.status_age_ms / 1000.0
        m = self._members.get(e.id)
        if m is None:
            if status not in _LIVE:
                return  # news of the death of a stranger: nothing to forget
            m = _Member(e.id, e.addr, now)
            m.incarnation = e.incarnation
            m.heartbeat = e.heartbeat
            m.status = status
            m.status_since = since if status is NodeStatus.SUSPECT else now
            self._members[e.id] = m
            self._adopt_actors(m, e)
            self._after_status_change(m, None, now)
            self._rumor(e.id)
            return
        if e.incarnation > m.incarnation:
            # A newer life or a refutation: produced by the member itself, so it is news.
            old = m.status
            m.addr = e.addr
            m.incarnation = e.incarnation
            m.heartbeat = e.heartbeat
            m.last_news = now
            m.status = status
            m.status_since = now if status is NodeStatus.UP else since
            m.registry_version = -1  # any registry of the new life replaces the old one
            self._adopt_actors(m, e)
            self._after_status_change(m, old, now)
            self._rumor(e.id)
            return
        if e.incarnation < m.incarnation:
            return  # stale
        changed = False
        if e.heartbeat > m.heartbeat:
            m.heartbeat = e.heartbeat
            m.encoded = None
            if m.status is NodeStatus.UP:
                m.last_news = now
        if _RANK[status] > _RANK[m.status]:
            self._set_status(m, status, min(since, now), now)
            changed = True
        if e.registry_version > m.registry_version:
            self._adopt_actors(m, e)
            changed = True
        if changed:
            self._rumor(e.id)

    def _adopt_actors(self, m: _Member, e: pb.MemberState) -> None:
        if e.registry_version <= m.registry_version:
            return
        m.encoded = None
        for name in m.actors:
            self._unindex(name, m.id)
        m.actors = {a.name: (a.type_name, a.registered_at_ms) for a in e.actors}
        for name in m.actors:
            self._actor_index.setdefault(name, set()).add(m.id)
        m.registry_version = e.registry_version

    def _unindex(self, name: str, node_id: str) -> None:
        holders = self._actor_index.get(name)
        if holders is not None:
            holders.discard(node_id)
            if not holders:
                del self._actor_index[name]


Membership.__module__ = "cinema.cluster"
Outgoing.__module__ = "cinema.cluster"


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
