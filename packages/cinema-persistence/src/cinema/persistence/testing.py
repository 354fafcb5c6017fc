"""The persistence test kit: Akka's persistence TCK, ported to pytest, for any journal.

Subclass the specs in a test module and say how to reach the journal; pytest collects the
inherited tests (they run on every anyio backend the ``anyio_backend`` fixture gives)::

    from cinema.persistence.testing import JournalSpec, SnapshotStoreSpec, PerfSpec

    class TestMyJournal(JournalSpec, SnapshotStoreSpec, PerfSpec):
        def journal_url(self) -> str:
            return "myscheme://localhost/test"

Each test writes under fresh persistence ids, so one database may serve every test. The specs
write :class:`TckEvent` objects with :class:`TckSerializer`, which they register into the
process-wide plugin registry (so the kit needs no serializer of its own choosing).

- :class:`JournalSpec`: 15 required cases (replay bounds and counts, highest sequence number
  across deletes, ...) and 4 optional ones (atomic ``persist_all``, rejecting an unserializable
  event, the stored serializer name, single-writer conflicts), switched off with the
  ``supports_*`` class attributes;
- :class:`SnapshotStoreSpec`: 11 required cases and 2 optional ones;
- :class:`PerfSpec`: persist ``perf_events`` events one at a time through a
  :class:`PersistentActor`, then recover them (10,000 by default).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar, Self, TypeVar, final

import pytest

from cinema import ActorSystem, Context, Message, handler, load_plugins
from cinema.abc import Serializer, hookimpl

from ._actor import PersistentActor
from ._codec import register_types
from ._errors import SequenceConflict, UnserializableEvent
from ._journal import MAX_SEQUENCE_NR, Journal, open_journal
from ._rows import SnapshotCriteria

__all__ = [
    "JournalSpec",
    "PerfSpec",
    "SnapshotStoreSpec",
    "TckEvent",
    "TckPlugin",
    "TckSerializer",
    "install_tck_serializer",
]

T = TypeVar("T")


@final
class TckEvent:
    """The event (and snapshot state) type the kit writes: a string."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TckEvent) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"TckEvent({self.value!r})"


@final
class Unserializable:
    """A type no serializer handles."""


@final
class TckSerializer(Serializer):
    """Serializes :class:`TckEvent` as UTF-8 (registered as ``"cinema-tck"``)."""

    name: ClassVar[str] = "cinema-tck"

    def handles(self, cls: type) -> bool:
        return cls is TckEvent

    def type_name(self, cls: type) -> str:
        if cls is not TckEvent:
            raise TypeError(f"{cls!r} is not TckEvent")
        return "cinema.tck.Event"

    def encode(self, message: object) -> bytes:
        if not isinstance(message, TckEvent):
            raise TypeError(f"{message!r} is not a TckEvent")
        return message.value.encode()

    def decode(self, data: bytes, cls: type[T]) -> T:
        if cls is not TckEvent:
            raise ValueError(f"{cls!r} is not TckEvent")
        try:
            return TckEvent(data.decode())  # type: ignore[return-value]  # cls is TckEvent
        except UnicodeDecodeError as exc:
            raise ValueError(str(exc)) from exc


class TckPlugin:
    """A plugin providing :class:`TckSerializer` (register it in a hand-made registry)."""

    @hookimpl
    def cinema_serializers(self) -> list[Serializer]:
        return [TckSerializer()]


def install_tck_serializer() -> None:
    """Register :class:`TckSerializer` in the process-wide plugin registry (once)."""
    registry = load_plugins()
    if TckSerializer.name not in registry.serializers:
        registry.register(TckPlugin(), name="cinema-tck")
    register_types(TckEvent)


def _pid(prefix: str = "tck") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def _events(first: int, last: int) -> list[TckEvent]:
    return [TckEvent(f"e-{n}") for n in range(first, last + 1)]


class _Spec:
    pytestmark = pytest.mark.anyio

    def journal_url(self) -> str:
        """The URL of the journal under test (implement this, or override :meth:`journal`)."""
        raise NotImplementedError("implement journal_url() or journal()")

    @asynccontextmanager
    async def journal(self) -> AsyncIterator[Journal]:
        """Open the journal under test."""
        install_tck_serializer()
        async with open_journal(self.journal_url()) as journal:
            yield journal

    async def replay(
        self,
        journal: Journal,
        pid: str,
        first: int = 1,
        last: int = MAX_SEQUENCE_NR,
        count: int = MAX_SEQUENCE_NR,
    ) -> list[tuple[int, Any]]:
        return [
            (row.sequence_nr, journal.decode(row))
            async for row in journal.rows(pid, first, last, count)
        ]

    async def five(self, journal: Journal) -> str:
        """A fresh persistence id with events 1..5, written one at a time."""
        pid = _pid()
        for n in range(1, 6):
            await journal.append(pid, n, [TckEvent(f"e-{n}")])
        return pid


def _expect(numbers: list[int]) -> list[tuple[int, Any]]:
    return [(n, TckEvent(f"e-{n}")) for n in numbers]


class JournalSpec(_Spec):
    """Akka's ``JournalSpec``: 15 required cases and 4 optional ones."""

    #: ``persist_all`` of several events is all or nothing.
    supports_atomic_writes: ClassVar[bool] = True
    #: An unserializable event fails its write without writing anything or breaking the store.
    supports_rejecting_non_serializable: ClassVar[bool] = True
    #: Rows name the serializer that encoded them.
    supports_serialization: ClassVar[bool] = True
    #: A taken (persistence id, sequence number) key fails the write (single writer).
    supports_sequence_conflicts: ClassVar[bool] = True

    async def test_replays_all_events(self) -> None:
        async with self.journal() as journal:
            pid = await self.five(journal)
            assert await self.replay(journal, pid) == _expect([1, 2, 3, 4, 5])

    async def test_replays_from_a_lower_bound(self) -> None:
        async with self.journal() as journal:
            pid = await self.five(journal)
            assert await self.replay(journal, pid, 3) == _expect([3, 4, 5])

    async def test_replays_to_an_upper_bound(self) -> None:
        async with self.journal() as journal:
            pid = await self.five(journal)
            assert await self.replay(journal, pid, 1, 3) == _expect([1, 2, 3])

    async def test_replays_with_a_count_limit(self) -> None:
        async with self.journal() as journal:
            pid = await self.five(journal)
            assert await self.replay(journal, pid, 1, MAX_SEQUENCE_NR, 3) == _expect([1, 2, 3])

    async def test_replays_between_lower_and_upper_bounds(self) -> None:
        async with self.journal() as journal:
            pid = await self.five(journal)
            assert await self.replay(journal, pid, 2, 3) == _expect([2, 3])

    async def test_replays_between_bounds_with_a_count_limit(self) -> None:
        async with self.journal() as journal:
            pid = await self.five(journal)
            assert await self.replay(journal, pid, 2, 5, 2) == _expect([2, 3])

    async def test_replays_one_event_when_the_bounds_are_equal(self) -> None:
        async with self.journal() as journal:
            pid = await self.five(journal)
            assert await self.replay(journal, pid, 2, 2) == _expect([2])

    async def test_replays_one_event_when_the_count_limit_is_one(self) -> None:
        async with self.journal() as journal:
            pid = await self.five(journal)
            assert await self.replay(journal, pid, 2, 4, 1) == _expect([2])

    async def test_replays_nothing_when_the_count_limit_is_zero(self) -> None:
        async with self.journal() as journal:
            pid = await self.five(journal)
            assert await self.replay(journal, pid, 1, 5, 0) == []

    async def test_replays_nothing_when_the_lower_bound_exceeds_the_upper(self) -> None:
        async with self.journal() as journal:
            pid = await self.five(journal)
            assert await self.replay(journal, pid, 3, 2) == []

    async def test_replays_nothing_above_the_highest_sequence_number(self) -> None:
        async with self.journal() as journal:
            pid = await self.five(journal)
            assert await self.replay(journal, pid, 6) == []

    async def test_replays_nothing_for_an_unknown_persistence_id(self) -> None:
        async with self.journal() as journal:
            await self.five(journal)
            assert await self.replay(journal, _pid()) == []
            assert await journal.highest_sequence_nr(_pid()) == 0

    async def test_does_not_replay_deleted_events(self) -> None:
        async with self.journal() as journal:
            pid = await self.five(journal)
            await journal.delete_events(pid, 3)
            assert await self.replay(journal, pid) == _expect([4, 5])
            await journal.delete_events(pid, 2)  # a lower bound deletes nothing more
            assert await self.replay(journal, pid) == _expect([4, 5])

    async def test_highest_sequence_number_survives_deletes(self) -> None:
        async with self.journal() as journal:
            pid = await self.five(journal)
            assert await journal.highest_sequence_nr(pid) == 5
            await journal.delete_events(pid, 3)
            assert await journal.highest_sequence_nr(pid) == 5
            await journal.delete_events(pid, 5)
            assert await self.replay(journal, pid) == []
            assert await journal.highest_sequence_nr(pid) == 5

    async def test_highest_sequence_number_survives_reopening(self) -> None:
        async with self.journal() as journal:
            pid = await self.five(journal)
            await journal.delete_events(pid, MAX_SEQUENCE_NR)
        async with self.journal() as journal:
            assert await journal.highest_sequence_nr(pid) == 5
            assert await self.replay(journal, pid) == []
            await journal.append(pid, 6, [TckEvent("e-6")])
            assert await self.replay(journal, pid) == _expect([6])

    # -- optional ------------------------------------------------------------------------------

    async def test_writes_several_events_atomically(self) -> None:
        if not self.supports_atomic_writes:
            pytest.skip("the journal does not claim atomic writes")
        async with self.journal() as journal:
            pid = await self.five(journal)
            await journal.append(pid, 6, _events(6, 8))
            assert await self.replay(journal, pid, 6) == _expect([6, 7, 8])
            with pytest.raises(SequenceConflict):
                # 9 and 10 are free but 8 is taken: none of the three may land.
                await journal.append(pid, 8, _events(8, 10))
            assert await journal.highest_sequence_nr(pid) == 8
            assert await self.replay(journal, pid, 9) == []

    async def test_rejects_an_unserializable_event(self) -> None:
        if not self.supports_rejecting_non_serializable:
            pytest.skip("the journal does not claim to reject unserializable events")
        async with self.journal() as journal:
            pid = await self.five(journal)
            with pytest.raises(UnserializableEvent):
                await journal.append(pid, 6, [TckEvent("e-6"), Unserializable()])
            assert await journal.highest_sequence_nr(pid) == 5
            await journal.append(pid, 6, [TckEvent("e-6")])
            assert await self.replay(journal, pid, 5) == _expect([5, 6])

    async def test_rows_name_their_serializer_and_type(self) -> None:
        if not self.supports_serialization:
            pytest.skip("the journal does not claim serialization")
        async with self.journal() as journal:
            pid = _pid()
            await journal.append(pid, 1, [TckEvent("é\u2603")], tags=[["tck-tag"]])
            (row,) = [row async for row in journal.rows(pid)]
            assert (row.serializer, row.type_name) == ("cinema-tck", "cinema.tck.Event")
            assert row.payload == "é\u2603".encode()
            assert row.tags == ("tck-tag",)
            assert row.offset > 0
            assert journal.decode(row) == TckEvent("é\u2603")

    async def test_a_taken_sequence_number_fails_the_write(self) -> None:
        if not self.supports_sequence_conflicts:
            pytest.skip("the journal does not claim single-writer conflicts")
        async with self.journal() as journal, self.journal() as other:
            pid = await self.five(journal)
            with pytest.raises(SequenceConflict) as info:
                await other.append(pid, 5, [TckEvent("intruder")])
            assert info.value.persistence_id == pid
            assert await self.replay(journal, pid, 5) == _expect([5])


class SnapshotStoreSpec(_Spec):
    """Akka's ``SnapshotStoreSpec``: 11 required cases and 2 optional ones."""

    supports_serialization: ClassVar[bool] = True
    #: A snapshot whose bytes do not decode is skipped for an older one (or none).
    supports_decode_fallback: ClassVar[bool] = True

    async def snapshots(self, journal: Journal) -> tuple[str, list[float]]:
        """A fresh persistence id with snapshots at 1..5; returns their timestamps."""
        pid = _pid("snap")
        for n in range(1, 6):
            await journal.save_snapshot(pid, n, TckEvent(f"s-{n}"))
        stamps = [s.timestamp for s in reversed(await journal.snapshots(pid))]
        assert len(stamps) == 5
        return pid, stamps

    async def test_loads_nothing_for_an_unknown_persistence_id(self) -> None:
        async with self.journal() as journal:
            await self.snapshots(journal)
            assert await journal.load_snapshot(_pid()) is None

    async def test_loads_nothing_for_non_matching_timestamps(self) -> None:
        async with self.journal() as journal:
            pid, stamps = await self.snapshots(journal)
            crit = SnapshotCriteria(max_timestamp=stamps[0] - 1)
            assert await journal.load_snapshot(pid, crit) is None

    async def test_loads_nothing_for_non_matching_sequence_numbers(self) -> None:
        async with self.journal() as journal:
            pid, _ = await self.snapshots(journal)
            assert await journal.load_snapshot(pid, SnapshotCriteria(max_sequence_nr=0)) is None

    async def test_loads_the_newest_snapshot(self) -> None:
        async with self.journal() as journal:
            pid, _ = await self.snapshots(journal)
            assert await journal.load_snapshot(pid) == (5, TckEvent("s-5"))

    async def test_loads_the_newest_below_a_sequence_number(self) -> None:
        async with self.journal() as journal:
            pid, _ = await self.snapshots(journal)
            crit = SnapshotCriteria(max_sequence_nr=3)
            assert await journal.load_snapshot(pid, crit) == (3, TckEvent("s-3"))

    async def test_loads_the_newest_below_a_sequence_number_and_timestamp(self) -> None:
        async with self.journal() as journal:
            pid, stamps = await self.snapshots(journal)
            crit = SnapshotCriteria(max_sequence_nr=4, max_timestamp=stamps[1])
            assert await journal.load_snapshot(pid, crit) == (2, TckEvent("s-2"))

    async def test_deletes_one_snapshot_by_sequence_number(self) -> None:
        async with self.journal() as journal:
            pid, _ = await self.snapshots(journal)
            await journal.delete_snapshots(
                pid, SnapshotCriteria(min_sequence_nr=3, max_sequence_nr=3)
            )
            assert [s.sequence_nr for s in await journal.snapshots(pid)] == [5, 4, 2, 1]
            crit = SnapshotCriteria(max_sequence_nr=3)
            assert await journal.load_snapshot(pid, crit) == (2, TckEvent("s-2"))

    async def test_deletes_every_snapshot_matching_bounds(self) -> None:
        async with self.journal() as journal:
            pid, stamps = await self.snapshots(journal)
            await journal.delete_snapshots(
                pid, SnapshotCriteria(max_sequence_nr=3, max_timestamp=stamps[4])
            )
            assert [s.sequence_nr for s in await journal.snapshots(pid)] == [5, 4]
            assert await journal.load_snapshot(pid) == (5, TckEvent("s-5"))

    async def test_keeps_snapshots_outside_the_timestamp_bound(self) -> None:
        async with self.journal() as journal:
            pid, stamps = await self.snapshots(journal)
            await journal.delete_snapshots(
                pid, SnapshotCriteria(max_sequence_nr=5, max_timestamp=stamps[0] - 1)
            )
            assert len(await journal.snapshots(pid)) == 5

    async def test_overwrites_a_snapshot_with_the_same_sequence_number(self) -> None:
        async with self.journal() as journal:
            pid, _ = await self.snapshots(journal)
            await journal.save_snapshot(pid, 5, TckEvent("s-5-again"))
            assert await journal.load_snapshot(pid) == (5, TckEvent("s-5-again"))
            assert len(await journal.snapshots(pid)) == 5

    async def test_saves_a_big_snapshot(self) -> None:
        async with self.journal() as journal:
            pid = _pid("snap")
            big = TckEvent("x" * 10_000_000)
            await journal.save_snapshot(pid, 1, big)
            assert await journal.load_snapshot(pid) == (1, big)

    # -- optional ------------------------------------------------------------------------------

    async def test_snapshots_name_their_serializer(self) -> None:
        if not self.supports_serialization:
            pytest.skip("the store does not claim serialization")
        async with self.journal() as journal:
            pid = _pid("snap")
            before = time.time()
            await journal.save_snapshot(pid, 7, TckEvent("state"))
            (snap,) = await journal.snapshots(pid)
            assert (snap.serializer, snap.type_name, snap.payload) == (
                "cinema-tck",
                "cinema.tck.Event",
                b"state",
            )
            assert (snap.persistence_id, snap.sequence_nr) == (pid, 7)
            assert before - 1 <= snap.timestamp <= time.time() + 1

    async def test_an_undecodable_snapshot_falls_back_to_an_older_one(self) -> None:
        if not self.supports_decode_fallback:
            pytest.skip("the store does not claim the decode fallback")
        async with self.journal() as journal:
            pid = _pid("snap")
            await journal.save_snapshot(pid, 1, TckEvent("good"))
            # A newer snapshot whose bytes the serializer refuses (not UTF-8).
            (good,) = await journal.snapshots(pid)
            from dataclasses import replace

            await journal.store.save_snapshot(replace(good, sequence_nr=2, payload=b"\xff\xfe"))
            assert await journal.load_snapshot(pid) == (1, TckEvent("good"))
            await journal.delete_snapshots(pid, SnapshotCriteria(max_sequence_nr=1))
            assert await journal.load_snapshot(pid) is None


class Append(Message[int]):
    """Persist one event; replies with the sequence number."""

    __slots__ = ()


class _PerfActor(PersistentActor[TckEvent]):
    def __init__(self, journal: Journal, pid: str) -> None:
        self.journal = journal
        self.persistence_id = pid
        self.count = 0

    def apply(self, event: TckEvent) -> None:
        self.count += 1

    @handler
    async def append(self, msg: Append, ctx: Context[Self]) -> int:
        await self.persist(TckEvent("perf"))
        return self.last_sequence_nr


class PerfSpec(_Spec):
    """Akka's ``JournalPerfSpec`` (its persist and recover cases): ``perf_events`` events
    persisted one per message (each awaited), then recovered by a new instance."""

    #: How many events; lower it for a slow test store (the benchmarks run the full count).
    perf_events: ClassVar[int] = 10_000

    async def test_persists_and_recovers_many_events(self) -> None:
        async with self.journal() as journal, ActorSystem() as system:
            pid = _pid("perf")
            addr = system.spawn(_PerfActor(journal, pid))
            for n in range(1, self.perf_events + 1):
                assert await addr.send(Append()) == n
            addr.stop()
            again = _PerfActor(journal, pid)
            addr = system.spawn(again)
            assert await addr.send(Append()) == self.perf_events + 1
            assert again.count == self.perf_events + 1
