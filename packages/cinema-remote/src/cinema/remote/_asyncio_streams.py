"""Connections and listeners on asyncio's own streams, used when running on asyncio.

anyio's socket streams take an extra trip through the event loop for every send and register
and unregister the socket with the selector for every receive; for small request/reply frames
that doubles the cost of a round trip. On asyncio, TCP and Unix connections therefore use
``asyncio.StreamReader``/``StreamWriter`` directly: a send is a synchronous ``write`` into the
transport (awaiting only when its buffer is full), a receive waits only when no data is
buffered. On trio, the anyio-based :class:`StreamConnection` is used.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, cast

import anyio
from anyio.abc import Listener as AnyioListener
from anyio.abc import SocketAttribute

from cinema.abc import Connection, Listener

from ._errors import FrameTooLarge
from ._framing import _HEADER, DEFAULT_MAX_FRAME_SIZE, MAX_WIRE_FRAME_SIZE, FrameDecoder
from ._peerlog import clip

__all__ = ["AsyncioStreamConnection", "AsyncioStreamListener", "on_asyncio"]

log = logging.getLogger("cinema.remote")

# Stop reading from the socket while this many received bytes wait to be taken as frames;
# start again below the low mark.
_READ_HIGH_WATER: Final = 1024 * 1024
_READ_LOW_WATER: Final = 256 * 1024
_TLS_HANDSHAKE_TIMEOUT: Final = 10.0
# How long aclose() lets the transport flush what is buffered before dropping it.
_CLOSE_GRACE: Final = 1.0
# Frames sent in a row are written together, this many at most per write.
_BATCH_FRAMES: Final = 4


def on_asyncio() -> bool:
    """Whether the current task runs on the asyncio backend (under trio there is no running
    asyncio loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _FrameProtocol(asyncio.Protocol):
    """Feeds received bytes straight into a :class:`FrameDecoder`; tracks flow control."""

    def __init__(self, max_frame_size: int) -> None:
        self.decoder = FrameDecoder(max_frame_size)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.error: FrameTooLarge | None = None
        self.eof = False
        self.lost = False
        self.lost_exc: BaseException | None = None
        self.reading_paused = False
        self.writing_paused = False
        self.drained: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without deriving from it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.decoder.feed(data)
        except FrameTooLarge as exc:
            # Refused on the length prefix: stop reading, the receiver raises it.
            self.error = exc
            self._pause_reading()
        decoder = self.decoder
        if decoder.buffered > _READ_HIGH_WATER and decoder.has_frame():
            # Whole frames pile up faster than they are taken: wait for the receiver. (A
            # partial frame alone never pauses reading, however large: it can only complete
            # with more bytes, and its size is bounded by max_frame_size.)
            self._pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        # Keep the transport open for writing: a half-closed peer may still read its replies
        # (TLS transports cannot do that and ignore the answer).
        return self.transport is not None and self.transport.get_extra_info("sslcontext") is None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.lost_exc = exc
        self._wake()
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(None)
        self.resume_writing()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        self.drained = None

    def _pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def consumed(self) -> None:
        decoder = self.decoder
        if (
            self.reading_paused
            and self.error is None
            and (decoder.buffered <= _READ_LOW_WATER or not decoder.has_frame())
        ):
            self.reading_paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class AsyncioStreamConnection(Connection):
    """A length-prefixed frame connection over an asyncio transport.

    Received bytes go straight into a :class:`FrameDecoder` (so ``receive_frame`` is
    cancel-safe and refuses oversized frames on their length prefix); frames are written with
    ``transport.write``: a frame sent after one was received goes out at once, frames sent in
    a row go out together in one write at the start of the next event-loop pass.
    """

    def __init__(
        self,
        protocol: _FrameProtocol,
        transport: asyncio.Transport,
        *,
        remote_address: str = "?",
    ) -> None:
        self._protocol = protocol
        self._transport = transport
        self._remote_address = remote_address
        self._closed = False
        # None: the next frame is written at once. A list: a frame went out since the last
        # one arrived; further ones are collected here and written together by _flush.
        self._batch: list[bytes] | None = None

    @property
    def remote_address(self) -> str:
        return self._remote_address

    @property
    def max_frame_size(self) -> int:
        """The largest frame ``receive_frame`` accepts; larger ones raise ``FrameTooLarge``."""
        return self._protocol.decoder.max_frame_size

    @max_frame_size.setter
    def max_frame_size(self, value: int) -> None:
        self._protocol.decoder.max_frame_size = value

    def has_frame(self) -> bool:
        """Whether :meth:`receive_frame` would return a frame without waiting."""
        return self._protocol.decoder.has_frame()

    def receive_frame_nowait(self) -> bytes | None:
        """The next frame if one is buffered whole (else ``None``), without awaiting: a
        pipelined peer's requests (or replies) are taken out of one read this way, with no
        coroutine per frame."""
        if self._closed:
            return None
        protocol = self._protocol
        frame = protocol.decoder.next_frame()
        if frame is not None:
            protocol.consumed()
            self._turn()
        return frame

    async def send_frame(self, frame: bytes) -> None:
        protocol = self._protocol
        while not self.send_frame_nowait(frame):
            # The peer reads slowly: wait for the transport's buffer to drain.
            if protocol.drained is None:
                protocol.drained = asyncio.get_running_loop().create_future()
            await asyncio.shield(protocol.drained)
            if protocol.lost:
                raise anyio.BrokenResourceError("the connection was lost")

    def send_frame_nowait(self, frame: bytes) -> bool:
        """Write (or queue, see :meth:`send_frame`) one frame without awaiting, unless the
        peer reads too slowly: replies and requests need no coroutine of their own this way.

        :returns: ``True`` once written or queued; ``False`` (nothing written) while the
            transport's buffer is full: then ``await send_frame(frame)`` instead.
        :raises anyio.ClosedResourceError, anyio.BrokenResourceError: as ``send_frame``.
        """
        if self._closed:
            raise anyio.ClosedResourceError
        protocol = self._protocol
        if protocol.writing_paused and not protocol.lost:
            return False
        transport = self._transport
        if transport.is_closing():
            raise anyio.BrokenResourceError("the connection is closed")
        size = len(frame)
        if size > MAX_WIRE_FRAME_SIZE:
            raise FrameTooLarge(size, MAX_WIRE_FRAME_SIZE)
        data = _HEADER.pack(size) + frame
        batch = self._batch
        if batch is None:
            # The first frame since the last one received goes out at once. (For a
            # request/reply exchange, that is every frame.)
            transport.write(data)
            self._batch = []
        else:
            # More frames before anything came back (pipelining, many replies): they go out
            # together, in one write at the start of the next event-loop pass; but never more
            # than a few at a time, so that the peer starts on the first ones while this side
            # makes the rest (both sides then work in parallel rather than in turns).
            if not batch:
                asyncio.get_running_loop().call_soon(self._flush)
            batch.append(data)
            if len(batch) >= _BATCH_FRAMES:
                transport.write(b"".join(batch))
                batch.clear()
        return True

    def _flush(self) -> None:
        batch, self._batch = self._batch, None
        if batch and not self._transport.is_closing():
            self._transport.write(b"".join(batch))

    def _turn(self) -> None:
        """A frame arrived: the next frame sent goes out at once again (unless some are
        already waiting for a flush, which keeps them in order)."""
        if self._batch is not None and not self._batch:
            self._batch = None

    async def receive_frame(self) -> bytes:
        protocol = self._protocol
        decoder = protocol.decoder
        while True:
            if self._closed:
                raise anyio.ClosedResourceError
            frame = decoder.next_frame()
            if frame is not None:
                protocol.consumed()
                self._turn()
                return frame
            if protocol.error is not None:
                raise protocol.error
            if protocol.eof or protocol.lost:
                if decoder.buffered:
                    raise anyio.BrokenResourceError(
                        f"connection closed in the middle of a frame ({decoder.buffered} bytes"
                        " buffered)"
                    )
                if protocol.lost_exc is not None:
                    raise anyio.BrokenResourceError(str(protocol.lost_exc)) from (protocol.lost_exc)
                raise anyio.EndOfStream
            waiter = asyncio.get_running_loop().create_future()
            protocol.waiter = waiter
            try:
                await waiter
            finally:
                protocol.waiter = None

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._flush()
        self._protocol._wake()
        self._transport.close()
        # Give the transport a moment to flush and report the connection lost; a peer that
        # does not read gets no longer than that (the rest is dropped).
        protocol = self._protocol
        if not protocol.lost:
            protocol.closed = asyncio.get_running_loop().create_future()
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_GRACE):
                await protocol.closed
            if not protocol.lost:
                self._transport.abort()


async def open_asyncio_connection(
    remote_address: str,
    *,
    sock: socket.socket | None = None,
    host: str | None = None,
    port: int | None = None,
    path: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    server_side: bool = False,
) -> AsyncioStreamConnection:
    """Connect to ``host:port`` or ``path`` (Unix), or wrap an accepted ``sock``; with an
    optional TLS handshake."""
    loop = asyncio.get_running_loop()
    protocol = _FrameProtocol(DEFAULT_MAX_FRAME_SIZE)
    timeout = _TLS_HANDSHAKE_TIMEOUT if ssl_context else None
    transport: asyncio.BaseTransport
    if server_side:
        assert sock is not None
        transport, _ = await loop.connect_accepted_socket(
            lambda: protocol, sock, ssl=ssl_context, ssl_handshake_timeout=timeout
        )
    elif path is not None:
        transport, _ = await loop.create_unix_connection(lambda: protocol, path)
    else:
        assert host is not None
        assert port is not None
        # Happy eyeballs is a keyword of asyncio's own loop only (uvloop has none).
        extra: dict[str, Any] = (
            {"happy_eyeballs_delay": 0.25} if isinstance(loop, asyncio.BaseEventLoop) else {}
        )
        transport, _ = await loop.create_connection(
            lambda: protocol,
            host,
            port,
            ssl=ssl_context,
            server_hostname=host if ssl_context else None,
            ssl_handshake_timeout=timeout,
            **extra,
        )
        raw = transport.get_extra_info("socket")
        if raw is not None and raw.family in (socket.AF_INET, socket.AF_INET6):
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return AsyncioStreamConnection(protocol, transport, remote_address=remote_address)


class AsyncioStreamListener(Listener):
    """Accepts on the sockets of an anyio listener (which did the binding) with asyncio.

    :param listeners: the bound anyio socket listeners (one per address family).
    :param address: the bound address, as ``Transport.connect`` accepts it.
    :param describe: the peer description of an accepted socket, for logs.
    """

    def __init__(
        self,
        listeners: Sequence[AnyioListener[Any]],
        address: str,
        describe: Callable[[socket.socket], str],
        *,
        ssl_context: ssl.SSLContext | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._listeners = listeners
        self._address = address
        self._describe = describe
        self._ssl_context = ssl_context
        self._on_close = on_close

    @property
    def address(self) -> str:
        return self._address

    async def serve(self, handler: Callable[[Connection], Awaitable[None]]) -> None:
        # Accepted sockets whose task has not started yet: closed here if cancellation comes
        # first, so none leaks.
        pending: set[socket.socket] = set()

        async def run(client: socket.socket) -> None:
            pending.discard(client)
            try:
                peer = self._describe(client)
            except OSError:
                peer = "?"
            try:
                conn = await open_asyncio_connection(
                    peer, sock=client, ssl_context=self._ssl_context, server_side=True
                )
            except (OSError, ssl.SSLError, TimeoutError) as exc:
                log.warning(
                    "connection from %s failed before it started: %s", peer, clip(repr(exc))
                )
                client.close()
                return
            try:
                await handler(conn)
            finally:
                await conn.aclose()

        async def accept_loop(sock: socket.socket, tg: anyio.abc.TaskGroup) -> None:
            while True:
                # Wait for readability, then accept without blocking: on CPython 3.11 a
                # cancelled loop.sock_accept can still accept the socket and leak it.
                await anyio.wait_readable(sock)
                try:
                    client, _ = sock.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    # Out of file descriptors and the like: log, breathe, go on accepting.
                    log.warning("accept failed: %r", exc)
                    await anyio.sleep(0.1)
                    continue
                client.setblocking(False)
                if client.family in (socket.AF_INET, socket.AF_INET6):
                    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                pending.add(client)
                tg.start_soon(run, client)

        try:
            async with anyio.create_task_group() as tg:
                for listener in self._listeners:
                    sock = listener.extra(SocketAttribute.raw_socket)
                    tg.start_soon(accept_loop, sock, tg)
        finally:
            for client in pending:
                client.close()
            pending.clear()

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            for listener in self._listeners:
                await listener.aclose()
            if self._on_close is not None:
                await self._on_close()
