"""Protocol constants and the mapping between wire error kinds and Python exceptions."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Final, TypeVar

from google.protobuf.message import DecodeError

from cinema import ActorStopped, ReplyError
from cinema.lowlevel import rebuild_reply_error

from ._errors import (
    AuthenticationError,
    ConnectionLost,
    PayloadDecodeError,
    ProtocolError,
    RemoteError,
    RemoteHandlerError,
    RemoteReplyError,
    UnknownActor,
    UnknownExtension,
    UnknownMessageType,
    UnknownSerializer,
)
from ._peerlog import clip
from .proto import wire_pb2 as pb

__all__ = [
    "PROTOCOL_VERSION",
    "body_frame",
    "enum_name",
    "client_proof",
    "error_from_wire",
    "error_to_wire",
    "parse_frame",
    "server_proof",
]

_V = TypeVar("_V", bound=int)

#: The wire protocol version this implementation speaks.
PROTOCOL_VERSION: Final = 1

NONCE_SIZE: Final = 32
MIN_NONCE_SIZE: Final = 16
MAX_NONCE_SIZE: Final = 64


def _mac(secret: bytes, label: bytes, first: bytes, second: bytes) -> bytes:
    return hmac.new(secret, label + first + second, hashlib.sha256).digest()


def server_proof(secret: bytes, client_nonce: bytes, server_nonce: bytes) -> bytes:
    """The server's HMAC proof that it knows the shared secret."""
    return _mac(secret, b"cinema-v1 server", client_nonce, server_nonce)


def client_proof(secret: bytes, server_nonce: bytes, client_nonce: bytes) -> bytes:
    """The client's HMAC proof that it knows the shared secret."""
    return _mac(secret, b"cinema-v1 client", server_nonce, client_nonce)


# Frame.envelope is field 4 and Frame.extension field 5, both length-delimited (wire type 2).
_ENVELOPE_TAG: Final = bytes([4 << 3 | 2])
_EXTENSION_TAG: Final = bytes([5 << 3 | 2])


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def body_frame(body: pb.Envelope | pb.Extension) -> bytes:
    """The serialized ``Frame`` holding ``body`` (an envelope or an extension frame).

    Byte for byte what ``Frame(envelope=body).SerializeToString()`` gives, without copying
    ``body`` into a new ``Frame`` first (done for every message, so it matters).
    """
    data = body.SerializeToString()
    tag = _ENVELOPE_TAG if isinstance(body, pb.Envelope) else _EXTENSION_TAG
    size = len(data)
    return tag + (bytes((size,)) if size < 0x80 else _varint(size)) + data


def parse_frame(data: bytes) -> pb.Frame:
    """Parse a received frame.

    :raises ProtocolError: the bytes are not a ``Frame`` or carry no body.
    """
    frame = pb.Frame()
    try:
        frame.ParseFromString(data)
    except DecodeError as exc:
        raise ProtocolError(f"undecodable frame of {len(data)} bytes: {exc}") from exc
    if frame.WhichOneof("body") is None:
        raise ProtocolError(f"frame of {len(data)} bytes has no known body")
    return frame


def enum_name(name_of: Callable[[_V], str], number: _V) -> str:
    """The name of an enum value (``name_of`` is the enum's ``Name``), also for numbers the
    enum does not define (proto3 enums are open: a peer may send any number)."""
    try:
        return name_of(number)
    except ValueError:
        return f"unknown value {number}"


#: Error texts in replies are cut to this many characters (they may echo a peer's input).
MAX_ERROR_TEXT: Final = 1024


def _cap(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    return text if len(text) <= limit else text[:limit] + f"...({len(text) - limit} more)"


def error_to_wire(exc: BaseException) -> pb.Error:
    """Describe a server-side failure for a reply (texts cut to ``MAX_ERROR_TEXT``)."""
    error = _error_to_wire(exc)
    if len(error.message) > MAX_ERROR_TEXT:
        error.message = _cap(error.message)
    if len(error.type_name) > MAX_ERROR_TEXT:
        error.type_name = _cap(error.type_name)
    return error


def _error_to_wire(exc: BaseException) -> pb.Error:
    kind: pb.ErrorKind.ValueType
    if isinstance(exc, UnknownActor):
        kind = pb.ERROR_KIND_UNKNOWN_ACTOR
    elif isinstance(exc, UnknownMessageType):
        kind = pb.ERROR_KIND_UNKNOWN_MESSAGE_TYPE
    elif isinstance(exc, UnknownExtension):
        kind = pb.ERROR_KIND_UNKNOWN_EXTENSION
    elif isinstance(exc, ActorStopped):
        kind = pb.ERROR_KIND_ACTOR_STOPPED
    elif isinstance(exc, RemoteReplyError):
        # A handler's answer (a cinema.ReplyError), not a failure: "expected" tells the caller
        # to raise the same type when it knows it (older callers ignore it).
        return pb.Error(
            kind=pb.ERROR_KIND_HANDLER_ERROR,
            type_name=exc.type_name,
            message=exc.message,
            expected=True,
        )
    elif isinstance(exc, RemoteHandlerError):
        return pb.Error(
            kind=pb.ERROR_KIND_HANDLER_ERROR, type_name=exc.type_name, message=exc.remote_message
        )
    elif isinstance(exc, PayloadDecodeError):
        kind = pb.ERROR_KIND_DECODE_ERROR
    elif isinstance(exc, ProtocolError):
        kind = pb.ERROR_KIND_PROTOCOL_ERROR
    else:
        return pb.Error(
            kind=pb.ERROR_KIND_INTERNAL, type_name=type(exc).__qualname__, message=str(exc)
        )
    return pb.Error(kind=kind, type_name=type(exc).__qualname__, message=str(exc))


def error_from_wire(
    error: pb.Error, *, envelope: bool = True
) -> RemoteError | ActorStopped | ReplyError:
    """The exception a caller gets for an error reply.

    An expected handler error (a remote :class:`cinema.ReplyError`) in the reply to an actor
    message (``envelope``; extension handlers and ``Close`` frames answer none) is rebuilt as
    its own type when that type is defined in this process, and only then (the peer's name is
    looked up among the reply error classes already defined; nothing is imported); else it is
    a :class:`RemoteReplyError` naming the type. Peer texts are cut as the server cuts them.
    """
    kind = error.kind
    text = error.message or enum_name(pb.ErrorKind.Name, kind)
    if kind == pb.ERROR_KIND_UNKNOWN_ACTOR:
        return UnknownActor(text)
    if kind == pb.ERROR_KIND_UNKNOWN_MESSAGE_TYPE:
        # An additive refinement: older peers see a plain unknown type.
        if error.type_name == UnknownSerializer.__qualname__:
            return UnknownSerializer(text)
        return UnknownMessageType(text)
    if kind == pb.ERROR_KIND_HANDLER_ERROR:
        if error.expected and envelope:
            return _reply_error(error.type_name, _cap(error.message))
        return RemoteHandlerError(error.type_name, error.message)
    if kind == pb.ERROR_KIND_ACTOR_STOPPED:
        return ActorStopped(text)
    if kind == pb.ERROR_KIND_UNKNOWN_EXTENSION:
        return UnknownExtension(text)
    if kind == pb.ERROR_KIND_UNAUTHENTICATED:
        return AuthenticationError(text)
    if kind in (pb.ERROR_KIND_TIMEOUT, pb.ERROR_KIND_OVERLOADED, pb.ERROR_KIND_NONE):
        return ConnectionLost(f"server closed the connection: {text}")
    if kind == pb.ERROR_KIND_DECODE_ERROR:
        return PayloadDecodeError(text)
    if kind == pb.ERROR_KIND_INTERNAL and error.type_name:
        return RemoteHandlerError(error.type_name, error.message)
    return ProtocolError(text)


def _reply_error(type_name: str, message: str) -> ReplyError | RemoteReplyError:
    if len(type_name) <= MAX_ERROR_TEXT:
        rebuilt = rebuild_reply_error(type_name, message)
        if rebuilt is not None:
            return rebuilt
    return RemoteReplyError(clip(type_name, MAX_ERROR_TEXT), message)
