"""What journals store: serialized event and snapshot rows, and the criteria to select them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

__all__ = ["EventEnvelope", "SnapshotCriteria", "StoredEvent", "StoredSnapshot"]

E = TypeVar("E")


class StoredEvent(NamedTuple):
    """One serialized event as a journal stores it (a named tuple: recovery makes one per
    event, and a tuple is the cheapest immutable record Python has).

    :ivar persistence_id: the writer's persistence id.
    :ivar sequence_nr: 1, 2, 3, ... per persistence id, without gaps.
    :ivar serializer: the name of the serializer plugin that encoded ``payload``.
    :ivar type_name: the serializer's stable name of the event's type.
    :ivar payload: the encoded event.
    :ivar tags: tags for :meth:`Journal.events_by_tag`.
    :ivar offset: the journal-wide position assigned when stored (``0`` before).
    """

    persistence_id: str
    sequence_nr: int
    serializer: str
    type_name: str
    payload: bytes
    tags: tuple[str, ...] = ()
    offset: int = 0


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    """One serialized snapshot: the state of ``persistence_id`` after event ``sequence_nr``.

    :param timestamp: seconds since the epoch when it was taken.
    """

    persistence_id: str
    sequence_nr: int
    timestamp: float
    serializer: str
    type_name: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class SnapshotCriteria:
    """Which snapshots a load or delete selects: sequence number and timestamp ranges,
    both bounds inclusive. The default selects every snapshot."""

    max_sequence_nr: int = 2**63 - 1
    max_timestamp: float = math.inf
    min_sequence_nr: int = 0
    min_timestamp: float = 0.0

    def matches(self, snapshot: StoredSnapshot) -> bool:
        """Whether ``snapshot`` is in the ranges."""
        return (
            self.min_sequence_nr <= snapshot.sequence_nr <= self.max_sequence_nr
            and self.min_timestamp <= snapshot.timestamp <= self.max_timestamp
        )


@dataclass(frozen=True, slots=True)
class EventEnvelope(Generic[E]):
    """An event as a query returns it: decoded, with where it is in the journal."""

    persistence_id: str
    sequence_nr: int
    event: E
    offset: int
    tags: tuple[str, ...] = field(default=())
