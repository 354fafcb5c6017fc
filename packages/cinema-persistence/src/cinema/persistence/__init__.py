"""cinema-persistence: event-sourced actors whose state survives crashes and restarts.

A :class:`PersistentActor` changes its state only by applying events that
:meth:`~PersistentActor.persist` has made durable in a :class:`Journal`; recovery replays them
(after the newest snapshot) before the first message. Journals are plugins chosen by URL
(``sqlite:///file.db``, ``postgresql://...``, ``memory://``); third parties add their own with
:mod:`cinema.persistence.abc` and check them with :mod:`cinema.persistence.testing`.
"""

from ._actor import PersistentActor as PersistentActor
from ._actor import use_journal as use_journal
from ._breaker import CircuitBreaker as CircuitBreaker
from ._codec import register_types as register_types
from ._errors import CircuitOpen as CircuitOpen
from ._errors import EventDecodeError as EventDecodeError
from ._errors import JournalClosed as JournalClosed
from ._errors import JournalUnavailable as JournalUnavailable
from ._errors import PersistenceError as PersistenceError
from ._errors import RecoveryFailed as RecoveryFailed
from ._errors import SequenceConflict as SequenceConflict
from ._errors import SequenceGap as SequenceGap
from ._errors import UnserializableEvent as UnserializableEvent
from ._journal import MAX_SEQUENCE_NR as MAX_SEQUENCE_NR
from ._journal import Journal as Journal
from ._journal import open_journal as open_journal
from ._rows import EventEnvelope as EventEnvelope
from ._rows import SnapshotCriteria as SnapshotCriteria
from ._rows import StoredEvent as StoredEvent
from ._rows import StoredSnapshot as StoredSnapshot

__all__ = [
    "MAX_SEQUENCE_NR",
    "CircuitBreaker",
    "CircuitOpen",
    "EventDecodeError",
    "EventEnvelope",
    "Journal",
    "JournalClosed",
    "JournalUnavailable",
    "PersistenceError",
    "PersistentActor",
    "RecoveryFailed",
    "SequenceConflict",
    "SequenceGap",
    "SnapshotCriteria",
    "StoredEvent",
    "StoredSnapshot",
    "UnserializableEvent",
    "open_journal",
    "register_types",
    "use_journal",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("cinema.persistence._"):
        _obj.__module__ = __name__
del _name, _obj
