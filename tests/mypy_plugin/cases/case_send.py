"""Addr.send and Addr.do_send: the message must have a handler on the target actor."""

from dataclasses import dataclass
from typing import Any, Self, TypeVar

from cinema import Actor, Addr, Context, Message, handler


@dataclass
class Greet(Message[str]):
    name: str


class LoudGreet(Greet):
    """A subclass of a handled message: the handler for Greet serves it."""


class Farewell(Message[None]):
    pass


class Ping(Message[int]):
    pass


class Greeter(Actor):
    @handler
    def greet(self, msg: Greet, ctx: Context[Self]) -> str:
        return f"Hello, {msg.name}!"


class PingGreeter(Greeter):
    """Inherits greet; adds an async handler for a union of messages."""

    @handler
    async def ping(self, msg: Ping | Farewell, ctx: Context[Self]) -> int:
        return 1


class Counter(Actor):
    @handler
    def count(self, msg: int, ctx: Context[Self]) -> None:  # a message need not be a Message
        pass


class Lenient(Actor):
    @handler
    def anything(self, msg: Any, ctx: Context[Self]) -> None:  # E: The message annotation of handler "Lenient.anything" must be a class or a union of classes, not "Any" (annotate object to take every message)  [cinema-handler]
        pass


A = TypeVar("A", bound=Actor)
M = TypeVar("M")


async def sends(greeter: Addr[Greeter], pinger: Addr[PingGreeter], counter: Addr[Counter]) -> None:
    greeter.do_send(Greet("a"))
    greeter.do_send(LoudGreet("b"))
    greeter.do_send(Farewell())  # E: Actor "Greeter" has no handler for message type "Farewell"  [cinema-unhandled]
    reply: str = await greeter.send(Greet("c"))
    await greeter.send(Ping(), timeout=1.0)  # E: Actor "Greeter" has no handler for message type "Ping"  [cinema-unhandled]
    pinger.do_send(Greet("d"))
    pinger.do_send(Farewell())
    number: int = await pinger.send(Ping())
    counter.do_send(3)
    counter.do_send(True)
    counter.do_send(reply)  # E: Actor "Counter" has no handler for message type "str"  [cinema-unhandled]
    counter.do_send(None)  # E: Actor "Counter" has no handler for message type "None"  [cinema-unhandled]
    counter.do_send(number)


def unions(
    greeter: Addr[Greeter], pinger: Addr[PingGreeter], msg: Greet | Farewell, other: Ping | Farewell
) -> None:
    pinger.do_send(msg)
    pinger.do_send(other)
    greeter.do_send(msg)  # E: Actor "Greeter" has no handler for message type "Farewell"  [cinema-unhandled]
    greeter.do_send(other)  # E: Actor "Greeter" has no handler for message type "Ping"  [cinema-unhandled]  # E: Actor "Greeter" has no handler for message type "Farewell"  [cinema-unhandled]


def union_of_addresses(
    either: Addr[Greeter] | Addr[Counter], both: Addr[Greeter | Counter]
) -> None:
    either.do_send(3)  # E: Actor "Greeter" has no handler for message type "int"  [cinema-unhandled]
    both.do_send(Greet("e"))  # E: Actor "Counter" has no handler for message type "Greet"  [cinema-unhandled]


def nothing_known(
    anyaddr: Addr[Any], lenient: Addr[Lenient], a: Addr[A], m: M, greeter: Addr[Greeter], x: Any
) -> None:
    anyaddr.do_send(Farewell())
    lenient.do_send(Farewell())
    a.do_send(Farewell())
    greeter.do_send(m)
    greeter.do_send(x)


def mixed(greeter: Addr[Greeter], counter: Addr[Counter]) -> None:
    addrs = [greeter, counter]
    # Addr is covariant, so the list is a list of Addr[Actor]: nothing is known of its actors.
    typed: list[Addr[Actor]] = addrs
    for addr in typed:
        addr.do_send(Farewell())


def suppressed(greeter: Addr[Greeter]) -> None:
    greeter.do_send(Farewell())  # type: ignore[cinema-unhandled]
