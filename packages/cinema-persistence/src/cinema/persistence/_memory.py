"""The ``memory://`` journal: a store in this process's memory, for tests.

``memory://name`` opens the store called ``name`` (shared by every journal of the process
opened with that URL, so a restarted actor finds its events); ``memory://`` a new private one.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from typing import ClassVar, final

from cinema.abc import hookimpl

from ._errors import SequenceConflict
from ._rows import SnapshotCriteria, StoredEvent, StoredSnapshot
from .abc import JournalPlugin, JournalStore

__all__ = ["MemoryJournal", "MemoryStore", "cinema_journals"]


@final
class MemoryStore(JournalStore):
    """Events and snapshots in dicts. Every method completes without awaiting anything, so each
    is atomic on the event loop."""

    def __init__(self) -> None:
        self._events: dict[str, dict[int, StoredEvent]] = {}
        self._highest: dict[str, int] = {}
        self._deleted_to: dict[str, int] = {}
        self._by_offset: dict[int, StoredEvent] = {}
        self._tags: dict[str, list[int]] = {}
        self._offsets = itertools.count(1)
        self._snapshots: dict[str, dict[int, StoredSnapshot]] = {}

    async def write(self, batches: Sequence[Sequence[StoredEvent]]) -> list[BaseException | None]:
        results: list[BaseException | None] = []
        for batch in batches:
            taken = next(
                (
                    r
                    for r in batch
                    if r.sequence_nr in self._events.get(r.persistence_id, {})
                    or r.sequence_nr <= self._deleted_to.get(r.persistence_id, 0)
                ),
                None,
            )
            if taken is not None:
                results.append(SequenceConflict(taken.persistence_id, taken.sequence_nr))
                continue
            for row in batch:
                stored = row._replace(offset=next(self._offsets))
                self._events.setdefault(row.persistence_id, {})[row.sequence_nr] = stored
                self._highest[row.persistence_id] = max(
                    self._highest.get(row.persistence_id, 0), row.sequence_nr
                )
                self._by_offset[stored.offset] = stored
                for tag in row.tags:
                    self._tags.setdefault(tag, []).append(stored.offset)
            results.append(None)
        return results

    async def read(
        self, persistence_id: str, from_sequence_nr: int, to_sequence_nr: int, limit: int
    ) -> list[StoredEvent]:
        events = self._events.get(persistence_id, {})
        found = sorted(n for n in events if from_sequence_nr <= n <= to_sequence_nr)
        return [events[n] for n in found[:limit]]

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        return self._highest.get(persistence_id, 0)

    async def delete_to(self, persistence_id: str, to_sequence_nr: int) -> None:
        events = self._events.get(persistence_id, {})
        for n in [n for n in events if n <= to_sequence_nr]:
            row = events.pop(n)
            self._by_offset.pop(row.offset, None)
        # Sequence numbers below the highest stay taken: a stale writer cannot reuse them.
        self._deleted_to[persistence_id] = max(
            self._deleted_to.get(persistence_id, 0),
            min(to_sequence_nr, self._highest.get(persistence_id, 0)),
        )

    async def read_tag(self, tag: str, after_offset: int, limit: int) -> list[StoredEvent]:
        offsets = self._tags.get(tag, [])
        start = bisect.bisect_right(offsets, after_offset)
        found: list[StoredEvent] = []
        for offset in offsets[start:]:
            row = self._by_offset.get(offset)
            if row is not None:
                found.append(row)
                if len(found) >= limit:
                    break
        return found

    async def save_snapshot(self, snapshot: StoredSnapshot) -> None:
        self._snapshots.setdefault(snapshot.persistence_id, {})[snapshot.sequence_nr] = snapshot

    async def load_snapshots(
        self, persistence_id: str, criteria: SnapshotCriteria, limit: int
    ) -> list[StoredSnapshot]:
        snaps = self._snapshots.get(persistence_id, {})
        found = sorted(
            (s for s in snaps.values() if criteria.matches(s)),
            key=lambda s: s.sequence_nr,
            reverse=True,
        )
        return found[:limit]

    async def delete_snapshots(self, persistence_id: str, criteria: SnapshotCriteria) -> None:
        snaps = self._snapshots.get(persistence_id, {})
        for n in [n for n, s in snaps.items() if criteria.matches(s)]:
            del snaps[n]

    async def aclose(self) -> None:
        pass


_named: dict[str, MemoryStore] = {}


@final
class MemoryJournal(JournalPlugin):
    """Opens ``memory://`` stores."""

    scheme: ClassVar[str] = "memory"

    async def open(self, url: str) -> JournalStore:
        scheme, sep, name = url.partition("://")
        if scheme != self.scheme or not sep:
            raise ValueError(f"not a memory:// URL: {url!r}")
        if not name:
            return MemoryStore()
        store = _named.get(name)
        if store is None:
            store = _named[name] = MemoryStore()
        return store


@hookimpl
def cinema_journals() -> list[JournalPlugin]:
    """The ``memory://`` journal."""
    return [MemoryJournal()]
