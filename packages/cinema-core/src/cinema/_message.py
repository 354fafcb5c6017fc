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


#: Why a message became a dead letter (:attr:`DeadLetter.reason`).
STOPPED_REASON = "stopped"  # sent to an actor that is stopped (or stopping)
DROPPED = "dropped"  # still queued when its actor stopped: never handled
NO_HANDLER = "no handler"  # a restart's factory made an instance that does not handle it
FULL_REASON = "mailbox full"  # sent from another thread, found the bounded mailbox full
CLOSED_REASON = "system closed"  # sent from another thread after the event loop ended


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that was never handled, as delivered to dead-letter subscribers.

    See :meth:`cinema.ActorSystem.subscribe_dead_letters`.

    :ivar message: the message
    :ivar target: the actor it was for
    :ivar reason: why it was not handled: ``"stopped"`` (the target was stopped when it was
        sent), ``"dropped"`` (still queued when the target stopped), ``"no handler"`` (a restart
        made an instance that does not handle it), ``"mailbox full"`` or ``"system closed"``
        (sent from another thread)
    """

    message: object
    target: Addr[Any]
    reason: str


@dataclass(frozen=True, slots=True)
class Terminated:
    """Delivered to a watcher when the actor it watches has stopped for good.

    :ivar addr: the address of the actor that stopped
    """

    addr: Addr[Any]
