"""What goes into a gossip message: the entries (each encoded once while it is unchanged),
the rumors of recent changes (SWIM's dissemination, least sent first), the random samples
(anti-entropy), the pages of a full-state sync; and the outbox of messages to send."""

from __future__ import annotations

import bisect
import math
from collections import deque
from typing import Final

from ._member import MemberRecord, Outgoing
from ._registry import Registry
from ._types import NodeStatus
from ._validation import STATUS_TO_PB
from .proto import gossip_pb2 as pb

__all__ = ["Messages"]

# A full-state sync page: at most this many entries and about this many bytes.
_PAGE_ENTRIES: Final = 512
_PAGE_BYTES: Final = 512 * 1024


class Messages(Registry):
    """The layers below plus the building of messages."""

    max_piggyback: int
    samples: int

    def __init__(self, node_id: str, addr: str, now: float, incarnation: int | None) -> None:
        super().__init__(node_id, addr, now, incarnation)
        # Rumors: node id -> times sent so far; buckets[k] holds the ids sent k times (stale
        # entries are skipped), so that the least-sent news always goes out first.
        self._rumors: dict[str, int] = {}
        self._rumor_buckets: list[deque[str]] = []
        self._outbox: list[Outgoing] = []

    def take_outgoing(self) -> list[Outgoing]:
        """Messages caused by the last calls (indirect probes, relays, sync pages): send them."""
        out, self._outbox = self._outbox, []
        return out

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

    def _entry_bytes(self, m: MemberRecord, now: float) -> bytes:
        if m.encoded is not None:
            return m.encoded
        e = pb.MemberState()
        self._fill(e, m, now)
        data = e.SerializeToString()
        if m.status is NodeStatus.UP:  # other statuses carry an age that changes with time
            m.encoded = data
        return data

    def _accusation_bytes(self, m: MemberRecord, now: float) -> bytes:
        # The member as someone claimed it (on older news): so that it refutes at once.
        e = pb.MemberState()
        self._fill(e, m, now)
        assert m.accused is not None
        e.status = STATUS_TO_PB[m.accused]
        e.status_age_ms = 0
        return e.SerializeToString()

    def _fill(self, e: pb.MemberState, m: MemberRecord, now: float) -> None:
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

    def _forget(self, m: MemberRecord) -> None:
        super()._forget(m)
        self._rumors.pop(m.id, None)


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
