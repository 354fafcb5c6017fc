"""Test actors and stores shared by the cinema-persistence tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

import anyio
import anyio.lowlevel

from cinema import Context, Message, handler
from cinema.persistence import (
    JournalUnavailable,
    PersistentActor,
    SnapshotCriteria,
    StoredEvent,
    StoredSnapshot,
)
from cinema.persistence.abc import JournalStore
from tests.persistence.protos.persistence_test_pb2 import Added, Note, Total


@dataclass(frozen=True)
class Add(Message[int]):
    """Persist ``Added(n)`` (``AddMany``: several, atomically); replies with the total."""

    n: int


@dataclass(frozen=True)
class AddMany(Message[int]):
    ns: tuple[int, ...]


@dataclass(frozen=True)
class Get(Message[int]):
    pass


@dataclass(frozen=True)
class Write(Message[None]):
    """Persist ``Note(text)`` tagged ``tags``."""

    text: str
    tags: tuple[str, ...] = ()


class Counter(PersistentActor[Added | Note]):
    """Sums ``Added`` events; remembers notes; snapshots as ``Total`` when asked to."""

    def __init__(self, pid: str, *, snapshot_every: int | None = None) -> None:
        self.persistence_id = pid
        self.total = 0
        self.applied = 0
        self.notes: list[str] = []
        self.log: list[str] = []
        self.snapshot_every_n = snapshot_every
        self.restored: int | None = None

    def apply(self, event: Added | Note) -> None:
        self.applied += 1
        if isinstance(event, Added):
            self.total += event.n
        else:
            self.notes.append(event.text)

    def tags_of(self, event: Added | Note) -> tuple[str, ...]:
        return tuple(self._tags) if isinstance(event, Note) else ()

    _tags: tuple[str, ...] = ()

    def snapshot_state(self) -> Total:
        return Total(total=self.total, events=self.last_sequence_nr)

    def restore(self, state: Total) -> None:
        self.total = state.total
        self.restored = state.events

    def recovery_completed(self, ctx: Context[Self]) -> None:
        self.log.append(f"recovered {self.total}")

    @handler
    async def add(self, msg: Add, ctx: Context[Self]) -> int:
        self.log.append(f"add {msg.n}")
        await self.persist(Added(n=msg.n))
        every = self.snapshot_every_n
        if every is not None and self.last_sequence_nr % every == 0:
            await self.save_snapshot()
        return self.total

    @handler
    async def add_many(self, msg: AddMany, ctx: Context[Self]) -> int:
        await self.persist_all([Added(n=n) for n in msg.ns])
        return self.total

    @handler
    async def write(self, msg: Write, ctx: Context[Self]) -> None:
        self._tags = msg.tags
        await self.persist(Note(text=msg.text))

    @handler
    def get(self, msg: Get, ctx: Context[Self]) -> int:
        return self.total


class ProbeStore(JournalStore):
    """Wraps a store: counts writes, can hold reads until released, and can be 'down'."""

    def __init__(self, inner: JournalStore) -> None:
        self.inner = inner
        self.writes = 0
        self.batches = 0
        self.calls = 0
        self.down = False
        self.hold_reads: anyio.Event | None = None
        self.reading = anyio.Event()

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise JournalUnavailable("the probe store is down")

    async def write(self, batches: Sequence[Sequence[StoredEvent]]) -> list[BaseException | None]:
        self._check()
        self.writes += 1
        self.batches += len(batches)
        await anyio.lowlevel.checkpoint()  # let other writers queue behind this one
        return await self.inner.write(batches)

    async def read(self, pid: str, first: int, last: int, limit: int) -> list[StoredEvent]:
        self._check()
        self.reading.set()
        if self.hold_reads is not None:
            await self.hold_reads.wait()
        return await self.inner.read(pid, first, last, limit)

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        self._check()
        return await self.inner.highest_sequence_nr(persistence_id)

    async def delete_to(self, persistence_id: str, to_sequence_nr: int) -> None:
        self._check()
        await self.inner.delete_to(persistence_id, to_sequence_nr)

    async def read_tag(self, tag: str, after_offset: int, limit: int) -> list[StoredEvent]:
        self._check()
        return await self.inner.read_tag(tag, after_offset, limit)

    async def save_snapshot(self, snapshot: StoredSnapshot) -> None:
        self._check()
        await self.inner.save_snapshot(snapshot)

    async def load_snapshots(
        self, persistence_id: str, criteria: SnapshotCriteria, limit: int
    ) -> list[StoredSnapshot]:
        self._check()
        return await self.inner.load_snapshots(persistence_id, criteria, limit)

    async def delete_snapshots(self, persistence_id: str, criteria: SnapshotCriteria) -> None:
        self._check()
        await self.inner.delete_snapshots(persistence_id, criteria)

    async def aclose(self) -> None:
        await self.inner.aclose()
