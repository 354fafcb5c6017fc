"""PersistentActor on every journal: recovery, stash, restarts, single writer, snapshots,
queries, typed errors for bad data and outages."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import anyio
import anyio.lowlevel
import pytest

from cinema import Actor, ActorSystem, Context, Message, StreamHandler, SupervisorStrategy, handler
from cinema.persistence import (
    CircuitBreaker,
    CircuitOpen,
    EventDecodeError,
    EventEnvelope,
    Journal,
    JournalUnavailable,
    PersistenceError,
    SequenceConflict,
    SequenceGap,
    StoredEvent,
    UnserializableEvent,
    open_journal,
    use_journal,
)
from cinema.remote import ProtobufSerializer
from cinema.testing import wait_stopped
from tests.persistence.protos.persistence_test_pb2 import Added
from tests.persistence.support import Add, AddMany, Counter, Get, ProbeStore, Write

pytestmark = pytest.mark.anyio

ADDED = ProtobufSerializer().type_name(Added)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return f"memory://{uuid.uuid4().hex}"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/journal.db?synchronous=normal"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def journal(url: str) -> AsyncIterator[Journal]:
    async with open_journal(url) as journal:
        yield journal


def _pid() -> str:
    return f"counter-{uuid.uuid4().hex}"


def _failures(caplog: pytest.LogCaptureFixture) -> list[BaseException]:
    return [r.exc_info[1] for r in caplog.records if r.exc_info and r.exc_info[1] is not None]


async def test_state_survives_a_new_instance(journal: Journal) -> None:
    pid = _pid()
    async with ActorSystem() as system:
        use_journal(system, journal)
        first = system.spawn(Counter(pid))
        assert [await first.send(Add(n)) for n in (1, 2, 3)] == [1, 3, 6]
        assert await first.send(AddMany((10, 20))) == 36
        first.stop()
    async with ActorSystem() as system:
        use_journal(system, journal)
        again = Counter(pid)
        addr = system.spawn(again)
        assert await addr.send(Get()) == 36
        assert again.last_sequence_nr == 5
        assert again.log == ["recovered 36"]
        assert await addr.send(Add(4)) == 40


async def test_messages_wait_in_order_during_recovery(url: str) -> None:
    pid = _pid()
    async with open_journal(url) as journal:
        await journal.append(pid, 1, [Added(n=5)])
        probe = ProbeStore(journal.store)
        probe.hold_reads = anyio.Event()
        slow = Journal(probe)
        async with ActorSystem() as system:
            counter = Counter(pid)
            counter.journal = slow
            addr = system.spawn(counter)
            results: list[int] = []

            async def send(n: int) -> None:
                results.append(await addr.send(Add(n)))

            async with anyio.create_task_group() as tg:
                for n in (1, 2, 3):
                    tg.start_soon(send, n)
                    await anyio.lowlevel.checkpoint()
                await probe.reading.wait()  # recovery is reading; the messages are queued
                assert counter.log == []
                probe.hold_reads.set()
            assert counter.log == ["recovered 5", "add 1", "add 2", "add 3"]
            assert sorted(results) == [6, 8, 11]


async def test_a_supervisor_restart_recovers_from_the_journal(journal: Journal) -> None:
    pid = _pid()
    instances: list[Counter] = []

    def make() -> Counter:
        instances.append(Counter(pid))
        return instances[-1]

    async with ActorSystem() as system:
        use_journal(system, journal)
        addr = system.spawn_with_strategy(make, SupervisorStrategy.restart(3, 60))
        assert await addr.send(Add(7)) == 7
        with pytest.raises(Exception):  # noqa: B017, PT011  # protobuf refuses a str int
            await addr.send(Add("x"))  # type: ignore[arg-type]
        assert await addr.send(Get()) == 7
        assert len(instances) == 2
        assert instances[1].log == ["recovered 7"]


async def test_a_second_live_writer_gets_a_sequence_conflict(journal: Journal) -> None:
    pid = _pid()
    async with ActorSystem() as system:
        use_journal(system, journal)
        one, two = Counter(pid), Counter(pid)
        a, b = system.spawn(one), system.spawn(two)
        assert await a.send(Get()) == await b.send(Get()) == 0
        assert await a.send(Add(1)) == 1
        with pytest.raises(Exception) as info:  # noqa: PT011  # ActorFailed from the handler
            await b.send(Add(100))
        assert isinstance(info.value.__cause__, SequenceConflict)
        assert info.value.__cause__.persistence_id == pid
        assert await a.send(Add(1)) == 2
    rows = [row async for row in journal.rows(pid)]
    assert [journal.decode(r).n for r in rows] == [1, 1]


async def test_the_failed_writer_refuses_to_persist_on_stale_state() -> None:
    pid = _pid()
    async with open_journal("memory://") as journal, ActorSystem() as system:
        use_journal(system, journal)
        one, two = Counter(pid), Counter(pid)
        a, b = system.spawn(one), system.spawn(two)
        await a.send(Get())
        await b.send(Get())
        await a.send(Add(1))
        with pytest.raises(SequenceConflict):
            await two.persist(Added(n=5))
        with pytest.raises(PersistenceError, match="earlier write failed"):
            await two.persist(Added(n=5))


async def test_persist_all_is_atomic_and_rejects_unserializable_events(
    journal: Journal,
) -> None:
    pid = _pid()
    async with ActorSystem() as system:
        use_journal(system, journal)
        counter = Counter(pid)
        assert await system.spawn(counter).send(Get()) == 0
        with pytest.raises(UnserializableEvent, match="no installed serializer handles"):
            await counter.persist_all([Added(n=1), object()])  # type: ignore[list-item]
        assert counter.total == 0
        assert await journal.highest_sequence_nr(pid) == 0
        await counter.persist_all([Added(n=1), Added(n=2)])
        assert counter.total == 3


async def test_an_undecodable_event_fails_recovery_naming_it(
    journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    pid = _pid()
    await journal.append(pid, 1, [Added(n=1)])
    await journal.store.write([[StoredEvent(pid, 2, "protobuf", ADDED, b"\xff\xff\xff")]])
    async with ActorSystem() as system:
        use_journal(system, journal)
        counter = Counter(pid)
        addr = system.spawn(counter)
        with caplog.at_level(logging.ERROR, logger="cinema.crash"):
            await wait_stopped(system, addr)
    (error,) = [e for e in _failures(caplog) if isinstance(e, EventDecodeError)]
    assert (error.persistence_id, error.sequence_nr) == (pid, 2)
    assert counter.log == []  # never ran on the half-recovered state


async def test_an_unknown_type_or_serializer_fails_recovery(
    journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    pid = _pid()
    await journal.store.write([[StoredEvent(pid, 1, "protobuf", "no.such.Type", b"")]])
    await journal.store.write([[StoredEvent(pid, 2, "no-such-serializer", ADDED, b"")]])
    async with ActorSystem() as system:
        use_journal(system, journal)
        addr = system.spawn(Counter(pid))
        with caplog.at_level(logging.ERROR, logger="cinema.crash"):
            await wait_stopped(system, addr)
    (error,) = [e for e in _failures(caplog) if isinstance(e, EventDecodeError)]
    assert error.sequence_nr == 1
    assert "no.such.Type" in str(error)
    with pytest.raises(EventDecodeError, match="no-such-serializer"):
        [e async for e in journal.events_by_persistence_id(pid, 2)]


async def test_a_gap_in_sequence_numbers_fails_recovery(
    journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    pid = _pid()
    await journal.append(pid, 1, [Added(n=1), Added(n=2)])
    await journal.append(pid, 4, [Added(n=4)])
    async with ActorSystem() as system:
        use_journal(system, journal)
        addr = system.spawn(Counter(pid))
        with caplog.at_level(logging.ERROR, logger="cinema.crash"):
            await wait_stopped(system, addr)
    (error,) = [e for e in _failures(caplog) if isinstance(e, SequenceGap)]
    assert (error.persistence_id, error.sequence_nr) == (pid, 3)


async def test_snapshots_bound_the_replay_and_old_ones_are_pruned(journal: Journal) -> None:
    pid = _pid()
    async with ActorSystem() as system:
        use_journal(system, journal)
        addr = system.spawn(Counter(pid, snapshot_every=10))
        for _ in range(35):
            await addr.send(Add(1))
    assert [s.sequence_nr for s in await journal.snapshots(pid)] == [30, 20]
    async with ActorSystem() as system:
        use_journal(system, journal)
        again = Counter(pid)
        assert await system.spawn(again).send(Get()) == 35
        assert (again.restored, again.applied) == (30, 5)


async def test_automatic_snapshots_and_deleting_events(journal: Journal) -> None:
    class Auto(Counter):
        snapshot_every = 4
        keep_snapshots = 1

    pid = _pid()
    async with ActorSystem() as system:
        use_journal(system, journal)
        auto = Auto(pid)
        addr = system.spawn(auto)
        for _ in range(9):
            await addr.send(Add(2))
        await auto.delete_events(8)
    assert [s.sequence_nr for s in await journal.snapshots(pid)] == [8]
    assert [r.sequence_nr async for r in journal.rows(pid)] == [9]
    async with ActorSystem() as system:
        use_journal(system, journal)
        again = Auto(pid)
        assert await system.spawn(again).send(Get()) == 18
        assert again.last_sequence_nr == 9


async def test_an_undecodable_snapshot_falls_back_to_a_full_replay(journal: Journal) -> None:
    pid = _pid()
    async with ActorSystem() as system:
        use_journal(system, journal)
        addr = system.spawn(Counter(pid, snapshot_every=3))
        for _ in range(4):
            await addr.send(Add(1))
    (snapshot,) = await journal.snapshots(pid)
    from dataclasses import replace

    await journal.store.save_snapshot(replace(snapshot, payload=b"\xff\xff"))
    async with ActorSystem() as system:
        use_journal(system, journal)
        again = Counter(pid)
        assert await system.spawn(again).send(Get()) == 4
        assert (again.restored, again.applied) == (None, 4)


@dataclass(frozen=True)
class Follow(Message[None]):
    """Attach this query to the reader (``ctx.add_stream``)."""

    query: AsyncIterator[EventEnvelope[Any]]


class Reader(Actor, StreamHandler[EventEnvelope[Any]]):
    """Collects the envelopes of attached queries until it has ``want`` of them."""

    def __init__(self, want: int) -> None:
        self.got: list[EventEnvelope[Any]] = []
        self.want = want
        self.done = anyio.Event()

    @handler
    def follow(self, msg: Follow, ctx: Context[Self]) -> None:
        ctx.add_stream(msg.query)

    def handle(self, item: EventEnvelope[Any], ctx: Context[Any]) -> None:
        self.got.append(item)
        if len(self.got) == self.want:
            self.done.set()


async def test_live_queries_by_tag_and_by_id_feed_add_stream(journal: Journal) -> None:
    tag = f"tag-{uuid.uuid4().hex}"
    pid = _pid()
    async with ActorSystem() as system:
        use_journal(system, journal)
        writer = system.spawn(Counter(pid))
        await writer.send(Write("before", (tag,)))
        await writer.send(Write("untagged"))
        by_tag, by_id = Reader(3), Reader(3)
        await system.spawn(by_tag).send(Follow(journal.events_by_tag(tag)))
        await system.spawn(by_id).send(Follow(journal.events_by_persistence_id(pid, 2, live=True)))
        await writer.send(Write("live 1", (tag,)))
        await writer.send(Write("live 2", (tag, "other")))
        await by_tag.done.wait()
        await by_id.done.wait()
    assert [e.event.text for e in by_tag.got] == ["before", "live 1", "live 2"]
    assert all(e.persistence_id == pid and tag in e.tags for e in by_tag.got)
    offsets = [e.offset for e in by_tag.got]
    assert offsets == sorted(offsets)
    assert [(e.sequence_nr, e.event.text) for e in by_id.got] == [
        (2, "untagged"),
        (3, "live 1"),
        (4, "live 2"),
    ]
    resumed = journal.events_by_tag(tag, offsets[1], live=False)
    assert [e.event.text async for e in resumed] == ["live 2"]
    current = journal.events_by_persistence_id(pid)
    assert [e.sequence_nr async for e in current] == [1, 2, 3, 4]


async def test_open_journal_errors() -> None:
    with pytest.raises(ValueError, match="journal URL looks like"):
        async with open_journal("no-scheme"):
            pass
    from cinema import PluginNotFound

    with pytest.raises(PluginNotFound, match="no Cinema journal for scheme 'nosuch'"):
        async with open_journal("nosuch://x"):
            pass
    with pytest.raises(ValueError, match="unknown SQLite journal options"):
        async with open_journal("sqlite:///x.db?bogus=1"):
            pass
    with pytest.raises(JournalUnavailable, match="PostgreSQL"):
        # Port 1 on loopback: nothing listens there.
        async with open_journal("postgresql://cinema@127.0.0.1:1/postgres?connect_timeout=2"):
            pass


async def test_a_store_that_is_down_raises_and_the_breaker_stops_calling_it() -> None:
    pid = _pid()
    async with open_journal("memory://") as base:
        probe = ProbeStore(base.store)
        journal = Journal(probe, breaker=CircuitBreaker(max_failures=2, reset_timeout=0.2))
        await journal.append(pid, 1, [Added(n=1)])
        probe.down = True
        for _ in range(2):
            with pytest.raises(JournalUnavailable, match="probe store is down"):
                await journal.append(pid, 2, [Added(n=2)])
        calls = probe.calls
        with pytest.raises(CircuitOpen):
            await journal.append(pid, 2, [Added(n=2)])
        with pytest.raises(CircuitOpen):
            await journal.highest_sequence_nr(pid)
        assert probe.calls == calls  # not hammered
        probe.down = False
        await anyio.sleep(0.2)  # the reset timeout (anyio's clock is monotonic)
        assert journal.breaker.state == "half-open"
        await journal.append(pid, 2, [Added(n=2)])  # the trial call closes it
        assert journal.breaker.state == "closed"
        assert await journal.highest_sequence_nr(pid) == 2


async def test_concurrent_writers_share_transactions() -> None:
    async with open_journal("memory://") as base:
        probe = ProbeStore(base.store)
        journal = Journal(probe)
        pids = [_pid() for _ in range(50)]
        async with ActorSystem() as system:
            use_journal(system, journal)
            addrs = [system.spawn(Counter(pid)) for pid in pids]

            async def run(addr: Any) -> None:
                for n in range(4):
                    await addr.send(Add(n))

            async with anyio.create_task_group() as tg:
                for addr in addrs:
                    tg.start_soon(run, addr)
        assert probe.batches == 200
        assert probe.writes < 100  # 200 batches shared far fewer transactions
        for pid in pids:
            assert await journal.highest_sequence_nr(pid) == 4


async def test_an_actor_without_journal_or_id_fails_with_a_clear_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Counter(_pid()))
        with caplog.at_level(logging.ERROR, logger="cinema.crash"):
            await wait_stopped(system, addr)
    (error,) = [e for e in _failures(caplog) if isinstance(e, PersistenceError)]
    assert "use_journal" in str(error)


async def test_a_bad_row_in_sqlite_is_a_typed_error(tmp_path: Path) -> None:
    import sqlite3

    pid = _pid()
    url = f"sqlite:///{tmp_path}/bad.db"
    async with open_journal(url) as journal:
        await journal.append(pid, 1, [Added(n=1), Added(n=2)])
    # closing(): a sqlite3 connection's own context manager commits but does not close.
    with contextlib.closing(sqlite3.connect(tmp_path / "bad.db")) as conn, conn:
        conn.execute("UPDATE cinema_journal SET payload = 'text' WHERE sequence_nr = 2")
    async with open_journal(url) as journal:
        with pytest.raises(EventDecodeError) as info:
            [e async for e in journal.events_by_persistence_id(pid)]
        assert (info.value.persistence_id, info.value.sequence_nr) == (pid, 2)
        assert "not bytes" in str(info.value)


class Greeter(Counter):
    """Defines its own ``started``: recovery still runs first."""

    def started(self, ctx: Context[Self]) -> None:
        self.log.append(f"started with {self.total}")


async def test_an_own_started_hook_runs_after_recovery() -> None:
    pid = _pid()
    async with open_journal("memory://") as journal, ActorSystem() as system:
        use_journal(system, journal)
        await journal.append(pid, 1, [Added(n=4)])
        greeter = Greeter(pid)
        assert await system.spawn(greeter).send(Add(1)) == 5
        assert greeter.log == ["recovered 4", "started with 4", "add 1"]


# -- recovery over several pages (the next page is read while this one is applied) -----------

PAGE = 5000  # the journal's replay page


async def test_a_gap_on_a_later_page_fails_recovery(
    journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    pid = _pid()
    await journal.append(pid, 1, [Added(n=1)] * (PAGE + 1))
    await journal.append(pid, PAGE + 3, [Added(n=1)])
    async with ActorSystem() as system:
        use_journal(system, journal)
        addr = system.spawn(Counter(pid))
        with caplog.at_level(logging.ERROR, logger="cinema.crash"):
            await wait_stopped(system, addr)
    (error,) = [e for e in _failures(caplog) if isinstance(e, SequenceGap)]
    assert (error.persistence_id, error.sequence_nr) == (pid, PAGE + 2)


async def test_recovery_over_pages_applies_every_event_once(journal: Journal) -> None:
    pid = _pid()
    await journal.append(pid, 1, [Added(n=n) for n in range(1, 2 * PAGE + 2)])
    async with ActorSystem() as system:
        use_journal(system, journal)
        again = Counter(pid)
        assert await system.spawn(again).send(Get()) == sum(range(1, 2 * PAGE + 2))
        assert (again.applied, again.last_sequence_nr) == (2 * PAGE + 1, 2 * PAGE + 1)


class _FailingReplay(ProbeStore):
    """Its second replay read (the one read ahead) fails as a store outage."""

    replays = 0

    async def replay(
        self, persistence_id: str, from_sequence_nr: int, limit: int
    ) -> list[tuple[int, str, str, bytes]]:
        self.replays += 1
        if self.replays == 2:
            raise JournalUnavailable("the read-ahead failed")
        return await self.inner.replay(persistence_id, from_sequence_nr, limit)


async def test_a_failing_read_ahead_raises_the_store_error_after_the_page() -> None:
    pid = _pid()
    async with open_journal("memory://") as base:
        await base.append(pid, 1, [Added(n=1)] * (PAGE + 10))
        journal = Journal(_FailingReplay(base.store))
        consumed: list[int] = []
        with pytest.raises(JournalUnavailable, match="read-ahead failed"):
            await journal.replay(pid, 1, PAGE + 10, lambda page: consumed.append(len(page)))
        assert consumed == [PAGE]  # the page in hand was handed over, nothing after it


async def test_a_failing_consumer_waits_for_the_read_in_flight() -> None:
    pid = _pid()
    async with open_journal("memory://") as base:
        await base.append(pid, 1, [Added(n=1)] * (PAGE + 10))
        probe = _FailingReplay(base.store)
        probe.replays = -10  # no failure
        journal = Journal(probe)

        def consume(page: list[tuple[int, str, str, bytes]]) -> None:
            raise RuntimeError("bad page")

        with pytest.raises(RuntimeError, match="bad page"):
            await journal.replay(pid, 1, PAGE + 10, consume)
        assert probe.replays == -8  # the first read and the read ahead, which completed
