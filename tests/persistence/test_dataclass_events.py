"""Plain dataclass events and snapshots (no ``Message``, nested fields) persist and recover
through cinema-remote's msgspec serializer; the stored rows name it and the type."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import pytest

from cinema import ActorSystem, Context, Message, handler
from cinema.persistence import Journal, PersistentActor, open_journal, use_journal
from cinema.remote import MsgspecSerializer

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Money:
    currency: str
    cents: int


@dataclass(frozen=True)
class Line:
    memo: str
    amount: Money
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Booked:
    """An event: nested dataclasses, a list of them, an optional one."""

    lines: list[Line]
    by: str
    refund_of: Line | None = None


@dataclass(frozen=True)
class Renamed:
    name: str


@dataclass
class LedgerState:
    """The snapshot: a dict of nested values."""

    name: str
    balances: dict[str, int] = field(default_factory=dict)
    history: list[Line] = field(default_factory=list)


@dataclass(frozen=True)
class Book(Message[int]):
    lines: tuple[Line, ...]
    refund_of: Line | None = None


@dataclass(frozen=True)
class Rename(Message[None]):
    name: str


@dataclass(frozen=True)
class Show(Message[LedgerState]):
    pass


class Ledger(PersistentActor[Booked | Renamed]):
    def __init__(self, pid: str) -> None:
        self.persistence_id = pid
        self.state = LedgerState(name="")
        self.events: list[Booked | Renamed] = []

    def apply(self, event: Booked | Renamed) -> None:
        self.events.append(event)
        if isinstance(event, Renamed):
            self.state.name = event.name
            return
        for line in event.lines:
            cur = line.amount.currency
            self.state.balances[cur] = self.state.balances.get(cur, 0) + line.amount.cents
            self.state.history.append(line)

    def snapshot_state(self) -> LedgerState:
        return self.state

    def restore(self, state: LedgerState) -> None:
        self.state = state

    @handler
    async def book(self, msg: Book, ctx: Context[Self]) -> int:
        await self.persist(Booked(lines=list(msg.lines), by="teller", refund_of=msg.refund_of))
        return len(self.state.history)

    @handler
    async def rename(self, msg: Rename, ctx: Context[Self]) -> None:
        await self.persist_all([Renamed(name="tmp"), Renamed(name=msg.name)])
        await self.save_snapshot()

    @handler
    def show(self, msg: Show, ctx: Context[Self]) -> LedgerState:
        return self.state


EUR = Line("coffee", Money("EUR", 350), ("food", "daily"))
USD = Line("book", Money("USD", 1999))


@pytest.fixture(params=["memory", "sqlite"])
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Journal]:
    url = (
        f"memory://{uuid.uuid4().hex}"
        if request.param == "memory"
        else f"sqlite:///{tmp_path}/journal.db?synchronous=normal"
    )
    async with open_journal(url) as journal:
        yield journal


async def test_dataclass_events_recover_with_their_nested_fields(journal: Journal) -> None:
    pid = f"ledger-{uuid.uuid4().hex}"
    async with ActorSystem() as system:
        use_journal(system, journal)
        addr = system.spawn(Ledger(pid))
        assert await addr.send(Book((EUR, USD))) == 2
        assert await addr.send(Book((EUR,), refund_of=USD)) == 3
        addr.stop()
    async with ActorSystem() as system:
        use_journal(system, journal)
        again = Ledger(pid)
        addr = system.spawn(again)
        state = await addr.send(Show())
        assert state == LedgerState("", {"EUR": 700, "USD": 1999}, [EUR, USD, EUR])
        assert again.events == [
            Booked(lines=[EUR, USD], by="teller"),
            Booked(lines=[EUR], by="teller", refund_of=USD),
        ]
        # Real classes came back, not dicts or tuples: the nested values are typed.
        booked = again.events[1]
        assert isinstance(booked, Booked)
        assert type(booked.lines[0].amount) is Money
        assert type(booked.refund_of) is Line
        assert booked.lines[0].labels == ("food", "daily")


async def test_stored_rows_name_the_msgspec_serializer_and_the_type(journal: Journal) -> None:
    pid = f"ledger-{uuid.uuid4().hex}"
    async with ActorSystem() as system:
        use_journal(system, journal)
        addr = system.spawn(Ledger(pid))
        await addr.send(Book((USD,)))
        await addr.send(Rename("savings"))
    rows = [row async for row in journal.rows(pid)]
    assert [(r.sequence_nr, r.serializer, r.type_name) for r in rows] == [
        (1, "msgspec", "Booked"),
        (2, "msgspec", "Renamed"),
        (3, "msgspec", "Renamed"),
    ]
    # The payload is the serializer's own encoding of the event (MessagePack).
    assert rows[0].payload == MsgspecSerializer().encode(Booked(lines=[USD], by="teller"))
    assert journal.decode(rows[2]) == Renamed(name="savings")
    [snapshot] = await journal.snapshots(pid)
    assert (snapshot.sequence_nr, snapshot.serializer, snapshot.type_name) == (
        3,
        "msgspec",
        "LedgerState",
    )


async def test_recovery_from_a_dataclass_snapshot_then_later_events(journal: Journal) -> None:
    pid = f"ledger-{uuid.uuid4().hex}"
    async with ActorSystem() as system:
        use_journal(system, journal)
        addr = system.spawn(Ledger(pid))
        await addr.send(Book((EUR,)))
        await addr.send(Rename("main"))  # events 2, 3 and a snapshot at 3
        await addr.send(Book((USD,)))
        addr.stop()
    async with ActorSystem() as system:
        use_journal(system, journal)
        again = Ledger(pid)
        addr = system.spawn(again)
        assert await addr.send(Show()) == LedgerState("main", {"EUR": 350, "USD": 1999}, [EUR, USD])
        # Only the event after the snapshot was replayed.
        assert again.events == [Booked(lines=[USD], by="teller")]
        assert again.last_sequence_nr == 4
