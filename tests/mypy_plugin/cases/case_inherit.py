"""Handlers come from the actor class and its bases; the most derived definition decides."""

import sys
from abc import ABC, abstractmethod
from typing import Any, Self

from cinema import Actor, Addr, Context, Message, handler


class Greet(Message[str]):
    pass


class Log(Message[None]):
    pass


class Farewell(Message[None]):
    pass


class Base(Actor):
    @handler
    def greet(self, msg: Greet, ctx: Context[Self]) -> str:
        return "hello"


class Muted(Base):
    # Overriding a handler without @handler removes it, at run time as here.
    def greet(self, msg: Greet, ctx: Context[Self]) -> str:
        return "..."


class LogMixin:
    """Not an actor: the plugin cannot know its handlers, so actors using it are unknown."""

    @handler
    def log(self, msg: Log, ctx: Context[Any]) -> None:
        pass


class Logged(Base, LogMixin):
    pass


class PlainMixin:
    """Not an actor, but without decorated methods it cannot hold handlers."""

    def helper(self) -> int:
        return 1


class Plain(Base, PlainMixin):
    pass


class AbstractMixin(ABC):
    """Not an actor; abstract methods are decorated, but they are not handlers."""

    @abstractmethod
    def helper(self) -> int: ...


class Conditional(Base, AbstractMixin):
    def helper(self) -> int:
        return 2

    if sys.version_info >= (3, 11):

        @handler
        def log(self, msg: Log, ctx: Context[Self]) -> None:
            pass

    else:

        @handler
        def farewell(self, msg: Farewell, ctx: Context[Self]) -> None:
            pass


def conditional(addr: Addr[Conditional]) -> None:
    addr.do_send(Greet())
    addr.do_send(Log())
    addr.do_send(Farewell())  # E: Actor "Conditional" has no handler for message type "Farewell"  [cinema-unhandled]


def send(base: Addr[Base], muted: Addr[Muted], logged: Addr[Logged], plain: Addr[Plain]) -> None:
    base.do_send(Greet())
    muted.do_send(Greet())  # E: Actor "Muted" has no handler for message type "Greet"  [cinema-unhandled]
    logged.do_send(Log())
    logged.do_send(Farewell())
    plain.do_send(Greet())
    plain.do_send(Log())  # E: Actor "Plain" has no handler for message type "Log"  [cinema-unhandled]


def local() -> None:
    class Local(Actor):
        @handler
        def log(self, msg: Log, ctx: Context[Self]) -> None:
            pass

    def use(addr: Addr[Local]) -> None:
        addr.do_send(Log())
        addr.do_send(Farewell())  # E: Actor "Local" has no handler for message type "Farewell"  [cinema-unhandled]

    del use
