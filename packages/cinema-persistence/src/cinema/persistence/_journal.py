"""The journal: what persistent actors and queries talk to, over a plugin's store.

:class:`Journal` adds to a :class:`JournalStore` what every store would otherwise repeat:
serialization through the serializer plugins, group commit (concurrent writes of many actors
share one store transaction), a circuit breaker, and queries as async iterators.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import aclosing, asynccontextmanager
from functools import partial
from typing import Any, Final, TypeVar, final

import anyio
import anyio.lowlevel

from cinema import PluginRegistry, load_plugins

from ._breaker import CircuitBreaker
from ._codec import Codec
from ._errors import (
    EventDecodeError,
    JournalClosed,
    JournalUnavailable,
    PersistenceError,
)
from ._rows import EventEnvelope, SnapshotCriteria, StoredEvent, StoredSnapshot
from .abc import JournalPlugin, JournalStore

__all__ = ["MAX_SEQUENCE_NR", "Journal", "open_journal"]

log = logging.getLogger("cinema.persistence")

MAX_SEQUENCE_NR: Final = 2**63 - 1

# Rows per store read: recovery and queries page through the journal this many at a time.
_PAGE: Final = 5000

T = TypeVar("T")


class _Write:
    __slots__ = ("done", "error", "lead", "rows")

    def __init__(self, rows: list[StoredEvent]) -> None:
        self.rows = rows
        # Made only by a writer that has to wait behind a write in progress (the common,
        # uncontended write needs none).
        self.done: anyio.Event | None = None
        self.error: BaseException | None = None
        self.lead = False


def _fresh(exc: BaseException) -> BaseException:
    """A new exception for one waiter of a shared failure (one instance raised in several tasks
    would share and grow one traceback)."""
    if isinstance(exc, JournalUnavailable):
        copy: BaseException = type(exc)(str(exc))
        copy.__cause__ = exc.__cause__ if exc.__cause__ is not None else exc
        return copy
    if isinstance(exc, PersistenceError):
        return exc
    copy = JournalUnavailable(f"the journal store failed: {exc!r}")
    copy.__cause__ = exc
    return copy


@final
class Journal:
    """Events and snapshots of persistent actors, stored by a plugin's :class:`JournalStore`.

    Open one with :func:`open_journal` (by URL). Every method may be called from any task of
    the event loop that opened it.

    :param store: the store.
    :param plugins: where serializers are found (default: the installed plugins).
    :param breaker: the circuit breaker in front of the store (default: 5 failures, 1 s).
    :param max_batch: at most this many writes share one store transaction.
    :param poll_interval: how often live queries look for events written by other processes
        (writes through this journal wake them at once).
    """

    def __init__(
        self,
        store: JournalStore,
        *,
        plugins: PluginRegistry | None = None,
        breaker: CircuitBreaker | None = None,
        max_batch: int = 256,
        poll_interval: float = 0.25,
        url: str = "",
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.store = store
        self.codec = Codec(plugins if plugins is not None else load_plugins())
        self.breaker = breaker if breaker is not None else CircuitBreaker()
        self.max_batch = max_batch
        self.poll_interval = poll_interval
        self.url = url
        self._queue: list[_Write] = []
        self._leading = False
        # Set after each write, made only when a live query waits for one.
        self._written: anyio.Event | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<Journal {self.url or type(self.store).__name__}>"

    # -- writing -------------------------------------------------------------------------------

    async def append(
        self,
        persistence_id: str,
        sequence_nr: int,
        events: Sequence[object],
        tags: Sequence[Iterable[str]] | None = None,
    ) -> None:
        """Store ``events`` atomically as ``sequence_nr``, ``sequence_nr + 1``, ...; return once
        they are durable. Concurrent appends (of other persistence ids) share transactions.

        The write is not abandoned if the caller is cancelled: it finishes first.

        :param tags: one iterable of tags per event (default: none).
        :raises SequenceConflict: one of those sequence numbers is taken; nothing was written.
        :raises UnserializableEvent: an event has no serializer; nothing was written.
        :raises JournalUnavailable: the store failed (:class:`CircuitOpen`: it was not tried);
            whether the events were written is unknown.
        :raises JournalClosed: the journal is closed.
        """
        if sequence_nr < 1:
            raise ValueError(f"sequence numbers start at 1, got {sequence_nr}")
        if tags is not None and len(tags) != len(events):
            raise ValueError(f"{len(tags)} tag sets for {len(events)} events")
        rows = []
        encode = self.codec.encode
        for i, event in enumerate(events):
            serializer, type_name, payload = encode(event)
            event_tags = tuple(sorted(set(tags[i]))) if tags is not None else ()
            for tag in event_tags:
                if not isinstance(tag, str) or not tag:
                    raise ValueError(f"tags must be non-empty strings, got {tag!r}")
            rows.append(
                StoredEvent(
                    persistence_id, sequence_nr + i, serializer, type_name, payload, event_tags
                )
            )
        if not rows:
            return
        self._check_open()
        write = _Write(rows)
        self._queue.append(write)
        with anyio.CancelScope(shield=True):
            if self._leading:
                done = write.done = anyio.Event()
                await done.wait()
                if write.lead:
                    await self._lead(write)
            else:
                self._leading = True
                await self._lead(write)
        if write.error is not None:
            raise write.error

    async def _lead(self, mine: _Write) -> None:
        # Group commit without a writer task: the caller that finds no write in progress writes
        # everything queued; whoever queued meanwhile waits, and the first of them leads next.
        store = self.store
        try:
            # ``mine`` is first in the queue (a leader only hands over to the first waiter), so
            # one round writes it.
            mine.lead = False
            group = self._queue[: self.max_batch]
            del self._queue[: len(group)]

            async def write(group: list[_Write] = group) -> list[BaseException | None]:
                try:
                    return await store.write([w.rows for w in group])
                except JournalUnavailable:
                    raise
                except Exception as exc:
                    raise JournalUnavailable(f"the journal store failed: {exc!r}") from exc

            try:
                results: list[BaseException | None] = await self.breaker.call(write)
                if len(results) != len(group):
                    raise JournalUnavailable(
                        f"the store answered {len(results)} results for {len(group)} batches"
                    )
            except Exception as exc:
                results = [_fresh(exc) for _ in group]
            for w, error in zip(group, results, strict=True):
                w.error = error
                if w.done is not None:
                    w.done.set()
            if self._written is not None:
                self._written.set()
                self._written = None
        finally:
            if self._queue:
                nxt = self._queue[0]
                nxt.lead = True
                assert nxt.done is not None  # a queued writer is waiting on it
                nxt.done.set()
            else:
                self._leading = False

    async def delete_events(self, persistence_id: str, to_sequence_nr: int) -> None:
        """Delete the events of ``persistence_id`` up to ``to_sequence_nr`` (inclusive); the
        highest sequence number stays.

        :raises JournalUnavailable: the store failed.
        """
        self._check_open()
        await self._call(lambda: self.store.delete_to(persistence_id, to_sequence_nr))

    # -- reading -------------------------------------------------------------------------------

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        """The highest sequence number written for ``persistence_id`` (``0``: none), deleted
        events included."""
        self._check_open()
        return await self._call(lambda: self.store.highest_sequence_nr(persistence_id))

    async def pages(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int = MAX_SEQUENCE_NR,
        max_count: int = MAX_SEQUENCE_NR,
    ) -> AsyncGenerator[list[StoredEvent], None]:
        """The stored (serialized) events of ``persistence_id`` in the range, in order, a page
        (one store read) at a time."""
        self._check_open()
        next_nr, left = from_sequence_nr, max_count
        while left > 0 and next_nr <= to_sequence_nr:
            limit = min(_PAGE, left)
            page = await self._call(
                partial(self.store.read, persistence_id, next_nr, to_sequence_nr, limit)
            )
            if page:
                yield page
            if len(page) < limit:
                return
            left -= len(page)
            next_nr = page[-1].sequence_nr + 1

    async def replay_pages(
        self, persistence_id: str, from_sequence_nr: int
    ) -> AsyncGenerator[list[tuple[int, str, str, bytes]], None]:
        """Recovery's read: ``(sequence_nr, serializer, type_name, payload)`` of every live
        event from ``from_sequence_nr`` on, a page at a time (see ``JournalStore.replay``)."""
        self._check_open()
        next_nr = from_sequence_nr
        while True:
            page = await self._call(partial(self.store.replay, persistence_id, next_nr, _PAGE))
            if page:
                yield page
            if len(page) < _PAGE:
                return
            next_nr = page[-1][0] + 1

    async def replay(
        self,
        persistence_id: str,
        from_sequence_nr: int,
        until_sequence_nr: int,
        consume: Callable[[list[tuple[int, str, str, bytes]]], None],
    ) -> None:
        """Recovery's read, pipelined: hand ``consume`` every page of live events from
        ``from_sequence_nr`` on (``(sequence_nr, serializer, type_name, payload)``, in order)
        while the store already reads the next page (in its thread or its server). Stops after
        ``until_sequence_nr`` (the highest stored number), sparing a last empty read.

        :raises JournalUnavailable: the store failed; what ``consume`` raises, after the
            read in flight is done.
        """
        self._check_open()
        store = self.store
        page = await self._call(partial(store.replay, persistence_id, from_sequence_nr, _PAGE))
        while page:
            nxt = page[-1][0] + 1
            if len(page) < _PAGE or nxt > until_sequence_nr:
                consume(page)
                return
            box: list[Any] = []

            async def fetch(nxt: int = nxt, box: list[Any] = box) -> None:
                try:
                    box.append(await self._call(partial(store.replay, persistence_id, nxt, _PAGE)))
                except BaseException as exc:
                    box.append(exc)
                    if not isinstance(exc, Exception):
                        raise

            failed: Exception | None = None
            async with anyio.create_task_group() as tg:
                tg.start_soon(fetch)
                # Let the read start (the query sent, or the thread job queued) before the
                # CPU-bound decoding of this page.
                await anyio.lowlevel.checkpoint()
                await anyio.lowlevel.checkpoint()
                try:
                    consume(page)
                except Exception as exc:
                    failed = exc  # raised once the read in flight is done (no half-read)
            if failed is not None:
                raise failed
            result = box[0]
            if isinstance(result, BaseException):
                raise result
            page = result

    async def rows(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int = MAX_SEQUENCE_NR,
        max_count: int = MAX_SEQUENCE_NR,
    ) -> AsyncGenerator[StoredEvent, None]:
        """The stored (serialized) events of ``persistence_id`` in the range, in order."""
        async with aclosing(
            self.pages(persistence_id, from_sequence_nr, to_sequence_nr, max_count)
        ) as pages:
            async for page in pages:
                for row in page:
                    yield row

    def decode(self, row: StoredEvent) -> Any:
        """The event a row stores.

        :raises EventDecodeError: unknown serializer or type, or bytes that do not decode.
        """
        try:
            return self.codec.decode(row.serializer, row.type_name, row.payload)
        except (LookupError, ValueError) as exc:
            raise EventDecodeError(row.persistence_id, row.sequence_nr, str(exc)) from exc

    async def events_by_persistence_id(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int = MAX_SEQUENCE_NR,
        *,
        live: bool = False,
    ) -> AsyncIterator[EventEnvelope[Any]]:
        """The events of one persistence id from ``from_sequence_nr``, decoded, in order.

        With ``live=True`` the iterator does not end at the last stored event: it waits for new
        ones (until ``to_sequence_nr``). Usable with ``ctx.add_stream``.

        :raises EventDecodeError: a stored event does not decode.
        """
        next_nr = from_sequence_nr
        while True:
            wake = self._wake()
            async with aclosing(self.rows(persistence_id, next_nr, to_sequence_nr)) as rows:
                async for row in rows:
                    yield self._envelope(row)
                    next_nr = row.sequence_nr + 1
            if not live or next_nr > to_sequence_nr:
                return
            await self._wait_for_writes(wake)

    async def events_by_tag(
        self, tag: str, offset: int = 0, *, live: bool = True
    ) -> AsyncIterator[EventEnvelope[Any]]:
        """The events carrying ``tag`` with an offset greater than ``offset``, in offset order,
        decoded. Live by default: it waits for new events; ``live=False`` ends at the last
        stored one. Resume from the ``offset`` of the last envelope handled.

        :raises EventDecodeError: a stored event does not decode.
        """
        after = offset
        while True:
            wake = self._wake()
            self._check_open()
            page = await self._call(partial(self.store.read_tag, tag, after, _PAGE))
            for row in page:
                yield self._envelope(row)
                after = row.offset
            if len(page) == _PAGE:
                continue
            if not live:
                return
            await self._wait_for_writes(wake)

    def _envelope(self, row: StoredEvent) -> EventEnvelope[Any]:
        return EventEnvelope(
            row.persistence_id, row.sequence_nr, self.decode(row), row.offset, row.tags
        )

    def _wake(self) -> anyio.Event:
        if self._written is None:
            self._written = anyio.Event()
        return self._written

    async def _wait_for_writes(self, wake: anyio.Event) -> None:
        with anyio.move_on_after(self.poll_interval):
            await wake.wait()

    # -- snapshots -----------------------------------------------------------------------------

    async def save_snapshot(self, persistence_id: str, sequence_nr: int, state: object) -> None:
        """Store ``state`` as the snapshot of ``persistence_id`` after event ``sequence_nr``.

        :raises UnserializableEvent: no serializer handles the state's type.
        :raises JournalUnavailable: the store failed.
        """
        self._check_open()
        serializer, type_name, payload = self.codec.encode(state)
        snapshot = StoredSnapshot(
            persistence_id, sequence_nr, time.time(), serializer, type_name, payload
        )
        await self._call(lambda: self.store.save_snapshot(snapshot))

    async def load_snapshot(
        self, persistence_id: str, criteria: SnapshotCriteria | None = None
    ) -> tuple[int, Any] | None:
        """The newest snapshot of ``persistence_id`` that decodes, as ``(sequence_nr, state)``;
        ``None`` if there is none. A snapshot that does not decode is logged and skipped (an
        older one, or a full replay, takes its place).

        :raises JournalUnavailable: the store failed.
        """
        self._check_open()
        crit = criteria if criteria is not None else SnapshotCriteria()
        found = await self._call(lambda: self.store.load_snapshots(persistence_id, crit, 3))
        for snapshot in found:
            try:
                state = self.codec.decode(snapshot.serializer, snapshot.type_name, snapshot.payload)
            except (LookupError, ValueError) as exc:
                log.warning(
                    "%r: cannot load the snapshot at sequence number %d (%s); using an"
                    " older one or a full replay",
                    persistence_id,
                    snapshot.sequence_nr,
                    exc,
                )
                continue
            return snapshot.sequence_nr, state
        return None

    async def snapshots(
        self, persistence_id: str, criteria: SnapshotCriteria | None = None, limit: int = 100
    ) -> list[StoredSnapshot]:
        """The stored snapshots of ``persistence_id`` matching ``criteria``, newest first."""
        self._check_open()
        crit = criteria if criteria is not None else SnapshotCriteria()
        return await self._call(lambda: self.store.load_snapshots(persistence_id, crit, limit))

    async def delete_snapshots(
        self, persistence_id: str, criteria: SnapshotCriteria | None = None
    ) -> None:
        """Delete the snapshots of ``persistence_id`` matching ``criteria`` (default: all)."""
        self._check_open()
        crit = criteria if criteria is not None else SnapshotCriteria()
        await self._call(lambda: self.store.delete_snapshots(persistence_id, crit))

    # -- plumbing ------------------------------------------------------------------------------

    async def _call(self, func: Callable[[], Awaitable[T]]) -> T:
        async def guarded() -> T:
            try:
                return await func()
            except (PersistenceError, ValueError):
                raise
            except Exception as exc:
                raise JournalUnavailable(f"the journal store failed: {exc!r}") from exc

        return await self.breaker.call(guarded)

    def _check_open(self) -> None:
        if self._closed:
            raise JournalClosed(f"{self!r} is closed")

    async def aclose(self) -> None:
        """Close the journal and its store. Idempotent."""
        if not self._closed:
            self._closed = True
            await self.store.aclose()

    async def __aenter__(self) -> Journal:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def plugin_for(url: str, plugins: PluginRegistry) -> JournalPlugin:
    """The journal plugin serving ``url``'s scheme.

    :raises ValueError: the URL has no scheme.
    :raises cinema.PluginNotFound: no installed plugin serves it.
    :raises cinema.PluginLoadError: the plugin is not a :class:`JournalPlugin`.
    """
    from cinema import PluginLoadError

    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise ValueError(
            f"a journal URL looks like sqlite:///path.db, postgresql://... or memory://; got"
            f" {url!r}"
        )
    plugin = plugins.journal(scheme)
    if not isinstance(plugin, JournalPlugin):
        raise PluginLoadError(
            f"the journal plugin for {scheme!r} is {plugin!r}, not a"
            " cinema.persistence.abc.JournalPlugin"
        )
    return plugin


@asynccontextmanager
async def open_journal(
    url: str,
    *,
    plugins: PluginRegistry | None = None,
    breaker: CircuitBreaker | None = None,
    max_batch: int = 256,
    poll_interval: float = 0.25,
) -> AsyncIterator[Journal]:
    """Open the journal at ``url`` with the plugin of its scheme, and close it on exit::

        async with open_journal("sqlite:///app.db") as journal:
            ...

    :param url: ``sqlite:///path/file.db``, ``postgresql://user@host/db``, ``memory://name``
        or a third party's scheme.
    :raises ValueError: a malformed URL.
    :raises cinema.PluginNotFound: no installed journal serves the scheme.
    :raises JournalUnavailable: the store cannot be reached.
    """
    registry = plugins if plugins is not None else load_plugins()
    store = await plugin_for(url, registry).open(url)
    journal = Journal(
        store,
        plugins=registry,
        breaker=breaker,
        max_batch=max_batch,
        poll_interval=poll_interval,
        url=url,
    )
    async with journal:
        yield journal


Journal.__module__ = "cinema.persistence"
