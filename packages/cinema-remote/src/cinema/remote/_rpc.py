"""Typed request/reply pairs for unmodified ``protoc``-generated classes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar, final

from google.protobuf.message import Message as ProtoMessage

__all__ = ["Rpc", "rpc"]

Req = TypeVar("Req", bound=ProtoMessage)
Resp = TypeVar("Resp", bound=ProtoMessage)


@final
@dataclass(frozen=True, slots=True)
class Rpc(Generic[Req, Resp]):
    """A request type paired with the type of its reply.

    Generated protobuf classes are final, so a reply type cannot be attached by subclassing (as
    ``cinema.Message[R]`` does for local messages). Instead, declare the pair once::

        ADD = rpc(Add, AddResult)                  # Rpc[Add, AddResult]
        result = await remote.call(ADD, Add(n=5))  # mypy knows: result is AddResult

    :ivar request: the request message class.
    :ivar response: the reply message class; a reply of any other type is a ``ProtocolError``.
    """

    request: type[Req]
    response: type[Resp]


def rpc(request: type[Req], response: type[Resp]) -> Rpc[Req, Resp]:
    """Pair a request message class with its reply class (see :class:`Rpc`)."""
    for cls in (request, response):
        if not (isinstance(cls, type) and issubclass(cls, ProtoMessage)):
            raise TypeError(f"rpc() takes protobuf message classes, not {cls!r}")
    return Rpc(request, response)


Rpc.__module__ = "cinema.remote"
