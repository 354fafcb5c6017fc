"""The server side: accept connections, handshake, dispatch requests, reply."""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import ssl
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Final, Self, final

import anyio
from anyio.abc import TaskGroup

from cinema._errors import ActorStopped
from cinema._plugins import load_plugins
from cinema.abc import Connection, Listener, Transport

from ._asyncio_streams import AsyncioStreamConnection
from ._conn_tasks import Closing as _Closing
from ._conn_tasks import ConnectionTasks
from ._errors import (
    AuthenticationError,
    FrameTooLarge,
    ProtocolError,
    RemoteError,
    RemoteHandlerError,
    UnknownExtension,
)
from ._framing import DEFAULT_MAX_FRAME_SIZE, StreamConnection
from ._node import ActorHandler, RemoteHandler
from ._wire import (
    MAX_NONCE_SIZE,
    MIN_NONCE_SIZE,
    NONCE_SIZE,
    PROTOCOL_VERSION,
    body_frame,
    client_proof,
    error_to_wire,
    parse_frame,
    server_proof,
)
from .proto import wire_pb2 as pb

__all__ = ["ExtensionHandler", "RemoteServer", "resolve_transport"]

log = logging.getLogger("cinema.remote")

#: ``async def handler(data: bytes, peer: str) -> bytes | None`` for one extension kind: gets a
#: request's data and the peer's description, returns the reply's data (ignored for one-way).
ExtensionHandler = Callable[[bytes, str], Awaitable[bytes | None]]

_CLOSE_GRACE: Final = 1.0


def resolve_transport(address: str, transport: Transport | None = None) -> Transport:
    """The transport for ``address``: the given one, else the plugin for its scheme (plain
    ``host:port`` means ``tcp``)."""
    if transport is not None:
        return transport
    scheme, sep, _rest = address.partition("://")
    return load_plugins().transport(scheme if sep else "tcp")


async def _send_close(conn: Connection, kind: pb.ErrorKind.ValueType, message: str) -> None:
    """Tell the peer why we are closing, if it still listens; never blocks for long."""
    frame = pb.Frame(close=pb.Close(error=pb.Error(kind=kind, message=message)))
    with anyio.move_on_after(_CLOSE_GRACE, shield=True):
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await conn.send_frame(frame.SerializeToString())


@final
class RemoteServer:
    """Serves local actors to remote clients on one listening address.

    Make one with :meth:`bind`, then ``await server.run()`` (until cancelled) or
    ``async with server:`` (serves in the background until the block ends). Stopping closes
    every connection, so that the clients' requests in flight fail with ``ConnectionLost``.

    Bad input never takes the server down: an unknown actor or type, an undecodable payload or a
    failing handler gets an error reply; a malformed or oversized frame, a failed handshake or
    a peer silent for ``idle_timeout`` gets a ``Close`` frame and the connection closed. Each
    is logged on the ``cinema.remote`` logger.
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
        max_in_flight: int = 1024,
        idle_timeout: float | None = 300.0,
        handshake_timeout: float = 10.0,
        extensions: dict[str, ExtensionHandler] | None = None,
    ) -> None:
        self._listener = listener
        self._handler = handler
        # A lone ActorHandler routes through its own router: call that directly.
        self._handle_request = (
            handler._router.handle if isinstance(handler, ActorHandler) else handler.handle
        )
        self._secret = secret.encode() if isinstance(secret, str) else secret
        handler_node = getattr(handler, "node", None)
        self.node = node if node is not None else getattr(handler_node, "name", "")
        self.max_frame_size = max_frame_size
        self.max_connections = max_connections
        self.max_in_flight = max_in_flight
        self.idle_timeout = idle_timeout
        self.handshake_timeout = handshake_timeout
        self._extensions: dict[str, ExtensionHandler] = dict(extensions or {})
        self._connections: set[Connection] = set()
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
        max_in_flight: int = 1024,
        idle_timeout: float | None = 300.0,
        handshake_timeout: float = 10.0,
        extensions: dict[str, ExtensionHandler] | None = None,
    ) -> RemoteServer:
        """Listen on ``address``; return once bound (serve with :meth:`run` or ``async with``).

        :param address: ``"host:port"``, ``"tcp://host:port"``, ``"unix:///path"`` or any
            installed transport's scheme. Port 0 picks a free port (see :attr:`address`).
        :param handler: what serves requests: ``node.handler(...)`` or a built
            :class:`MessageRouter`.
        :param transport: use this transport instead of the plugin for the address's scheme.
        :param ssl_context: serve TLS only, with this server-side context.
        :param secret: require clients to prove knowledge of this shared secret
            (HMAC-SHA256 challenge-response; the secret never travels).
        :param node: node name announced in the handshake (default: the handler's node).
        :param max_frame_size: larger incoming frames close the connection, before any
            allocation.
        :param max_connections: connections beyond this are refused (``Close`` frame, closed).
        :param max_in_flight: per connection, how many requests are handled concurrently;
            beyond it the server stops reading from that connection until one completes.
        :param idle_timeout: close a connection that sent nothing for this long while none of
            its requests are running (``None``: never).
        :param handshake_timeout: close a connection that does not finish the handshake in time.
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
            max_in_flight=max_in_flight,
            idle_timeout=idle_timeout,
            handshake_timeout=handshake_timeout,
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

        Listeners call this; a custom accept loop (or an in-memory test) may too.
        """
        peer = conn.remote_address
        if len(self._connections) >= self.max_connections:
            log.warning(
                "refusing connection from %s: %d connections open (max_connections)",
                peer,
                len(self._connections),
            )
            await _send_close(conn, pb.ERROR_KIND_OVERLOADED, "too many connections")
            return
        if isinstance(conn, StreamConnection | AsyncioStreamConnection):
            conn.max_frame_size = self.max_frame_size
        self._connections.add(conn)
        try:
            await self._serve(conn, peer)
        except _Closing as closing:
            log.warning("closing connection from %s: %s", peer, closing)
            await _send_close(conn, closing.kind, str(closing))
        except anyio.get_cancelled_exc_class():
            await _send_close(conn, pb.ERROR_KIND_NONE, "server shutting down")
            raise
        finally:
            self._connections.discard(conn)
            await conn.aclose()

    async def _receive(self, conn: Connection, peer: str) -> pb.Frame | None:
        """The next frame; ``None`` when the peer closed cleanly."""
        try:
            data = await conn.receive_frame()
        except anyio.EndOfStream:
            log.debug("%s closed the connection", peer)
            return None
        except FrameTooLarge as exc:
            raise _Closing(pb.ERROR_KIND_PROTOCOL_ERROR, str(exc)) from exc
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            log.warning("connection from %s broke: %s", peer, exc)
            return None
        return self._parse(data)

    def _parse(self, data: bytes) -> pb.Frame:
        """Parse a received frame.

        :raises _Closing: the frame is oversized or malformed.
        """
        if len(data) > self.max_frame_size:
            # Transports that do their own framing cannot check before reading.
            raise _Closing(
                pb.ERROR_KIND_PROTOCOL_ERROR, str(FrameTooLarge(len(data), self.max_frame_size))
            )
        try:
            return parse_frame(data)
        except ProtocolError as exc:
            raise _Closing(pb.ERROR_KIND_PROTOCOL_ERROR, str(exc)) from exc

    async def _handshake(self, conn: Connection, peer: str) -> bool:
        frame = await self._receive(conn, peer)
        if frame is None:
            return False
        if frame.WhichOneof("body") != "hello":
            raise _Closing(
                pb.ERROR_KIND_PROTOCOL_ERROR,
                f"expected a hello frame first, got {frame.WhichOneof('body')}",
            )
        hello = frame.hello
        if hello.protocol_version != PROTOCOL_VERSION:
            raise _Closing(
                pb.ERROR_KIND_PROTOCOL_ERROR,
                f"unsupported protocol version {hello.protocol_version}"
                f" (this server speaks {PROTOCOL_VERSION})",
            )
        welcome = pb.Welcome(protocol_version=PROTOCOL_VERSION, node=self.node)
        if self._secret is None:
            await conn.send_frame(pb.Frame(welcome=welcome).SerializeToString())
            return True
        if not MIN_NONCE_SIZE <= len(hello.client_nonce) <= MAX_NONCE_SIZE:
            raise _Closing(pb.ERROR_KIND_UNAUTHENTICATED, "client nonce of a bad size")
        nonce = os.urandom(NONCE_SIZE)
        welcome.auth_required = True
        welcome.server_nonce = nonce
        welcome.server_proof = server_proof(self._secret, hello.client_nonce, nonce)
        await conn.send_frame(pb.Frame(welcome=welcome).SerializeToString())
        frame = await self._receive(conn, peer)
        if frame is None:
            return False
        expected = client_proof(self._secret, nonce, hello.client_nonce)
        if frame.WhichOneof("body") != "auth" or not hmac.compare_digest(
            frame.auth.client_proof, expected
        ):
            raise _Closing(
                pb.ERROR_KIND_UNAUTHENTICATED,
                str(AuthenticationError("authentication failed: wrong or missing shared secret")),
            )
        return True

    async def _serve(self, conn: Connection, peer: str) -> None:
        with anyio.move_on_after(self.handshake_timeout) as scope:
            if not await self._handshake(conn, peer):
                return
        if scope.cancelled_caught:
            raise _Closing(pb.ERROR_KIND_TIMEOUT, "no handshake in time")
        log.debug("connection from %s ready", peer)
        tasks = ConnectionTasks(self, conn, peer)
        async with anyio.create_task_group() as tg:
            tasks.task_group = tg
            tasks.spawn()
        # A _Closing is raised here, outside the task group, so that it is not wrapped in an
        # ExceptionGroup. Otherwise the peer stopped sending (EOF, maybe only half-closed):
        # requests already read still ran and got their replies if the peer still reads.
        if tasks.closing is not None:
            raise tasks.closing

    def _check_frame(self, frame: pb.Frame, peer: str) -> bool:
        """Whether ``frame`` is a request to handle (``False``: the peer said goodbye).

        :raises _Closing: the frame has no business coming from a client.
        """
        body = frame.WhichOneof("body")
        if body == "envelope":
            if frame.envelope.kind not in (pb.ENVELOPE_KIND_REQUEST, pb.ENVELOPE_KIND_ONEWAY):
                kind = pb.EnvelopeKind.Name(frame.envelope.kind)
                raise _Closing(pb.ERROR_KIND_PROTOCOL_ERROR, f"a client may not send {kind}")
        elif body == "extension":
            if frame.extension.envelope_kind not in (
                pb.ENVELOPE_KIND_REQUEST,
                pb.ENVELOPE_KIND_ONEWAY,
            ):
                raise _Closing(
                    pb.ERROR_KIND_PROTOCOL_ERROR, "a client may only send extension requests"
                )
        elif body == "close":
            log.debug("%s said goodbye: %s", peer, frame.close.error.message)
            return False
        else:
            raise _Closing(pb.ERROR_KIND_PROTOCOL_ERROR, f"unexpected {body} frame")
        return True

    async def _reply(self, conn: Connection, peer: str, body: pb.Envelope | pb.Extension) -> None:
        data = body_frame(body)
        if not self._reply_nowait(conn, peer, data):
            try:
                await conn.send_frame(data)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                log.debug("cannot reply to %s: %s", peer, exc)

    def _reply_nowait(self, conn: Connection, peer: str, data: bytes) -> bool:
        """Send a reply without awaiting, if the connection can (most replies are sent this
        way, with no coroutine of their own). :returns: whether it is done with."""
        nowait = getattr(conn, "send_frame_nowait", None)
        if nowait is None:
            return False
        try:
            return bool(nowait(data))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            log.debug("cannot reply to %s: %s", peer, exc)
            return True

    def _failure(self, peer: str, what: str, exc: Exception) -> pb.Error:
        if isinstance(exc, RemoteError | ActorStopped):
            log.info("request from %s (%s) failed: %r", peer, what, exc)
        else:
            log.error("internal error serving %s (%s)", peer, what, exc_info=exc)
        return error_to_wire(exc)

    async def _handle_envelope(self, conn: Connection, peer: str, envelope: pb.Envelope) -> None:
        try:
            answer = await self._handle_request(envelope)
        except Exception as exc:
            what = f"{envelope.message_type} for {envelope.actor_name or '-'}"
            error = self._failure(peer, what, exc)
            if envelope.kind == pb.ENVELOPE_KIND_REQUEST:
                answer = pb.Envelope(
                    kind=pb.ENVELOPE_KIND_REPLY, correlation_id=envelope.correlation_id, error=error
                )
            else:
                log.warning("one-way message from %s (%s) was lost: %s", peer, what, error.message)
                return
        if envelope.kind != pb.ENVELOPE_KIND_REQUEST:
            return
        if answer is None:
            answer = pb.Envelope(kind=pb.ENVELOPE_KIND_REPLY)
        if answer.kind != pb.ENVELOPE_KIND_REPLY:
            answer.kind = pb.ENVELOPE_KIND_REPLY
        if answer.correlation_id != envelope.correlation_id:
            answer.correlation_id = envelope.correlation_id
        data = body_frame(answer)
        if not self._reply_nowait(conn, peer, data):
            try:
                await conn.send_frame(data)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                log.debug("cannot reply to %s: %s", peer, exc)

    async def _handle_extension(self, conn: Connection, peer: str, ext: pb.Extension) -> None:
        answer = pb.Extension(
            kind=ext.kind, envelope_kind=pb.ENVELOPE_KIND_REPLY, correlation_id=ext.correlation_id
        )
        try:
            handler = self._extensions.get(ext.kind)
            if handler is None:
                raise UnknownExtension(f"no handler for extension {ext.kind!r}")
            try:
                answer.data = await handler(ext.data, peer) or b""
            except RemoteError:
                raise
            except Exception as exc:
                raise RemoteHandlerError(type(exc).__qualname__, str(exc)) from exc
        except Exception as exc:
            answer.error.CopyFrom(self._failure(peer, f"extension {ext.kind}", exc))
        if ext.envelope_kind == pb.ENVELOPE_KIND_REQUEST:
            await self._reply(conn, peer, answer)


RemoteServer.__module__ = "cinema.remote"
