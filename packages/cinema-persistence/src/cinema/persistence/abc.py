"""Extension points for journal authors: a :class:`JournalPlugin` opens a :class:`JournalStore`.

A plugin serves one URL scheme and is announced like a transport, through an entry point in the
``cinema`` group whose module has a ``cinema_journals`` hook implementation::

    from cinema.abc import hookimpl

    @hookimpl
    def cinema_journals() -> list[JournalPlugin]:
        return [MyPlugin()]

A store deals in serialized rows only (:class:`StoredEvent`, :class:`StoredSnapshot`);
serialization, batching (group commit), the circuit breaker and the actor protocol are
:class:`cinema.persistence.Journal`'s job. ``cinema.persistence.testing`` holds the test kit a
store must pass.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from ._rows import SnapshotCriteria, StoredEvent, StoredSnapshot

__all__ = ["JournalPlugin", "JournalStore", "SnapshotCriteria", "StoredEvent", "StoredSnapshot"]


class JournalStore(ABC):
    """Durable storage of events and snapshots. Methods may run concurrently (a store
    serializes what it must); every failure to reach or use the storage raises
    :class:`cinema.persistence.JournalUnavailable` (with the driver's error as the cause)."""

    @abstractmethod
    async def write(self, batches: Sequence[Sequence[StoredEvent]]) -> list[BaseException | None]:
        """Store several batches, each atomically (all its events or none), ideally in one
        transaction (group commit); return once they are durable.

        A batch whose (persistence id, sequence number) key is already taken is not written and
        its slot in the result holds a :class:`cinema.persistence.SequenceConflict`; the others
        are still written.

        :returns: one entry per batch: ``None`` (stored) or the error that kept it out.
        :raises JournalUnavailable: nothing is known to be written.
        """

    @abstractmethod
    async def read(
        self, persistence_id: str, from_sequence_nr: int, to_sequence_nr: int, limit: int
    ) -> list[StoredEvent]:
        """The live (not deleted) events of ``persistence_id`` with ``from <= seq <= to``, in
        sequence order, at most ``limit`` of them, with their offsets."""

    async def replay(
        self, persistence_id: str, from_sequence_nr: int, limit: int
    ) -> list[tuple[int, str, str, bytes]]:
        """What recovery needs of :meth:`read` (to the highest sequence number), as plain
        ``(sequence_nr, serializer, type_name, payload)`` tuples: a store may override it with a
        narrower, faster query. The default calls :meth:`read`."""
        rows = await self.read(persistence_id, from_sequence_nr, 2**63 - 1, limit)
        return [(r.sequence_nr, r.serializer, r.type_name, r.payload) for r in rows]

    @abstractmethod
    async def highest_sequence_nr(self, persistence_id: str) -> int:
        """The highest sequence number ever stored for ``persistence_id`` (deleted events
        included), ``0`` if none."""

    @abstractmethod
    async def delete_to(self, persistence_id: str, to_sequence_nr: int) -> None:
        """Delete the events of ``persistence_id`` up to ``to_sequence_nr`` (inclusive).
        :meth:`highest_sequence_nr` does not go down."""

    @abstractmethod
    async def read_tag(self, tag: str, after_offset: int, limit: int) -> list[StoredEvent]:
        """Live events carrying ``tag`` with an offset greater than ``after_offset``, in offset
        order, at most ``limit``."""

    @abstractmethod
    async def save_snapshot(self, snapshot: StoredSnapshot) -> None:
        """Store a snapshot, replacing one with the same persistence id and sequence number."""

    @abstractmethod
    async def load_snapshots(
        self, persistence_id: str, criteria: SnapshotCriteria, limit: int
    ) -> list[StoredSnapshot]:
        """Snapshots of ``persistence_id`` matching ``criteria``, newest (highest sequence
        number) first, at most ``limit``."""

    @abstractmethod
    async def delete_snapshots(self, persistence_id: str, criteria: SnapshotCriteria) -> None:
        """Delete the snapshots of ``persistence_id`` matching ``criteria``."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release the store's connections. Idempotent."""


class JournalPlugin(ABC):
    """Opens stores for the URLs of one scheme (``sqlite``, ``postgresql``, ``memory``, ...)."""

    #: The URL scheme, e.g. ``"sqlite"``. Unique among installed journal plugins.
    scheme: ClassVar[str]

    @abstractmethod
    async def open(self, url: str) -> JournalStore:
        """Connect to (and create the tables of, if missing) the store at ``url``.

        :raises ValueError: the URL is malformed for this scheme.
        :raises JournalUnavailable: the store cannot be reached.
        """
