"""One node's table of members: their statuses and the events their changes make, the sorted
ring of live ids that decides who watches whom, and the queries over it."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from ._member import EVENT, LIVE, MemberRecord
from ._types import MemberEvent, Node, NodeStatus
from ._validation import BoundedLog

__all__ = ["View"]

log = logging.getLogger("cinema.cluster")


class View:
    """The member table, the lowest layer of :class:`~cinema.cluster.Membership`.

    Settings are set by ``Membership`` before the layers build their state; each layer above
    adds one concept (registry, messages, failure detection, merge rules, sync).
    """

    id: str
    suspect_timeout: float
    tombstone_ttl: float
    monitors: int
    _rng: random.Random
    _wall_clock: Callable[[], int]

    def __init__(self, node_id: str, addr: str, now: float, incarnation: int | None) -> None:
        me = MemberRecord(node_id, addr, now)
        me.incarnation = self._wall_clock() if incarnation is None else incarnation
        self._me = me
        self._members: dict[str, MemberRecord] = {node_id: me}
        # Ordered dicts, not sets, wherever the order is iterated: a run must not depend on
        # PYTHONHASHSEED.
        self._suspects: dict[str, None] = {}
        self._dead: dict[str, None] = {}  # Down or Left: tombstones
        self._live_ring: list[str] | None = None  # sorted live ids with our own; None = stale
        self._live_others: list[str] = []
        self._monitored: dict[str, None] = {}
        self._events: list[MemberEvent] = []
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
            if m.addr == addr and m.status in LIVE and m is not self._me:
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

    def drain_events(self) -> list[MemberEvent]:
        """Membership events since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    # ------------------------------------------------------------------ changes

    def _after_status_change(self, m: MemberRecord, old: NodeStatus | None, now: float) -> None:
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
            self._events.append(EVENT[m.status](Node(m.id, m.addr, m.status)))

    def _set_status(self, m: MemberRecord, status: NodeStatus, since: float, now: float) -> None:
        old = m.status
        m.status = status
        m.status_since = since
        self._after_status_change(m, old, now)

    def _ring(self, now: float) -> list[str]:
        if self._live_ring is None:
            ring = sorted(i for i, m in self._members.items() if m.status in LIVE or m is self._me)
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

    def _forget(self, m: MemberRecord) -> None:
        # Each layer forgets what it keeps of the member too.
        del self._members[m.id]
        self._dead.pop(m.id, None)
        self._suspects.pop(m.id, None)
        self._live_ring = None
