"""The ``sqlite://`` journal: the embedded default, on the standard library's ``sqlite3``.

URLs follow SQLAlchemy's convention: ``sqlite:///relative/path.db`` (three slashes),
``sqlite:////absolute/path.db`` (four). Query options: ``synchronous=full`` (the default:
durable across power loss when a write returns) or ``normal`` (durable across a process crash
or kill, faster: WAL mode fsyncs at checkpoints only), ``busy_timeout`` (seconds to wait for
another process's write lock, default 5).

One connection in WAL mode; its calls run one at a time in a worker thread
(``anyio.to_thread``), so the event loop never blocks on the disk.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar, Final, TypeVar, final
from urllib.parse import parse_qs

import anyio
import anyio.to_thread

from cinema.abc import hookimpl

from ._errors import JournalUnavailable, SequenceConflict
from ._rows import SnapshotCriteria, StoredEvent, StoredSnapshot
from ._sql import EVENT_COLUMNS, SNAPSHOT_COLUMNS, TAG_SEPARATOR, event_from_row, snapshot_from_row
from .abc import JournalPlugin, JournalStore

__all__ = ["SqliteJournal", "SqliteStore", "cinema_journals"]

T = TypeVar("T")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS cinema_journal (
    persistence_id TEXT NOT NULL,
    sequence_nr INTEGER NOT NULL,
    ordering INTEGER NOT NULL,
    serializer TEXT NOT NULL,
    type_name TEXT NOT NULL,
    payload BLOB NOT NULL,
    tags TEXT NOT NULL DEFAULT '',
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (persistence_id, sequence_nr)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS cinema_journal_ordering ON cinema_journal (ordering);
CREATE TABLE IF NOT EXISTS cinema_offsets (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last INTEGER NOT NULL
);
INSERT OR IGNORE INTO cinema_offsets (id, last) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS cinema_journal_tags (
    tag TEXT NOT NULL,
    ordering INTEGER NOT NULL,
    PRIMARY KEY (tag, ordering)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cinema_snapshots (
    persistence_id TEXT NOT NULL,
    sequence_nr INTEGER NOT NULL,
    created REAL NOT NULL,
    serializer TEXT NOT NULL,
    type_name TEXT NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (persistence_id, sequence_nr)
);
"""

_INSERT: Final = (
    "INSERT INTO cinema_journal (persistence_id, sequence_nr, ordering, serializer, type_name,"
    " payload, tags) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def parse_sqlite_url(url: str) -> tuple[str, str, float]:
    """``(path, synchronous, busy_timeout)`` of a ``sqlite://`` URL.

    :raises ValueError: a malformed URL or option.
    """
    scheme, sep, rest = url.partition("://")
    if scheme != "sqlite" or not sep or not rest.startswith("/") or len(rest) < 2:
        raise ValueError(
            f"a SQLite journal URL is sqlite:///relative/file.db or sqlite:////absolute/file.db,"
            f" not {url!r}"
        )
    path, _, query = rest[1:].partition("?")
    options = {k: v[-1] for k, v in parse_qs(query, strict_parsing=bool(query)).items()}
    synchronous = options.pop("synchronous", "full").upper()
    if synchronous not in ("FULL", "NORMAL", "EXTRA"):
        raise ValueError(f"synchronous must be full, normal or extra in {url!r}")
    try:
        busy = float(options.pop("busy_timeout", "5"))
    except ValueError:
        raise ValueError(f"busy_timeout must be a number of seconds in {url!r}") from None
    if options:
        raise ValueError(f"unknown SQLite journal options {sorted(options)} in {url!r}")
    return path, synchronous, busy


@final
class SqliteStore(JournalStore):
    """A :class:`JournalStore` in one SQLite database file."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn = conn
        self.path = path
        self._limiter = anyio.CapacityLimiter(1)
        self._closed = False

    async def _run(self, func: Callable[[], T]) -> T:
        if self._closed:
            raise JournalUnavailable(f"the SQLite store {self.path!r} is closed")

        def guarded() -> T:
            try:
                return func()
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.rollback()
                raise JournalUnavailable(f"SQLite {self.path!r}: {exc}") from exc

        return await anyio.to_thread.run_sync(guarded, limiter=self._limiter)

    async def write(self, batches: Sequence[Sequence[StoredEvent]]) -> list[BaseException | None]:
        conn = self._conn

        # Events are stored clustered by (persistence id, sequence number), so that recovery
        # reads one range of the table; the journal-wide offsets (for tag queries) come from a
        # counter row that never goes down, even when the newest events are deleted.
        def insert(batch: Sequence[StoredEvent], offset: int) -> int:
            conn.executemany(
                _INSERT,
                [
                    (
                        row.persistence_id,
                        row.sequence_nr,
                        offset + i,
                        row.serializer,
                        row.type_name,
                        row.payload,
                        TAG_SEPARATOR.join(row.tags),
                    )
                    for i, row in enumerate(batch, 1)
                ],
            )
            tagged = [(tag, offset + i) for i, row in enumerate(batch, 1) for tag in row.tags]
            if tagged:
                conn.executemany(
                    "INSERT INTO cinema_journal_tags (tag, ordering) VALUES (?, ?)", tagged
                )
            return offset + len(batch)

        def next_offset() -> int:
            (last,) = conn.execute("SELECT last FROM cinema_offsets WHERE id = 1").fetchone()
            return int(last)

        def save_offset(last: int) -> None:
            conn.execute("UPDATE cinema_offsets SET last = ? WHERE id = 1", (last,))

        def write() -> list[BaseException | None]:
            results: list[BaseException | None] = []
            conn.execute("BEGIN IMMEDIATE")
            offset = next_offset()
            if len(batches) == 1:
                try:
                    save_offset(insert(batches[0], offset))
                except sqlite3.IntegrityError:
                    conn.rollback()
                    first = batches[0][0]
                    return [SequenceConflict(first.persistence_id, first.sequence_nr)]
                conn.commit()
                return [None]
            for batch in batches:
                conn.execute("SAVEPOINT cinema_batch")
                try:
                    offset = insert(batch, offset)
                except sqlite3.IntegrityError:
                    conn.execute("ROLLBACK TO cinema_batch")
                    first = batch[0]
                    results.append(SequenceConflict(first.persistence_id, first.sequence_nr))
                else:
                    results.append(None)
                conn.execute("RELEASE cinema_batch")
            save_offset(offset)
            conn.commit()
            return results

        return await self._run(write)

    async def read(
        self, persistence_id: str, from_sequence_nr: int, to_sequence_nr: int, limit: int
    ) -> list[StoredEvent]:
        def read() -> list[StoredEvent]:
            rows = self._conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM cinema_journal WHERE persistence_id = ? AND"
                " sequence_nr BETWEEN ? AND ? AND deleted = 0 ORDER BY sequence_nr LIMIT ?",
                (persistence_id, from_sequence_nr, min(to_sequence_nr, 2**63 - 1), limit),
            ).fetchall()
            return [event_from_row(row) for row in rows]

        return await self._run(read)

    async def replay(
        self, persistence_id: str, from_sequence_nr: int, limit: int
    ) -> list[tuple[int, str, str, bytes]]:
        def replay() -> list[tuple[int, str, str, bytes]]:
            rows: list[tuple[int, str, str, bytes]] = self._conn.execute(
                "SELECT sequence_nr, serializer, type_name, payload FROM cinema_journal WHERE"
                " persistence_id = ? AND sequence_nr >= ? AND deleted = 0 ORDER BY sequence_nr"
                " LIMIT ?",
                (persistence_id, from_sequence_nr, limit),
            ).fetchall()
            return rows

        return await self._run(replay)

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        def highest() -> int:
            (value,) = self._conn.execute(
                "SELECT MAX(sequence_nr) FROM cinema_journal WHERE persistence_id = ?",
                (persistence_id,),
            ).fetchone()
            return int(value or 0)

        return await self._run(highest)

    async def delete_to(self, persistence_id: str, to_sequence_nr: int) -> None:
        conn = self._conn

        def delete() -> None:
            # The highest deleted row stays, marked deleted, so that its sequence number (and
            # so the highest one) stays taken; the rows below it go.
            conn.execute("BEGIN IMMEDIATE")
            (top,) = conn.execute(
                "SELECT MAX(sequence_nr) FROM cinema_journal WHERE persistence_id = ? AND"
                " sequence_nr <= ?",
                (persistence_id, to_sequence_nr),
            ).fetchone()
            if top is not None:
                conn.execute(
                    "DELETE FROM cinema_journal_tags WHERE ordering IN (SELECT ordering FROM"
                    " cinema_journal WHERE persistence_id = ? AND sequence_nr <= ?)",
                    (persistence_id, top),
                )
                conn.execute(
                    "DELETE FROM cinema_journal WHERE persistence_id = ? AND sequence_nr < ?",
                    (persistence_id, top),
                )
                conn.execute(
                    "UPDATE cinema_journal SET deleted = 1, payload = x'' WHERE"
                    " persistence_id = ? AND sequence_nr = ?",
                    (persistence_id, top),
                )
            conn.commit()

        await self._run(delete)

    async def read_tag(self, tag: str, after_offset: int, limit: int) -> list[StoredEvent]:
        def read() -> list[StoredEvent]:
            rows = self._conn.execute(
                f"SELECT {', '.join('j.' + c.strip() for c in EVENT_COLUMNS.split(','))} FROM"
                " cinema_journal_tags t JOIN cinema_journal j ON j.ordering = t.ordering"
                " WHERE t.tag = ? AND t.ordering > ? AND j.deleted = 0 ORDER BY t.ordering"
                " LIMIT ?",
                (tag, after_offset, limit),
            ).fetchall()
            return [event_from_row(row) for row in rows]

        return await self._run(read)

    async def save_snapshot(self, snapshot: StoredSnapshot) -> None:
        def save() -> None:
            with self._conn:
                self._conn.execute(
                    f"INSERT OR REPLACE INTO cinema_snapshots ({SNAPSHOT_COLUMNS}) VALUES"
                    " (?, ?, ?, ?, ?, ?)",
                    (
                        snapshot.persistence_id,
                        snapshot.sequence_nr,
                        snapshot.timestamp,
                        snapshot.serializer,
                        snapshot.type_name,
                        snapshot.payload,
                    ),
                )

        await self._run(save)

    async def load_snapshots(
        self, persistence_id: str, criteria: SnapshotCriteria, limit: int
    ) -> list[StoredSnapshot]:
        def load() -> list[StoredSnapshot]:
            rows = self._conn.execute(
                f"SELECT {SNAPSHOT_COLUMNS} FROM cinema_snapshots WHERE persistence_id = ? AND"
                " sequence_nr BETWEEN ? AND ? AND created BETWEEN ? AND ?"
                " ORDER BY sequence_nr DESC LIMIT ?",
                (
                    persistence_id,
                    criteria.min_sequence_nr,
                    criteria.max_sequence_nr,
                    criteria.min_timestamp,
                    min(criteria.max_timestamp, 1e300),
                    limit,
                ),
            ).fetchall()
            return [snapshot_from_row(row) for row in rows]

        return await self._run(load)

    async def delete_snapshots(self, persistence_id: str, criteria: SnapshotCriteria) -> None:
        def delete() -> None:
            with self._conn:
                self._conn.execute(
                    "DELETE FROM cinema_snapshots WHERE persistence_id = ? AND sequence_nr"
                    " BETWEEN ? AND ? AND created BETWEEN ? AND ?",
                    (
                        persistence_id,
                        criteria.min_sequence_nr,
                        criteria.max_sequence_nr,
                        criteria.min_timestamp,
                        min(criteria.max_timestamp, 1e300),
                    ),
                )

        await self._run(delete)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            # Shielded: a cancelled close would leave the connection (and its file) open.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._conn.close, limiter=self._limiter)


@final
class SqliteJournal(JournalPlugin):
    """Opens ``sqlite://`` stores (creating the file and tables if missing)."""

    scheme: ClassVar[str] = "sqlite"

    async def open(self, url: str) -> JournalStore:
        path, synchronous, busy = parse_sqlite_url(url)

        def connect() -> sqlite3.Connection:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Autocommit off at the driver level (isolation_level=None): transactions are
            # begun and ended explicitly.
            conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=busy
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={synchronous}")
                conn.executescript(_SCHEMA)
            except BaseException:
                conn.close()
                raise
            return conn

        try:
            conn = await anyio.to_thread.run_sync(connect)
        except (sqlite3.Error, OSError) as exc:
            raise JournalUnavailable(f"cannot open the SQLite journal {url!r}: {exc}") from exc
        return SqliteStore(conn, path)


@hookimpl
def cinema_journals() -> list[JournalPlugin]:
    """The ``sqlite://`` journal."""
    return [SqliteJournal()]
