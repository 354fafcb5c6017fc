"""Extension points: the small abstract classes a plugin implements.

A *transport* moves opaque frames between two processes (TCP and Unix sockets ship in
``cinema-remote``); a *serializer* turns message objects into bytes and back (protobuf ships in
``cinema-remote``). Third-party distributions provide their own by implementing these classes and
declaring an entry point in the ``cinema`` group (see :func:`cinema.load_plugins`); Cinema
finds them when a system or node is created, with no change to Cinema itself.

Framing is the connection's job: a :class:`Connection` carries whole frames, so a
message-oriented medium (WebSocket, QUIC stream, in-memory queue) maps onto it directly, and a
byte stream medium uses the length-prefix framing that ``cinema.remote`` offers as a helper.
Errors follow anyio's stream conventions so that every transport reports the same way:
``anyio.EndOfStream`` when the peer closed cleanly, ``anyio.BrokenResourceError`` when the
connection broke, ``anyio.ClosedResourceError`` after :meth:`Connection.aclose`.
"""

from __future__ import annotations

import ssl
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import ClassVar, Final, TypeVar

import pluggy

__all__ = ["Connection", "Listener", "Serializer", "Transport", "hookimpl"]

#: Marks a plugin's hook implementations (``cinema_transports``, ``cinema_serializers``)::
#:
#:     @hookimpl
#:     def cinema_transports() -> list[Transport]:
#:         return [MyTransport()]
hookimpl: Final = pluggy.HookimplMarker("cinema")

T = TypeVar("T")


class Connection(ABC):
    """A bidirectional connection that carries whole frames (``bytes``) in order.

    ``send_frame`` may be called by several tasks at once; an implementation keeps frames whole
    (never interleaves two of them). ``receive_frame`` is called by one task at a time.
    """

    @abstractmethod
    async def send_frame(self, frame: bytes) -> None:
        """Send one frame; return once it is written (or queued, in order, behind a write in
        progress that will carry it: a connection may combine small frames into one write).

        :param frame: the frame's bytes (without any framing header).
        :raises anyio.BrokenResourceError: the connection broke.
        :raises anyio.ClosedResourceError: this side already closed it.
        """

    @abstractmethod
    async def receive_frame(self) -> bytes:
        """Wait for the next frame and return it.

        :raises anyio.EndOfStream: the peer closed the connection cleanly between frames.
        :raises anyio.BrokenResourceError: the connection broke (also mid-frame).
        :raises anyio.ClosedResourceError: this side already closed it.
        """

    @abstractmethod
    async def aclose(self) -> None:
        """Close the connection. Idempotent; pending ``receive_frame`` calls fail."""

    def send_frame_nowait(self, frame: bytes) -> bool:
        """Send (or queue, as ``send_frame`` may) one frame without awaiting, if the connection
        can do so now: a fast path, so that a reply needs no coroutine of its own.

        The default cannot: it returns ``False``, and the caller awaits ``send_frame``.

        :returns: ``True`` once the frame is written or queued in order; ``False`` if nothing
            was sent (then ``await send_frame(frame)`` instead).
        :raises anyio.BrokenResourceError: the connection broke.
        :raises anyio.ClosedResourceError: this side already closed it.
        """
        return False

    def receive_frame_nowait(self) -> bytes | None:
        """The next frame if one has already arrived whole, without awaiting (a fast path for
        frames that arrived together); ``None`` if none has, or the connection cannot tell.

        The default returns ``None``: the caller awaits ``receive_frame``.
        """
        return None

    @property
    def remote_address(self) -> str:
        """A human-readable description of the peer, used in log lines."""
        return "?"

    async def __aenter__(self: T) -> T:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class Listener(ABC):
    """Accepts incoming connections for a transport."""

    @property
    @abstractmethod
    def address(self) -> str:
        """The bound address in a form ``Transport.connect`` accepts (with the real port when
        port 0 was asked for)."""

    @abstractmethod
    async def serve(self, handler: Callable[[Connection], Awaitable[None]]) -> None:
        """Accept connections until cancelled, running ``handler(conn)`` in a new task for each.

        The handler owns the connection (it closes it). When ``serve`` is cancelled it stops
        accepting; the handler tasks it started are cancelled with it.
        """

    @abstractmethod
    async def aclose(self) -> None:
        """Stop listening. Idempotent."""


class Transport(ABC):
    """Connects to and listens on addresses of one URL scheme (``tcp``, ``unix``, ...).

    Addresses are strings, either ``"<scheme>://<rest>"`` or a transport-specific short form
    (TCP accepts plain ``"host:port"``). Instances are cheap and stateless.
    """

    #: The URL scheme this transport serves, e.g. ``"tcp"``. Unique among installed transports.
    scheme: ClassVar[str]

    @abstractmethod
    async def connect(
        self, address: str, *, ssl_context: ssl.SSLContext | None = None
    ) -> Connection:
        """Open a connection to ``address``.

        :param address: where to connect.
        :param ssl_context: wrap the connection in TLS with this client context; a transport
            that cannot do TLS raises ``ValueError``.
        :raises OSError: the peer cannot be reached.
        :raises ValueError: the address is malformed.
        """

    @abstractmethod
    async def listen(self, address: str, *, ssl_context: ssl.SSLContext | None = None) -> Listener:
        """Start listening on ``address``; return once bound.

        :param address: where to listen (TCP: port 0 picks a free port).
        :param ssl_context: accept only TLS connections, with this server context.
        :raises OSError: the address cannot be bound.
        :raises ValueError: the address is malformed.
        """

    def split_scheme(self, address: str) -> str:
        """Return ``address`` without a leading ``"<scheme>://"`` of this transport.

        :raises ValueError: the address names another scheme.
        """
        scheme, sep, rest = address.partition("://")
        if not sep:
            return address
        if scheme != self.scheme:
            raise ValueError(
                f"{type(self).__name__} serves {self.scheme}:// addresses, not {address!r}"
            )
        return rest


class Serializer(ABC):
    """Turns message objects into bytes and back.

    A serializer names message *types* with stable strings (the protobuf serializer uses the
    message's full name, e.g. ``"calc.Add"``), which travel on the wire so the receiver can
    route and decode.
    """

    #: The serializer's name, e.g. ``"protobuf"``. Unique among installed serializers.
    name: ClassVar[str]

    @abstractmethod
    def handles(self, cls: type) -> bool:
        """Whether this serializer can encode and decode instances of ``cls``."""

    @abstractmethod
    def type_name(self, cls: type) -> str:
        """The stable wire name of the message type ``cls``.

        :raises TypeError: ``cls`` is not a type this serializer handles.
        """

    @abstractmethod
    def encode(self, message: object) -> bytes:
        """Serialize ``message``.

        :raises TypeError: the message is not of a type this serializer handles.
        """

    @abstractmethod
    def decode(self, data: bytes, cls: type[T]) -> T:
        """Parse ``data`` as an instance of ``cls``.

        :raises ValueError: ``data`` is not a valid encoding of ``cls``.
        """
