"""State sync and healing: full-state push/pull in pages (on join, when a Down member answers,
periodically with a random member at an interval that grows with the cluster so that its cost
per round stays flat), joining through seeds, and the retries of Down members and seeds for the
reconnect window, so that partitions of any length heal."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from ._member import MemberRecord, Outgoing
from ._merge import Merger
from ._types import NodeStatus
from ._validation import Parsed

__all__ = ["Sync"]

# Members in a cluster of this size or fewer sync every ``sync_interval``; beyond it the interval
# grows in proportion, so that periodic sync costs the same bytes per round at any size.
_SYNC_SCALE: Final = 32


class Sync(Merger):
    """The layers below plus state sync and healing."""

    sync_interval: float
    reconnect_interval: float

    def __init__(self, node_id: str, addr: str, now: float, incarnation: int | None) -> None:
        super().__init__(node_id, addr, now, incarnation)
        self._seeds: list[str] = []
        # sync chains we run: address -> when the last page was asked for
        self._syncing: dict[str, float] = {}
        self._synced_with: dict[str, float] = {}  # member id -> last sync with it
        phase = self._rng.random()
        self._last_sync = now - self.sync_interval * phase  # a random phase
        self._next_reconnect = now + self.reconnect_interval * (0.5 + phase)

    def add_seeds(self, addrs: Iterable[str]) -> None:
        """Addresses to join through: contacted every round while no other member is known to
        be live, then every ``reconnect_interval`` while no live member is known there."""
        for addr in addrs:
            if addr != self.addr and addr not in self._seeds:
                self._seeds.append(addr)

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

    def _forget(self, m: MemberRecord) -> None:
        super()._forget(m)
        self._synced_with.pop(m.id, None)
