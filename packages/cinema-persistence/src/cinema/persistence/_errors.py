"""The errors cinema-persistence raises. Every one derives from :class:`PersistenceError`."""

from __future__ import annotations

from cinema import CinemaError

__all__ = [
    "CircuitOpen",
    "EventDecodeError",
    "JournalClosed",
    "JournalUnavailable",
    "PersistenceError",
    "RecoveryFailed",
    "SequenceConflict",
    "SequenceGap",
    "UnserializableEvent",
]


class PersistenceError(CinemaError):
    """Base class of every error raised by cinema-persistence."""


class JournalUnavailable(PersistenceError):
    """The store could not be reached or failed to write or read (the driver's exception is the
    ``__cause__``). Whether a failed write reached the store is unknown: recover to find out."""


class CircuitOpen(JournalUnavailable):
    """The journal's circuit breaker is open after repeated store failures: the call was refused
    without touching the store. It closes again after its reset timeout if a trial call works."""


class JournalClosed(PersistenceError):
    """The journal was used after it was closed."""


class SequenceConflict(PersistenceError):
    """A write collided with an event already stored under the same persistence id and sequence
    number: another writer (a second live instance) got there first. Nothing of the batch was
    written."""

    def __init__(self, persistence_id: str, sequence_nr: int) -> None:
        super().__init__(
            f"{persistence_id!r}: sequence number {sequence_nr} is already taken (is another "
            "instance of this persistent actor alive?); nothing of this write was stored"
        )
        self.persistence_id = persistence_id
        self.sequence_nr = sequence_nr


class UnserializableEvent(PersistenceError, TypeError):
    """No installed serializer handles the event's (or snapshot's) type, or it failed to encode
    it. Raised before anything is written."""


class RecoveryFailed(PersistenceError):
    """Replaying the journal could not rebuild the state: the actor fails (to its supervisor)
    instead of running on wrong state. Names the persistence id and the sequence number."""

    def __init__(self, persistence_id: str, sequence_nr: int, reason: str) -> None:
        super().__init__(self._describe(persistence_id, sequence_nr, reason))
        self.persistence_id = persistence_id
        self.sequence_nr = sequence_nr

    @staticmethod
    def _describe(persistence_id: str, sequence_nr: int, reason: str) -> str:
        return f"recovery of {persistence_id!r} failed at sequence number {sequence_nr}: {reason}"


class EventDecodeError(RecoveryFailed):
    """A stored event (or a queried one) names a serializer or type this process does not know,
    or its bytes do not decode."""

    @staticmethod
    def _describe(persistence_id: str, sequence_nr: int, reason: str) -> str:
        return f"the stored event {sequence_nr} of {persistence_id!r} cannot be decoded: {reason}"


class SequenceGap(RecoveryFailed):
    """The stored sequence numbers of a persistence id skip a number: events are missing."""


for _cls in (
    CircuitOpen,
    EventDecodeError,
    JournalClosed,
    JournalUnavailable,
    PersistenceError,
    RecoveryFailed,
    SequenceConflict,
    SequenceGap,
    UnserializableEvent,
):
    _cls.__module__ = "cinema.persistence"
