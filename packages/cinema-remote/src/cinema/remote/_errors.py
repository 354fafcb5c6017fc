"""Errors raised by remote messaging. All derive from :class:`cinema.CinemaError`."""

from __future__ import annotations

from cinema import ActorStopped, CinemaError

__all__ = [
    "ActorStopped",
    "AuthenticationError",
    "ConnectionLost",
    "FrameTooLarge",
    "PayloadDecodeError",
    "ProtocolError",
    "RemoteError",
    "RemoteHandlerError",
    "RemoteReplyError",
    "UnknownActor",
    "UnknownExtension",
    "UnknownMessageType",
    "UnknownSerializer",
]


class RemoteError(CinemaError):
    """Base class of the errors specific to remote messaging."""


class ConnectionLost(RemoteError):
    """The connection to the peer is gone: requests in flight and later calls fail at once."""


class AuthenticationError(ConnectionLost):
    """The shared-secret handshake failed (wrong or missing secret on either side)."""


class ProtocolError(RemoteError):
    """The peer sent something that does not follow the wire protocol."""


class FrameTooLarge(ProtocolError):
    """A frame's length prefix exceeds the configured maximum frame size."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"frame of {size} bytes exceeds the limit of {limit} bytes")


class PayloadDecodeError(ProtocolError):
    """A payload does not parse as the message type it claims to be."""


class UnknownActor(RemoteError):
    """The server knows no such node or actor name, and no route for the message's type."""


class UnknownMessageType(RemoteError):
    """The server does not know the message type, or the target actor does not handle it."""


class UnknownSerializer(UnknownMessageType):
    """No serializer is registered under the name a message carries, or none handles the
    message's class (install the serializer's plugin on both sides, or pass ``serializer=``)."""


class UnknownExtension(RemoteError):
    """The server has no handler registered for that extension kind."""


class RemoteHandlerError(RemoteError):
    """The remote handler raised.

    :ivar type_name: the remote exception's type name, e.g. ``"ValueError"``.
    :ivar remote_message: the remote exception's message.
    """

    def __init__(self, type_name: str, message: str) -> None:
        self.type_name = type_name
        self.remote_message = message
        super().__init__(f"remote handler raised {type_name}: {message}")


class RemoteReplyError(RemoteHandlerError):
    """The remote handler answered with a :class:`cinema.ReplyError` whose type is not defined
    in this process (when it is, the caller gets that type itself, rebuilt by
    :func:`cinema.lowlevel.rebuild_reply_error`). An expected outcome: the remote actor was not
    failed.

    :ivar type_name: the reply error's type as ``"module.QualName"``, e.g.
        ``"inventory.NotFound"`` (clipped, with unprintable characters escaped).
    :ivar message: the reply error's message (cut to 1024 characters).
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(type_name, message)
        self.message = message
        self.args = (f"remote handler answered {type_name}: {message}",)


for _cls in (
    RemoteError,
    ConnectionLost,
    AuthenticationError,
    ProtocolError,
    FrameTooLarge,
    PayloadDecodeError,
    UnknownActor,
    UnknownMessageType,
    UnknownSerializer,
    UnknownExtension,
    RemoteHandlerError,
    RemoteReplyError,
):
    _cls.__module__ = "cinema.remote"
