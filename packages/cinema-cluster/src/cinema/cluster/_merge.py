"""The merge rules: how an entry heard about a member (or about this node) changes what this
node believes, and which claims it adopts, rejects or refutes.

- A higher incarnation is a newer life or a refutation, produced by the member itself: it wins.
  A member's address changes only after the new address answers as that member.
- Within one incarnation a higher status rank (Suspect, Down, Left) wins at the same heartbeat;
  a higher heartbeat is newer information than any claim made before it: an accusation made
  with an older heartbeat than one already heard is not adopted; the member is told instead,
  and refutes.
- Only the member itself clears an accusation (a higher incarnation, or its own message or
  relayed answer), or a heartbeat heard second hand that is a whole ``suspect_timeout`` of
  rounds newer than the accusation: nearer ones may predate it.
- A node that hears itself described at a higher incarnation, or accused, refutes above it.
"""

from __future__ import annotations

from ._detector import MAX_HEALTH, Detector
from ._member import LIVE, RANK, MemberRecord, Outgoing
from ._types import NodeStatus
from ._validation import MAX_SUSPECTERS, STATUS_FROM_PB, short
from .proto import gossip_pb2 as pb

__all__ = ["Merger"]


class Merger(Detector):
    """The layers below plus the merge rules."""

    max_members: int

    def __init__(self, node_id: str, addr: str, now: float, incarnation: int | None) -> None:
        super().__init__(node_id, addr, now, incarnation)
        self._tell: dict[str, None] = {}  # members accused on stale news: to tell them

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
            if status not in LIVE:
                return  # news of the death of a stranger: nothing to forget
            if len(self._members) >= self.max_members:
                self._limit_log.warning(
                    "ignoring member %s: %d members known, the limit",
                    short(e.id),
                    len(self._members),
                )
                return
            m = MemberRecord(e.id, e.addr, now)
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
        self, m: MemberRecord, e: pb.MemberState, status: NodeStatus, since: float, now: float
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
        m: MemberRecord,
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
        if RANK[status] > RANK[m.status]:
            self._adopt_claim(m, e, status, since, now)
            return True
        if status is NodeStatus.SUSPECT and m.status is NodeStatus.SUSPECT:
            return self._merge_suspecters(m, e)
        return False

    def _adopt_claim(
        self, m: MemberRecord, e: pb.MemberState, status: NodeStatus, since: float, now: float
    ) -> None:
        suspecters = _suspecters(e) if status is NodeStatus.SUSPECT else {}
        self._set_status(m, status, self._clamp_since(min(since, now), now), now)
        m.suspecters = suspecters
        m.verdict_heartbeat = max(m.verdict_heartbeat, e.heartbeat)

    def _clamp_since(self, since: float, now: float) -> float:
        # A claimed age beyond any timeout would skip the wait others get to refute.
        return max(since, now - self.suspicion_mult * self.suspect_timeout)

    def _merge_suspecters(self, m: MemberRecord, e: pb.MemberState) -> bool:
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

    def _forget(self, m: MemberRecord) -> None:
        super()._forget(m)
        self._tell.pop(m.id, None)


def _suspecters(e: pb.MemberState) -> dict[str, None]:
    return dict.fromkeys(list(e.suspecters)[:MAX_SUSPECTERS])
