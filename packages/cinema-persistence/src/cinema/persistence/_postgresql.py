"""The ``postgresql://`` journal, on psycopg 3 (``pip install cinema-persistence[postgresql]``).

The URL is handed to psycopg as it is (``postgresql://user:password@host:port/dbname?...``).
No async PostgreSQL driver runs on trio, so the store runs psycopg's async API on asyncio and
its sync API in a worker thread (``anyio.to_thread``) on trio. Each operation is written once,
as a generator of SQL statements that either driver runs, in one transaction.

One connection, used by one operation at a time (group commit makes the writes of many actors
one transaction); a broken connection is replaced on the next call.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar, final

import anyio
import anyio.to_thread

from cinema.abc import hookimpl

from ._errors import JournalUnavailable, SequenceConflict
from ._rows import SnapshotCriteria, StoredEvent, StoredSnapshot
from ._sql import EVENT_COLUMNS, SNAPSHOT_COLUMNS, TAG_SEPARATOR, event_from_row, snapshot_from_row
from .abc import JournalPlugin, JournalStore

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresJournal", "PostgresStore", "cinema_journals"]

T = TypeVar("T")

_SCHEMA: Final = [
    # Two processes creating the tables at once would race in the catalog: serialize them.
    "SELECT pg_advisory_xact_lock(7438126501)",
    """CREATE TABLE IF NOT EXISTS cinema_journal (
        ordering BIGSERIAL PRIMARY KEY,
        persistence_id TEXT NOT NULL,
        sequence_nr BIGINT NOT NULL,
        serializer TEXT NOT NULL,
        type_name TEXT NOT NULL,
        payload BYTEA NOT NULL,
        tags TEXT NOT NULL DEFAULT '',
        deleted BOOLEAN NOT NULL DEFAULT FALSE,
        UNIQUE (persistence_id, sequence_nr)
    )""",
    """CREATE TABLE IF NOT EXISTS cinema_journal_tags (
        tag TEXT NOT NULL,
        ordering BIGINT NOT NULL,
        PRIMARY KEY (tag, ordering)
    )""",
    """CREATE TABLE IF NOT EXISTS cinema_snapshots (
        persistence_id TEXT NOT NULL,
        sequence_nr BIGINT NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        serializer TEXT NOT NULL,
        type_name TEXT NOT NULL,
        payload BYTEA NOT NULL,
        PRIMARY KEY (persistence_id, sequence_nr)
    )""",
]


@dataclass(frozen=True, slots=True)
class _Sql:
    """One statement of an operation; the driver sends back the rows it returned."""

    query: str
    params: Sequence[Any] | None = None


class _Conflict(Exception):
    """Thrown into an operation when its statement hit a unique key."""


# An operation: yields statements, receives their rows, returns its result; a unique-key
# violation is thrown into it as _Conflict (it may roll back to a savepoint and go on).
Op = Generator[_Sql, list[tuple[Any, ...]], T]


def _insert(batch: Sequence[StoredEvent]) -> Generator[_Sql, list[tuple[Any, ...]], None]:
    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(batch))
    params: list[Any] = []
    for row in batch:
        params += [
            row.persistence_id,
            row.sequence_nr,
            row.serializer,
            row.type_name,
            row.payload,
            TAG_SEPARATOR.join(row.tags),
        ]
    tagged = {(r.persistence_id, r.sequence_nr): r.tags for r in batch if r.tags}
    returned = yield _Sql(
        "INSERT INTO cinema_journal (persistence_id, sequence_nr, serializer, type_name, payload,"
        f" tags) VALUES {values}"
        + (" RETURNING ordering, persistence_id, sequence_nr" if tagged else ""),
        params,
    )
    if tagged:
        pairs = [
            (tag, ordering) for ordering, pid, nr in returned for tag in tagged.get((pid, nr), ())
        ]
        yield _Sql(
            "INSERT INTO cinema_journal_tags (tag, ordering) VALUES "
            + ", ".join(["(%s, %s)"] * len(pairs)),
            [x for pair in pairs for x in pair],
        )


def _write_op(batches: Sequence[Sequence[StoredEvent]]) -> Op[list[BaseException | None]]:
    # The common case first: every batch in one statement. A conflict anywhere rolls that back
    # (to the savepoint) and the batches go one by one, each in its own savepoint.
    yield _Sql("SAVEPOINT cinema_all")
    try:
        yield from _insert([row for batch in batches for row in batch])
    except _Conflict:
        yield _Sql("ROLLBACK TO SAVEPOINT cinema_all")
    else:
        return [None] * len(batches)
    results: list[BaseException | None] = []
    for batch in batches:
        yield _Sql("SAVEPOINT cinema_batch")
        try:
            yield from _insert(batch)
        except _Conflict:
            yield _Sql("ROLLBACK TO SAVEPOINT cinema_batch")
            results.append(SequenceConflict(batch[0].persistence_id, batch[0].sequence_nr))
        else:
            yield _Sql("RELEASE SAVEPOINT cinema_batch")
            results.append(None)
    return results


def _write_one_op(batch: Sequence[StoredEvent]) -> Op[list[BaseException | None]]:
    try:
        yield from _insert(batch)
    except _Conflict:
        return [SequenceConflict(batch[0].persistence_id, batch[0].sequence_nr)]
    return [None]


def _rows_op(query: str, params: Sequence[Any]) -> Op[list[tuple[Any, ...]]]:
    return (yield _Sql(query, params))


def _delete_op(persistence_id: str, to_sequence_nr: int) -> Op[None]:
    # As in SQLite: the highest deleted row stays as a marker, so its number stays taken.
    rows = yield _Sql(
        "SELECT MAX(sequence_nr) FROM cinema_journal WHERE persistence_id = %s AND"
        " sequence_nr <= %s",
        [persistence_id, to_sequence_nr],
    )
    top = rows[0][0] if rows else None
    if top is None:
        return
    yield _Sql(
        "DELETE FROM cinema_journal_tags WHERE ordering IN (SELECT ordering FROM cinema_journal"
        " WHERE persistence_id = %s AND sequence_nr <= %s)",
        [persistence_id, top],
    )
    yield _Sql(
        "DELETE FROM cinema_journal WHERE persistence_id = %s AND sequence_nr < %s",
        [persistence_id, top],
    )
    yield _Sql(
        "UPDATE cinema_journal SET deleted = TRUE, payload = '' WHERE persistence_id = %s AND"
        " sequence_nr = %s",
        [persistence_id, top],
    )


def _schema_op() -> Op[None]:
    for statement in _SCHEMA:
        yield _Sql(statement)


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise JournalUnavailable(
            "the postgresql:// journal needs psycopg 3: pip install cinema-persistence[postgresql]"
        ) from exc
    return psycopg


def _on_trio() -> bool:
    trio = sys.modules.get("trio")
    if trio is None:
        return False
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


@final
class PostgresStore(JournalStore):
    """A :class:`JournalStore` in a PostgreSQL database."""

    def __init__(self, url: str, *, trio: bool) -> None:
        self.url = url
        self._pg = _psycopg()
        self._trio = trio
        self._conn: Any = None
        self._lock = anyio.Lock()
        self._limiter = anyio.CapacityLimiter(1)
        self._closed = False

    def __repr__(self) -> str:
        return f"<PostgresStore {_redact(self.url)}>"

    # -- running operations --------------------------------------------------------------------

    async def _run(self, op: Callable[[], Op[T]]) -> T:
        if self._closed:
            raise JournalUnavailable(f"{self!r} is closed")
        pg = self._pg
        try:
            if self._trio:
                return await anyio.to_thread.run_sync(self._run_sync, op, limiter=self._limiter)
            async with self._lock:
                return await self._run_async(op)
        except pg.Error as exc:
            await self._drop()
            raise JournalUnavailable(f"PostgreSQL {_redact(self.url)}: {exc}") from exc

    def _run_sync(self, make: Callable[[], Op[T]]) -> T:
        pg = self._pg
        if self._conn is None or self._conn.closed:
            self._conn = pg.Connection.connect(self.url, autocommit=False)
        conn: psycopg.Connection[Any] = self._conn
        op = make()
        try:
            with conn.cursor() as cur:
                statement = next(op)
                while True:
                    try:
                        cur.execute(statement.query, statement.params)
                        rows = cur.fetchall() if cur.description is not None else []
                    except pg.errors.UniqueViolation:
                        statement = op.throw(_Conflict())
                    else:
                        statement = op.send(rows)
        except StopIteration as done:
            conn.commit()
            result: T = done.value
            return result
        except BaseException:
            if not conn.closed:
                conn.rollback()
            raise

    async def _run_async(self, make: Callable[[], Op[T]]) -> T:
        pg = self._pg
        if self._conn is None or self._conn.closed:
            self._conn = await pg.AsyncConnection.connect(self.url, autocommit=False)
        conn: psycopg.AsyncConnection[Any] = self._conn
        op = make()
        try:
            async with conn.cursor() as cur:
                statement = next(op)
                while True:
                    try:
                        await cur.execute(statement.query, statement.params)
                        rows = await cur.fetchall() if cur.description is not None else []
                    except pg.errors.UniqueViolation:
                        statement = op.throw(_Conflict())
                    else:
                        statement = op.send(rows)
        except StopIteration as done:
            with anyio.CancelScope(shield=True):
                await conn.commit()
            result: T = done.value
            return result
        except BaseException:
            with anyio.CancelScope(shield=True):
                if not conn.closed:
                    try:
                        await conn.rollback()
                    except pg.Error:
                        await conn.close()
            raise

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with anyio.CancelScope(shield=True):
            try:
                if self._trio:
                    await anyio.to_thread.run_sync(conn.close, limiter=self._limiter)
                else:
                    await conn.close()
            except Exception:
                pass

    # -- the store -----------------------------------------------------------------------------

    async def write(self, batches: Sequence[Sequence[StoredEvent]]) -> list[BaseException | None]:
        if len(batches) == 1:
            return await self._run(lambda: _write_one_op(batches[0]))
        return await self._run(lambda: _write_op(batches))

    async def read(
        self, persistence_id: str, from_sequence_nr: int, to_sequence_nr: int, limit: int
    ) -> list[StoredEvent]:
        rows = await self._run(
            lambda: _rows_op(
                f"SELECT {EVENT_COLUMNS} FROM cinema_journal WHERE persistence_id = %s AND"
                " sequence_nr BETWEEN %s AND %s AND NOT deleted ORDER BY sequence_nr LIMIT %s",
                [persistence_id, from_sequence_nr, min(to_sequence_nr, 2**63 - 1), limit],
            )
        )
        return [event_from_row(row) for row in rows]

    async def replay(
        self, persistence_id: str, from_sequence_nr: int, limit: int
    ) -> list[tuple[int, str, str, bytes]]:
        rows: list[tuple[int, str, str, bytes]] = await self._run(
            lambda: _rows_op(
                "SELECT sequence_nr, serializer, type_name, payload FROM cinema_journal WHERE"
                " persistence_id = %s AND sequence_nr >= %s AND NOT deleted ORDER BY"
                " sequence_nr LIMIT %s",
                [persistence_id, from_sequence_nr, limit],
            )
        )
        return rows

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        rows = await self._run(
            lambda: _rows_op(
                "SELECT MAX(sequence_nr) FROM cinema_journal WHERE persistence_id = %s",
                [persistence_id],
            )
        )
        return int(rows[0][0] or 0)

    async def delete_to(self, persistence_id: str, to_sequence_nr: int) -> None:
        await self._run(lambda: _delete_op(persistence_id, to_sequence_nr))

    async def read_tag(self, tag: str, after_offset: int, limit: int) -> list[StoredEvent]:
        columns = ", ".join("j." + c.strip() for c in EVENT_COLUMNS.split(","))
        rows = await self._run(
            lambda: _rows_op(
                f"SELECT {columns} FROM cinema_journal_tags t JOIN cinema_journal j ON"
                " j.ordering = t.ordering WHERE t.tag = %s AND t.ordering > %s AND NOT j.deleted"
                " ORDER BY t.ordering LIMIT %s",
                [tag, after_offset, limit],
            )
        )
        return [event_from_row(row) for row in rows]

    async def save_snapshot(self, snapshot: StoredSnapshot) -> None:
        await self._run(
            lambda: _rows_op(
                f"INSERT INTO cinema_snapshots ({SNAPSHOT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (persistence_id, sequence_nr) DO UPDATE SET created ="
                " EXCLUDED.created, serializer = EXCLUDED.serializer, type_name ="
                " EXCLUDED.type_name, payload = EXCLUDED.payload",
                [
                    snapshot.persistence_id,
                    snapshot.sequence_nr,
                    snapshot.timestamp,
                    snapshot.serializer,
                    snapshot.type_name,
                    snapshot.payload,
                ],
            )
        )

    async def load_snapshots(
        self, persistence_id: str, criteria: SnapshotCriteria, limit: int
    ) -> list[StoredSnapshot]:
        rows = await self._run(
            lambda: _rows_op(
                f"SELECT {SNAPSHOT_COLUMNS} FROM cinema_snapshots WHERE persistence_id = %s AND"
                " sequence_nr BETWEEN %s AND %s AND created BETWEEN %s AND %s"
                " ORDER BY sequence_nr DESC LIMIT %s",
                [
                    persistence_id,
                    criteria.min_sequence_nr,
                    criteria.max_sequence_nr,
                    criteria.min_timestamp,
                    min(criteria.max_timestamp, 1e300),
                    limit,
                ],
            )
        )
        return [snapshot_from_row(row) for row in rows]

    async def delete_snapshots(self, persistence_id: str, criteria: SnapshotCriteria) -> None:
        await self._run(
            lambda: _rows_op(
                "DELETE FROM cinema_snapshots WHERE persistence_id = %s AND sequence_nr BETWEEN %s"
                " AND %s AND created BETWEEN %s AND %s",
                [
                    persistence_id,
                    criteria.min_sequence_nr,
                    criteria.max_sequence_nr,
                    criteria.min_timestamp,
                    min(criteria.max_timestamp, 1e300),
                ],
            )
        )

    async def create_schema(self) -> None:
        """Create the tables if they are missing."""
        await self._run(_schema_op)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._drop()


def _redact(url: str) -> str:
    """``url`` without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    return f"{scheme}{sep}{userinfo}{at}{host}"


@final
class PostgresJournal(JournalPlugin):
    """Opens ``postgresql://`` stores (creating the tables if missing)."""

    scheme: ClassVar[str] = "postgresql"

    async def open(self, url: str) -> JournalStore:
        if not url.startswith("postgresql://"):
            raise ValueError(f"not a postgresql:// URL: {_redact(url)!r}")
        store = PostgresStore(url, trio=_on_trio())
        await store.create_schema()
        return store


@hookimpl
def cinema_journals() -> list[JournalPlugin]:
    """The ``postgresql://`` journal."""
    return [PostgresJournal()]
