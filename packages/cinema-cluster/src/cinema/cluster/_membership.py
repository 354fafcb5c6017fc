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

The rules are layered, one concept per module, each class building on the one below:
``_view`` (the member table and ring), ``_registry`` (announced actors), ``_messages``
(entries, rumors, samples, pages), ``_detector`` (failure detection), ``_merge`` (merge
rules), ``_sync`` (push/pull and healing), and this facade (rounds and arrivals).

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
  is told instead, and refutes. Once made, an accusation is cleared only by the member itself
  (its refutation, its own message) or by a heartbeat a whole ``suspect_timeout`` of rounds
  newer: a dead node's last heartbeat, spread late by others, does not revive it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Final, final

from ._detector import MAX_HEALTH
from ._errors import GossipRejected
from ._member import LIVE, MemberRecord, Outgoing, wall_clock_ms
from ._sync import Sync
from ._types import Node, NodeStatus
from ._validation import (
    DEFAULT_MAX_ACTORS,
    DEFAULT_MAX_MEMBERS,
    DEFAULT_MAX_REGISTRY_BYTES,
    MAX_ID_LENGTH,
    AddressCheck,
    BoundedLog,
    address_check_for,
    parse_gossip,
    short,
)

__all__ = ["MAX_HEALTH", "Membership", "Outgoing", "wall_clock_ms"]

log = logging.getLogger("cinema.cluster")

# Members told per round that someone accuses them on stale information.
_MAX_TELL: Final = 3


@final
class Membership(Sync):
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
        super().__init__(node_id, addr, now, incarnation)
        self._reject_log = BoundedLog(log)

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
        m = MemberRecord(node.id, node.addr, now)
        m.status = node.status
        m.incarnation = incarnation
        self._members[node.id] = m
        self._after_status_change(m, None, now)
        if announce:
            self._rumor(node.id)

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
            if m is not None and m.status in LIVE and node_id not in chosen:
                chosen.append(node_id)
        return [(self._members[i].addr, i) for i in chosen]


Membership.__module__ = "cinema.cluster"
