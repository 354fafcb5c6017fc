"""The server side: accept connections, handshake, dispatch requests, reply."""

from __future__ import annotations

import logging
import ssl
from types import TracebackType
from typing import Final, Self, final

import anyio
from anyio.abc import TaskGroup

from cinema import load_plugins
from cinema.abc import Connection, Listener, Transport

from ._connection import ConnectionSettings, ServerConnection, send_close
from ._framing import DEFAULT_MAX_FRAME_SIZE
from ._node import ActorHandler, LocalNode, RemoteHandler
from ._peerlog import clip
from ._session import ExtensionHandler, ReplyBudget
from .proto import wire_pb2 as pb

__all__ = ["ExtensionHandler", "RemoteServer", "resolve_transport"]

log = logging.getLogger("cinema.remote")

#: Before the handshake is done, frames larger than this (4 KiB) close the connection.
DEFAULT_MAX_HANDSHAKE_FRAME_SIZE: Final = 4096
#: Bytes of replies one connection may have waiting for its peer to read (32 MiB).
DEFAULT_MAX_BUFFERED_REPLIES: Final = 32 * 1024 * 1024
#: Bytes of replies all connections together may have waiting (256 MiB).
DEFAULT_MAX_TOTAL_BUFFERED_REPLIES: Final = 256 * 1024 * 1024


def resolve_transport(address: str, transport: Transport | None = None) -> Transport:
    """The transport for ``address``: the given one, else the plugin for its scheme (plain
    ``host:port`` means ``tcp``)."""
    if transport is not None:
        return transport
    scheme, sep, _rest = address.partition("://")
    return load_plugins().transport(scheme if sep else "tcp")


@final
class RemoteServer:
    """Serves local actors to remote clients on one listening address.

    Make one with :meth:`bind`, then ``await server.run()`` (until cancelled) or
    ``async with server:`` (serves in the background until the block ends). Stopping closes
    every connection, so that the clients' requests in flight fail with ``ConnectionLost``.

    Nothing a peer sends ends or wedges the server or another connection: an unknown actor or
    type, an undecodable payload or a failing handler gets an error reply; a malformed or
    oversized frame, an out-of-range enum value, a failed handshake, a peer silent for
    ``idle_timeout`` or one that does not read its replies gets a ``Close`` frame and the
    connection closed. Each is logged on the ``cinema.remote`` logger in one bounded line
    (peer strings clipped and escaped, at most a burst per connection), at WARNING or below;
    ERROR means a fault of the server or the application.
    """

    def __init__(
        self,
        listener: Listener,
        handler: RemoteHandler,
        *,
        secret: bytes | str | None = None,
        node: str | None = None,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_connections: int = 1024,
        max_connections_per_source: int | None = 256,
        max_in_flight: int = 1024,
        idle_timeout: float | None = 300.0,
        handshake_timeout: float = 10.0,
        max_handshake_frame_size: int = DEFAULT_MAX_HANDSHAKE_FRAME_SIZE,
        max_buffered_replies: int = DEFAULT_MAX_BUFFERED_REPLIES,
        max_total_buffered_replies: int = DEFAULT_MAX_TOTAL_BUFFERED_REPLIES,
        extensions: dict[str, ExtensionHandler] | None = None,
    ) -> None:
        self._listener = listener
        self._handler = handler
        # A lone ActorHandler routes through its own router: call that directly.
        self._handle_request = (
            handler._router.handle if isinstance(handler, ActorHandler) else handler.handle
        )
        self._secret = secret.encode() if isinstance(secret, str) else secret
        handler_node = handler if isinstance(handler, LocalNode) else getattr(handler, "node", None)
        self.node = node if node is not None else getattr(handler_node, "name", "")
        self.max_frame_size = max_frame_size
        self.max_connections = max_connections
        self.max_connections_per_source = max_connections_per_source
        self.max_in_flight = max_in_flight
        self.idle_timeout = idle_timeout
        self.handshake_timeout = handshake_timeout
        self.max_handshake_frame_size = max_handshake_frame_size
        self._budget = ReplyBudget(max_buffered_replies, max_total_buffered_replies)
        self._extensions: dict[str, ExtensionHandler] = dict(extensions or {})
        self._connections: set[Connection] = set()
        self._per_source: dict[str, int] = {}
        self._refusals = _Throttle()
        self._task_group: TaskGroup | None = None
        self._run_scope: anyio.CancelScope | None = None

    @classmethod
    async def bind(
        cls,
        address: str,
        handler: RemoteHandler,
        *,
        transport: Transport | None = None,
        ssl_context: ssl.SSLContext | None = None,
        secret: bytes | str | None = None,
        node: str | None = None,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_connections: int = 1024,
        max_connections_per_source: int | None = 256,
        max_in_flight: int = 1024,
        idle_timeout: float | None = 300.0,
        handshake_timeout: float = 10.0,
        max_handshake_frame_size: int = DEFAULT_MAX_HANDSHAKE_FRAME_SIZE,
        max_buffered_replies: int = DEFAULT_MAX_BUFFERED_REPLIES,
        max_total_buffered_replies: int = DEFAULT_MAX_TOTAL_BUFFERED_REPLIES,
        extensions: dict[str, ExtensionHandler] | None = None,
    ) -> RemoteServer:
        """Listen on ``address``; return once bound (serve with :meth:`run` or ``async with``).

        :param address: ``"host:port"``, ``"tcp://host:port"``, ``"unix:///path"`` or any
            installed transport's scheme. Port 0 picks a free port (see :attr:`address`).
        :param handler: what serves requests: a :class:`LocalNode` (the actors it serves),
            ``node.handler(...)`` or a built :class:`MessageRouter`.
        :param transport: use this transport instead of the plugin for the address's scheme.
        :param ssl_context: serve TLS only, with this server-side context.
        :param secret: require clients to prove knowledge of this shared secret
            (HMAC-SHA256 challenge-response; the secret never travels).
        :param node: node name announced in the handshake (default: the handler's node).
        :param max_frame_size: larger incoming frames close the connection, before any
            allocation; a larger reply becomes an error reply (``RemoteHandlerError``
            ``FrameTooLarge`` for the caller).
        :param max_connections: connections beyond this are refused (``Close`` frame, closed).
        :param max_connections_per_source: connections from one IP address beyond this are
            refused likewise, so that one address cannot take every slot (``None``: no limit).
        :param max_in_flight: per connection, how many requests are handled concurrently;
            beyond it the server stops reading from that connection until one completes.
        :param idle_timeout: close a connection that sent nothing for this long while none of
            its requests are running (``None``: never).
        :param handshake_timeout: close a connection that does not finish the handshake in time.
        :param max_handshake_frame_size: before the handshake is done (and authenticated),
            larger frames close the connection.
        :param max_buffered_replies: bytes of replies one connection may have waiting for its
            peer to read; beyond, the connection is closed (a single reply always may wait).
        :param max_total_buffered_replies: the same, for all connections together.
        :param extensions: handlers of protocol extensions by kind (see :meth:`add_extension`).
        :raises OSError: the address cannot be bound.
        :raises cinema.PluginNotFound: no transport serves the address's scheme.
        """
        chosen = resolve_transport(address, transport)
        listener = await chosen.listen(address, ssl_context=ssl_context)
        return cls(
            listener,
            handler,
            secret=secret,
            node=node,
            max_frame_size=max_frame_size,
            max_connections=max_connections,
            max_connections_per_source=max_connections_per_source,
            max_in_flight=max_in_flight,
            idle_timeout=idle_timeout,
            handshake_timeout=handshake_timeout,
            max_handshake_frame_size=max_handshake_frame_size,
            max_buffered_replies=max_buffered_replies,
            max_total_buffered_replies=max_total_buffered_replies,
            extensions=extensions,
        )

    @property
    def address(self) -> str:
        """The bound address (with the real port when port 0 was asked for)."""
        return self._listener.address

    @property
    def connection_count(self) -> int:
        """How many connections are open now."""
        return len(self._connections)

    def add_extension(self, kind: str, handler: ExtensionHandler) -> None:
        """Serve ``Extension`` frames of ``kind`` on this server's connections.

        This is how another protocol (cluster gossip) shares the port with actor messages:
        clients send with :meth:`RemoteClient.request_extension` / ``send_extension``.

        :raises ValueError: ``kind`` has a handler already.
        """
        if kind in self._extensions:
            raise ValueError(f"extension {kind!r} already has a handler")
        self._extensions[kind] = handler

    async def run(self) -> None:
        """Serve until cancelled (or :meth:`aclose`); then close every connection and the
        listener."""
        if self._run_scope is not None:
            raise RuntimeError("this RemoteServer is already running")
        with anyio.CancelScope() as scope:
            self._run_scope = scope
            try:
                log.info("serving on %s", self.address)
                await self._listener.serve(self.serve_connection)
            finally:
                self._run_scope = None
                await self._listener.aclose()

    async def aclose(self) -> None:
        """Stop serving (closing every connection) and close the listener."""
        if self._run_scope is not None:
            self._run_scope.cancel()
        else:
            await self._listener.aclose()

    async def __aenter__(self) -> Self:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._task_group = tg
        tg.start_soon(self.run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg, self._task_group = self._task_group, None
        assert tg is not None
        tg.cancel_scope.cancel()
        if exc is None or isinstance(exc, anyio.get_cancelled_exc_class()):
            return await tg.__aexit__(exc_type, exc, tb)
        # An exception from the block itself propagates as it is, not wrapped in the task
        # group's ExceptionGroup (as ActorSystem and RemoteClient do).
        await tg.__aexit__(None, None, None)
        return None

    def __repr__(self) -> str:
        return f"<RemoteServer {self.address} node={self.node!r} {len(self._connections)} conns>"

    # -- one connection ---------------------------------------------------------------------

    async def serve_connection(self, conn: Connection) -> None:
        """Serve one accepted connection until it closes (the caller closes ``conn``).

        Listeners call this; a custom accept loop (or an in-memory test) may too. It never
        raises but for cancellation: whatever happens on the connection ends only it.
        """
        peer = conn.remote_address
        source = _source_of(peer)
        refusal = None
        if len(self._connections) >= self.max_connections:
            refusal = f"{len(self._connections)} connections open (max_connections)"
        elif (
            source is not None
            and self.max_connections_per_source is not None
            and self._per_source.get(source, 0) >= self.max_connections_per_source
        ):
            refusal = (
                f"{self._per_source[source]} connections open from {clip(source)}"
                " (max_connections_per_source)"
            )
        if refusal is not None:
            if self._refusals.allow():
                log.warning("refusing connection from %s: %s", clip(peer), refusal)
            await send_close(conn, pb.ERROR_KIND_OVERLOADED, "too many connections")
            with anyio.CancelScope(shield=True):
                await conn.aclose()
            return
        self._connections.add(conn)
        if source is not None:
            self._per_source[source] = self._per_source.get(source, 0) + 1
        try:
            await ServerConnection(conn, self._settings()).run()
        finally:
            self._connections.discard(conn)
            if source is not None:
                left = self._per_source[source] - 1
                if left:
                    self._per_source[source] = left
                else:
                    del self._per_source[source]

    def _settings(self) -> ConnectionSettings:
        return ConnectionSettings(
            node=self.node,
            secret=self._secret,
            handle_request=self._handle_request,
            extensions=self._extensions,
            max_frame_size=self.max_frame_size,
            handshake_frame_size=min(self.max_handshake_frame_size, self.max_frame_size),
            max_in_flight=self.max_in_flight,
            idle_timeout=self.idle_timeout,
            handshake_timeout=self.handshake_timeout,
            budget=self._budget,
        )


def _source_of(peer: str) -> str | None:
    """The host part of an IP peer's ``host:port`` description (``None``: not an IP peer)."""
    host, sep, port = peer.rpartition(":")
    if not sep or not host or not port.isdigit() or "/" in host:
        return None
    return host


@final
class _Throttle:
    """At most ``burst`` events per ``window`` seconds (for log lines not tied to a
    connection, such as refusals)."""

    __slots__ = ("_burst", "_count", "_start", "_window")

    def __init__(self, burst: int = 10, window: float = 10.0) -> None:
        self._burst = burst
        self._window = window
        self._start = -window
        self._count = 0

    def allow(self) -> bool:
        now = anyio.current_time()
        if now - self._start >= self._window:
            if self._count > self._burst:
                log.warning(
                    "%d more refused connections were not logged", self._count - self._burst
                )
            self._start = now
            self._count = 0
        self._count += 1
        return self._count <= self._burst


RemoteServer.__module__ = "cinema.remote"
