"""What the SQL stores share: the tables, and turning rows from a database into stored rows."""

from __future__ import annotations

from typing import Any, Final

from ._errors import EventDecodeError
from ._rows import StoredEvent, StoredSnapshot

__all__ = ["TAG_SEPARATOR", "event_from_row", "snapshot_from_row"]

#: Tags are stored joined by this character (they are also indexed in their own table).
TAG_SEPARATOR: Final = "\x1f"

#: Column order of the event queries: offset, persistence id, sequence nr, serializer, type,
#: payload, tags.
EVENT_COLUMNS: Final = "ordering, persistence_id, sequence_nr, serializer, type_name, payload, tags"
SNAPSHOT_COLUMNS: Final = "persistence_id, sequence_nr, created, serializer, type_name, payload"


def _text(value: object, what: str, pid: str, nr: int) -> str:
    if not isinstance(value, str):
        raise EventDecodeError(pid, nr, f"the stored {what} is {type(value).__name__}, not text")
    return value


def _bytes(value: object, pid: str, nr: int) -> bytes:
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    if not isinstance(value, bytes):
        raise EventDecodeError(pid, nr, f"the stored payload is {type(value).__name__}, not bytes")
    return value


def event_from_row(row: Any) -> StoredEvent:
    """A :class:`StoredEvent` from a database row in :data:`EVENT_COLUMNS` order; a row of the
    wrong shape raises :class:`EventDecodeError` naming it."""
    offset, pid, nr, serializer, type_name, payload, tags = row
    # The common case, checked cheaply (recovery makes one of these per event).
    if (
        type(pid) is str
        and type(nr) is int
        and type(serializer) is str
        and type(type_name) is str
        and type(payload) is bytes
        and type(tags) is str
    ):
        return StoredEvent(
            pid,
            nr,
            serializer,
            type_name,
            payload,
            tuple(tags.split(TAG_SEPARATOR)) if tags else (),
            offset,
        )
    pid = str(pid)
    nr = int(nr)
    tag_text = _text(tags, "tags", pid, nr) if tags is not None else ""
    return StoredEvent(
        pid,
        nr,
        _text(serializer, "serializer", pid, nr),
        _text(type_name, "type name", pid, nr),
        _bytes(payload, pid, nr),
        tuple(tag_text.split(TAG_SEPARATOR)) if tag_text else (),
        int(offset),
    )


def snapshot_from_row(row: Any) -> StoredSnapshot:
    """A :class:`StoredSnapshot` from a row in :data:`SNAPSHOT_COLUMNS` order."""
    pid, nr, created, serializer, type_name, payload = row
    pid = str(pid)
    nr = int(nr)
    return StoredSnapshot(
        pid,
        nr,
        float(created),
        _text(serializer, "serializer", pid, nr),
        _text(type_name, "type name", pid, nr),
        _bytes(payload, pid, nr),
    )
