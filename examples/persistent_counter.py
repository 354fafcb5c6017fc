"""A persistent counter: its total survives the process being killed.

Usage (the journal is a URL: ``sqlite:///counter.db``, ``postgresql://user@host/db``)::

    python examples/persistent_counter.py --journal sqlite:///counter.db add 5
    python examples/persistent_counter.py --journal sqlite:///counter.db get

``add N`` adds 1 to the counter N times, awaiting each persist, and prints each acknowledged
total on its own line (flushed). ``get`` prints the current total. Kill ``add`` with SIGKILL at
any moment: the next ``get`` prints the last total it printed, or one more (an event that was
durable before its total could be printed). Add ``--backend trio`` to run on trio.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Self

import anyio

from cinema import ActorSystem, Context, Message, handler
from cinema.persistence import PersistentActor, open_journal, use_journal

# The generated event classes are imported by their repository path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from examples.persistence.events_pb2 import CounterState, Incremented


class Increment(Message[int]):
    """Add one; replies with the new total once the event is durable."""

    __slots__ = ()


class Total(Message[int]):
    __slots__ = ()


class Counter(PersistentActor[Incremented]):
    persistence_id = "counter"
    snapshot_every = 1000  # recovery replays at most 1000 events after the newest snapshot

    def __init__(self) -> None:
        self.total = 0

    def apply(self, event: Incremented) -> None:
        self.total += event.by

    def snapshot_state(self) -> CounterState:
        return CounterState(total=self.total)

    def restore(self, state: CounterState) -> None:
        self.total = state.total

    @handler
    async def increment(self, msg: Increment, ctx: Context[Self]) -> int:
        await self.persist(Incremented(by=1))  # returns once durable and applied
        return self.total

    @handler
    def get(self, msg: Total, ctx: Context[Self]) -> int:
        return self.total


async def main(url: str, command: str, count: int) -> None:
    async with open_journal(url) as journal, ActorSystem() as system:
        use_journal(system, journal)
        counter = system.spawn(Counter())
        if command == "get":
            print(await counter.send(Total()), flush=True)
            return
        for _ in range(count):
            print(await counter.send(Increment()), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--journal", required=True, help="journal URL, e.g. sqlite:///c.db")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add 1, N times, printing each acknowledged total")
    add.add_argument("n", type=int)
    commands.add_parser("get", help="print the current total")
    args = parser.parse_args()
    anyio.run(main, args.journal, args.command, getattr(args, "n", 0), backend=args.backend)
