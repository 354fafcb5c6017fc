"""Typed messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from ._addr import Addr

R_co = TypeVar("R_co", covariant=True)


class Message(Generic[R_co]):
    """Base class of messages; ``R_co`` is the reply type of :meth:`cinema.Addr.send`.

    Subclass it (usually as a dataclass)::

        @dataclass
        class Greet(Message[str]):
            name: str
    """

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Terminated:
    """Delivered to a watcher when the actor it watches has stopped for good.

    :ivar addr: the address of the actor that stopped
    """

    addr: Addr[Any]
