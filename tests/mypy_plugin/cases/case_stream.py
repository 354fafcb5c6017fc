"""Context[A].add_stream: A must be a StreamHandler[T] and the stream yield Ts."""

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, Self

from cinema import Actor, Context, StreamHandler


async def numbers() -> AsyncIterator[int]:
    yield 1


async def words() -> AsyncIterator[str]:
    yield "a"


class Summer(Actor, StreamHandler[int]):
    def started(self, ctx: Context[Self]) -> None:
        ctx.add_stream(numbers())
        ctx.add_stream(words())  # E: Actor "Summer" handles stream items of type "int", not the items of "AsyncIterator[str]"  [cinema-unhandled]

    def handle(self, item: int, ctx: Context[Any]) -> None:
        pass


class Anything(Actor, StreamHandler[object]):
    def started(self, ctx: Context[Self]) -> None:
        ctx.add_stream(numbers())
        ctx.add_stream(words())

    def handle(self, item: object, ctx: Context[Any]) -> None:
        pass


class NotAStreamHandler(Actor):
    def started(self, ctx: Context[Self]) -> None:
        ctx.add_stream(numbers())  # E: Actor "NotAStreamHandler" is not a StreamHandler: it cannot take streams  [cinema-unhandled]


def from_outside(summer: Context[Summer], anything: Context[Any], s: AsyncIterable[Any]) -> None:
    summer.add_stream(s)
    anything.add_stream(words())
    summer.add_stream(words())  # E: Actor "Summer" handles stream items of type "int", not the items of "AsyncIterator[str]"  [cinema-unhandled]
