"""Quick start: one actor, one message type, fire-and-forget and request-reply.

Run it with ``python examples/quickstart.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import anyio

from cinema import Actor, ActorSystem, Context, Message, handler


@dataclass
class Greet(Message[str]):  # Message[R]: R is the reply type of send()
    name: str


class Greeter(Actor):
    @handler  # dispatch by the annotated type of the message parameter
    def greet(self, msg: Greet, ctx: Context[Self]) -> str:
        return f"Hello, {msg.name}!"


async def main() -> None:
    async with ActorSystem() as system:  # leaving the block stops every actor, cleanly
        addr = system.spawn(Greeter())  # Addr[Greeter]; returns at once
        addr.do_send(Greet("World"))  # fire and forget, never blocks
        reply = await addr.send(Greet("Cinema"))  # mypy knows reply: str
        print(reply)


if __name__ == "__main__":
    anyio.run(main)
