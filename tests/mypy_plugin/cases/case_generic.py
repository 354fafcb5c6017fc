"""Generic actors and generic messages: type arguments flow into the handlers' signatures."""

from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

from cinema import Actor, Addr, Context, Message, StreamHandler, handler

T = TypeVar("T")
S = TypeVar("S")
M = TypeVar("M", bound=Message[Any])


@dataclass
class Put(Message[None], Generic[T]):
    item: T


class Get(Message[T], Generic[T]):
    pass


class Box(Actor, Generic[T]):
    def __init__(self, item: T) -> None:
        self.item = item

    @handler
    def put(self, msg: Put[T], ctx: Context[Self]) -> None:
        self.item = msg.item

    @handler
    async def get(self, msg: Get[T], ctx: Context[Self]) -> T:
        return self.item


class IntBox(Box[int]):
    pass


class Relay(Actor, Generic[M]):
    """The handled type is the actor's type parameter itself (the runtime refuses it: it
    dispatches on classes)."""

    @handler
    def relay(self, msg: M, ctx: Context[Self]) -> None:  # E: The message annotation of handler "Relay.relay" must be a class or a union of classes, not "M"  [cinema-handler]
        pass


class Ping(Message[int]):
    pass


class Lists(Actor):
    @handler
    def lists(self, msg: list[S], ctx: Context[Self]) -> None:  # a generic handler method
        pass


class Reset(Message[None]):
    pass


class Summer(Actor, StreamHandler[int]):
    """Stream items arrive through handle(), which is not a message handler."""

    def handle(self, item: int, ctx: Context[Any]) -> None:
        pass

    @handler
    def reset(self, msg: Reset, ctx: Context[Self]) -> None:
        pass


async def generic(
    box: Addr[Box[int]],
    intbox: Addr[IntBox],
    anybox: Addr[Box[Any]],
    relay: Addr[Relay[Ping]],
    lists: Addr[Lists],
) -> None:
    box.do_send(Put(1))
    box.do_send(Put("x"))  # E: Actor "Box[int]" has no handler for message type "Put[str]"  [cinema-unhandled]
    value: int = await box.send(Get[int]())
    await box.send(Get[str]())  # E: Actor "Box[int]" has no handler for message type "Get[str]"  [cinema-unhandled]
    intbox.do_send(Put(value))
    intbox.do_send(Put("y"))  # E: Actor "IntBox" has no handler for message type "Put[str]"  [cinema-unhandled]
    anybox.do_send(Put("z"))
    relay.do_send(Ping())
    relay.do_send(Put(1))  # E: Actor "Relay[Ping]" has no handler for message type "Put[int]"  [cinema-unhandled]
    lists.do_send([1, 2])
    lists.do_send(["a"])
    lists.do_send((1, 2))  # E: Actor "Lists" has no handler for message type "tuple[int, int]"  [cinema-unhandled]


def streams(summer: Addr[Summer]) -> None:
    summer.do_send(Reset())
    summer.do_send(5)  # E: Actor "Summer" has no handler for message type "int"  [cinema-unhandled]
