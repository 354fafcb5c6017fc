"""Failure detection (SWIM with Lifeguard): silence timers, indirect probes and the helper
side of them, suspicion timeouts that shrink with independent confirmations, local health,
pauses, and the expiry of tombstones.

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
"""

from __future__ import annotations

import logging
import math
from typing import Final

from ._member import LIVE, MemberRecord, Outgoing
from ._messages import Messages
from ._types import NodeStatus
from ._validation import MAX_PROBES_PER_MESSAGE, MAX_SUSPECTERS

__all__ = ["MAX_HEALTH", "Detector"]

log = logging.getLogger("cinema.cluster")

#: The highest local-health score: probe timeouts are multiplied by ``health + 1``.
MAX_HEALTH: Final = 8
# Pending relays a helper keeps (targets, requesters per target).
_MAX_RELAY_TARGETS: Final = 64
_MAX_RELAY_REQUESTERS: Final = 8


class Detector(Messages):
    """The layers below plus failure detection."""

    indirect_probes: int
    suspicion_mult: float
    reconnect_window: float

    def __init__(self, node_id: str, addr: str, now: float, incarnation: int | None) -> None:
        super().__init__(node_id, addr, now, incarnation)
        #: Local health (Lifeguard): 0 is healthy; probe timeouts scale with ``health + 1``.
        self.health = 0
        self._awaiting: dict[str, None] = {}
        self._probing: dict[str, None] = {}
        # helper side of indirect probes: target id -> requester id -> since
        self._relays: dict[str, dict[str, float]] = {}
        self._last_tick: float | None = None
        self._period: float | None = None  # the measured time between our rounds
        self._last_heard = now  # the last message from anyone
        self._heard_since_tick = False

    def _probe_timeout(self) -> float:
        return self.suspect_timeout / 2 * (self.health + 1)

    def _suspicion_timeout(self, m: MemberRecord) -> float:
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

    def _silence_beats(self) -> int:
        """Heartbeats a live member produces in the silence a suspicion takes at least (one
        ``suspect_timeout``), at the rate of our own rounds (10 until two rounds are seen)."""
        if self._period is None:
            return 10
        return max(1, int(self.suspect_timeout / self._period))

    def _alive_news(self, m: MemberRecord, heartbeat: int, now: float) -> None:
        m.heartbeat = heartbeat
        m.encoded = None
        m.last_direct = max(m.last_direct, now)
        m.awaiting = None
        m.probe_since = None
        self._probing.pop(m.id, None)

    def _heard_from(self, m: MemberRecord, now: float) -> None:
        m.last_direct = now
        m.awaiting = None
        m.probe_since = None
        self._awaiting.pop(m.id, None)
        self._probing.pop(m.id, None)
        relays = self._relays.pop(m.id, None)
        if relays:
            for requester in relays:
                r = self._members.get(requester)
                if r is not None and r.status in LIVE and r is not self._me:
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
            if w is None or w.status not in LIVE:
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
            if p is None or started is None or p.status not in LIVE:
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
            if m is None or m is self._me or node_id == requester or m.status not in LIVE:
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

    def _forget(self, m: MemberRecord) -> None:
        super()._forget(m)
        self._probing.pop(m.id, None)
        self._awaiting.pop(m.id, None)
        self._relays.pop(m.id, None)
