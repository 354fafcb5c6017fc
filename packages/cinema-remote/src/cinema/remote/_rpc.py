"""Typed request/reply pairs for unmodified ``protoc``-generated classes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar, final

__all__ = ["Rpc", "rpc"]

Req = TypeVar("Req")
Resp = TypeVar("Resp")
# The reply type is covariant so that a call's reply type is never inferred from the context
# the call is used in (``isinstance(await remote.call(ADD, m), AddResult)``); the request type
# stays invariant, so that mypy still rejects a request of the wrong type.
_Resp_co = TypeVar("_Resp_co", covariant=True)


@final
@dataclass(frozen=True, slots=True)
class Rpc(Generic[Req, _Resp_co]):
    """A request type paired with the type of its reply.

    Any message classes a serializer handles may be paired (protobuf classes, or e.g.
    dataclasses with a serializer plugin for them). Generated protobuf classes are final, so a
    reply type cannot be attached by subclassing (as ``cinema.Message[R]`` does for local
    messages). Instead, declare the pair once::

        ADD = rpc(Add, AddResult)                  # Rpc[Add, AddResult]
        result = await remote.call(ADD, Add(n=5))  # mypy knows: result is AddResult

    :ivar request: the request message class.
    :ivar response: the reply message class; a reply of any other type is a ``ProtocolError``.
    """

    request: type[Req]
    response: type[_Resp_co]


def rpc(request: type[Req], response: type[Resp]) -> Rpc[Req, Resp]:
    """Pair a request message class with its reply class (see :class:`Rpc`)."""
    for cls in (request, response):
        if not isinstance(cls, type):
            raise TypeError(f"rpc() takes message classes, not {cls!r}")
    return Rpc(request, response)


Rpc.__module__ = "cinema.remote"
