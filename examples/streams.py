"""Streams: an actor consumes async iterables attached with ``ctx.add_stream``.

Items go to the actor's ``StreamHandler.handle`` one at a time, in order, interleaved with its
messages but never concurrently with a handler; ``finished`` runs when a stream ends by itself.
The stream is pulled only as fast as the actor handles items, so a producer writing into a
zero-capacity memory stream is held back by the consumer (no unbounded buffering).

Run it with ``python examples/streams.py`` (add ``trio`` to run on trio).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Self

import anyio
import anyio.lowlevel

from cinema import Actor, ActorSystem, Context, Message, StreamHandler, handler


@dataclass
class GetTotal(Message[int]):
    pass


class Summer(Actor, StreamHandler[int]):
    """Sums the numbers of its streams; answers GetTotal at any time."""

    def __init__(self, numbers: AsyncIterable[int], done: anyio.Event) -> None:
        self.numbers, self.done = numbers, done
        self.total = self.items = 0

    def started(self, ctx: Context[Self]) -> None:
        ctx.add_stream(self.numbers)

    def handle(self, item: int, ctx: Context[Self]) -> None:  # one item at a time, in order
        self.total += item
        self.items += 1

    def finished(self, ctx: Context[Self]) -> None:  # the stream ended by itself
        print(f"   finished: {self.items} items, total {self.total}")
        self.done.set()

    @handler
    def get_total(self, msg: GetTotal, ctx: Context[Self]) -> int:
        return self.total


async def countdown(start: int) -> AsyncIterator[int]:
    """An async generator is a stream too."""
    for n in range(start, 0, -1):
        await anyio.lowlevel.checkpoint()  # a real source would await I/O here
        yield n


async def main() -> None:
    async with ActorSystem() as system:
        print("1. a memory object stream fed by a producer task")
        send, receive = anyio.create_memory_object_stream[int](0)  # no buffer at all
        done = anyio.Event()
        with receive:
            summer = system.spawn(Summer(receive, done))
            async with send:
                for n in range(1, 101):
                    await send.send(n)  # returns once the actor has pulled the item
                    if n == 50:
                        # Messages interleave with stream items (never run concurrently).
                        print("   mid-stream GetTotal ->", await summer.send(GetTotal()))
            # Closing the send side ends the stream: finished() runs.
            await done.wait()
            print("   total:", await summer.send(GetTotal()))

        print("2. an async generator")
        done = anyio.Event()
        other = system.spawn(Summer(countdown(10), done))
        await done.wait()
        print("   total:", await other.send(GetTotal()))


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
