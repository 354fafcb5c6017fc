"""Run by the crash tests: persist atomic batches forever, printing each acknowledged highest
sequence number (flushed), until killed.

Usage: ``python tests/persistence/crash_writer.py URL PERSISTENCE_ID BATCH_SIZE``
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import anyio

from cinema import ActorSystem, Context, Message, handler
from cinema.persistence import PersistentActor, open_journal, use_journal

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.persistence.protos.persistence_test_pb2 import Note

#: A payload big enough that a batch takes a while to write (the kill lands mid-batch often).
PAYLOAD = "x" * 2000


@dataclass(frozen=True)
class Batch(Message[int]):
    size: int


class Writer(PersistentActor[Note]):
    def __init__(self, pid: str) -> None:
        self.persistence_id = pid

    def apply(self, event: Note) -> None:
        pass

    @handler
    async def batch(self, msg: Batch, ctx: Context[Self]) -> int:
        first = self.last_sequence_nr + 1
        await self.persist_all(Note(text=f"{first + i}:{PAYLOAD}") for i in range(msg.size))
        return self.last_sequence_nr


async def main(url: str, pid: str, size: int) -> None:
    async with open_journal(url) as journal, ActorSystem() as system:
        use_journal(system, journal)
        writer = system.spawn(Writer(pid))
        while True:
            print(await writer.send(Batch(size)), flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
