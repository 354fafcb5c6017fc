"""Unusual message and actor types: exact answers where they are known, and never a crash."""

from collections.abc import Callable
from enum import Enum
from typing import Generic, Literal, NewType, ParamSpec, Self, SupportsInt, TypeVarTuple

from cinema import Actor, Addr, Context, handler

Ts = TypeVarTuple("Ts")
P = ParamSpec("P")
UserId = NewType("UserId", int)


class Color(Enum):
    RED = 1
    BLUE = 2


class Everything(Actor):
    @handler
    def anything(self, msg: object, ctx: Context[Self]) -> None:
        pass


class Odd(Actor):
    @handler
    def numberish(self, msg: SupportsInt, ctx: Context[Self]) -> None:  # a protocol
        pass

    @handler
    def user(self, msg: UserId | None, ctx: Context[Self]) -> None:  # E: The message annotation of handler "Odd.user" must be a class or a union of classes, not "UserId"  [cinema-handler]
        pass

    @handler
    def color(self, msg: Literal[Color.RED], ctx: Context[Self]) -> None:  # E: The message annotation of handler "Odd.color" must be a class or a union of classes, not "Literal[Color.RED]"  [cinema-handler]
        pass

    @handler
    def command(self, msg: Literal["stop"], ctx: Context[Self]) -> None:  # E: The message annotation of handler "Odd.command" must be a class or a union of classes, not "Literal['stop']"  [cinema-handler]
        pass

    @handler
    def callback(self, msg: Callable[[], None], ctx: Context[Self]) -> None:
        pass


class Multi(Actor, Generic[*Ts]):
    @handler
    def row(self, msg: tuple[*Ts], ctx: Context[Self]) -> None:
        pass


class Calls(Actor, Generic[P]):
    @handler
    def call(self, msg: Callable[P, int], ctx: Context[Self]) -> None:
        pass


def callback() -> None:
    pass


def length(text: str) -> int:
    return len(text)


def odd(everything: Addr[Everything], addr: Addr[Odd]) -> None:
    everything.do_send(b"bytes")
    everything.do_send(None)
    addr.do_send(2.5)
    addr.do_send(None)
    addr.do_send(UserId(7))
    addr.do_send(Color.RED)
    addr.do_send(Color.BLUE)  # E: Actor "Odd" has no handler for message type "Color"  [cinema-unhandled]
    addr.do_send("stop")
    addr.do_send("go")  # E: Actor "Odd" has no handler for message type "str"  [cinema-unhandled]
    addr.do_send(callback)
    addr.do_send(length)  # E: Actor "Odd" has no handler for message type "Callable[[str], int]"  [cinema-unhandled]
    addr.do_send(b"x")  # E: Actor "Odd" has no handler for message type "bytes"  [cinema-unhandled]


def variadic(multi: Addr[Multi[int, str]], calls: Addr[Calls[[str]]]) -> None:
    multi.do_send((1, "a"))
    multi.do_send((1, 2))  # E: Actor "Multi[int, str]" has no handler for message type "tuple[int, int]"  [cinema-unhandled]
    calls.do_send(length)
    calls.do_send(callback)  # E: Actor "Calls[[str]]" has no handler for message type "Callable[[], None]"  [cinema-unhandled]
