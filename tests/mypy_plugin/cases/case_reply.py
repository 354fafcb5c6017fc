"""The reply of send / send_from_thread for a message that is not a Message[R] (a protobuf
message, say): the return type of the handler for exactly that class, when the class is final."""

from typing import Any, Generic, Self, TypeVar, assert_type, final

from cinema import Actor, Addr, Context, Message, handler

T = TypeVar("T")


@final
class Query:
    """Like a mypy-protobuf class: final, and not a Message[R]."""


@final
class Other:
    pass


class Open:
    """Not final: a subclass of it might reach another handler."""


class Base:
    pass


@final
class Derived(Base):
    pass


class Store(Actor):
    @handler
    def query(self, msg: Query, ctx: Context[Self]) -> list[str]:
        return []

    @handler
    async def other(self, msg: Other | Open, ctx: Context[Self]) -> int:
        return 1

    @handler
    def base(self, msg: Base, ctx: Context[Self]) -> str:
        return ""


class Cache(Actor):
    @handler
    def query(self, msg: Query, ctx: Context[Self]) -> None:
        pass


class Box(Actor, Generic[T]):
    def __init__(self, item: T) -> None:
        self.item = item

    @handler
    def query(self, msg: Query, ctx: Context[Self]) -> T:
        return self.item


class Greet(Message[str]):
    pass


class Greeter(Actor):
    @handler
    def greet(self, msg: Greet, ctx: Context[Self]) -> str:
        return ""


async def replies(
    store: Addr[Store], box: Addr[Box[int]], either: Addr[Store] | Addr[Cache], anyaddr: Addr[Any]
) -> None:
    assert_type(await store.send(Query()), list[str])
    assert_type(await store.send(Other(), timeout=1.0), int)
    assert_type(store.send_from_thread(Query()), list[str])
    assert_type(await box.send(Query()), int)
    assert_type(await either.send(Query()), list[str] | None)
    assert_type(await greeter_of(store).send(Greet()), str)
    # Unknown: the class is open, only a base class has a handler, or the actor is unknown.
    assert_type(await store.send(Open()), object)
    assert_type(await store.send(Derived()), object)
    assert_type(await anyaddr.send(Query()), object)
    assert_type(await either.send(Other()), object)  # E: Actor "Cache" has no handler for message type "Other"  [cinema-unhandled]
    store.send_from_thread(Greet())  # E: Actor "Store" has no handler for message type "Greet"  [cinema-unhandled]


def greeter_of(store: Addr[Store]) -> Addr[Greeter]:
    raise NotImplementedError
