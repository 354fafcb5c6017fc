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
import contextlib
import logging
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import anyio
import sniffio
from anyio.abc import Listener as AnyioListener
from anyio.abc import SocketAttribute

from cinema.abc import Connection, Listener

from ._errors import FrameTooLarge
from ._framing import DEFAULT_MAX_FRAME_SIZE, encode_frame

__all__ = ["AsyncioStreamConnection", "AsyncioStreamListener", "on_asyncio"]

log = logging.getLogger("cinema.remote")

_HEADER: Final = struct.Struct(">I")
# Await the transport's drain only above this many buffered bytes.
_HIGH_WATER: Final = 256 * 1024
_TLS_HANDSHAKE_TIMEOUT: Final = 10.0


def on_asyncio() -> bool:
    """Whether the current task runs on the asyncio backend."""
    try:
        return sniffio.current_async_library() == "asyncio"
    except sniffio.AsyncLibraryNotFoundError:
        return False


class AsyncioStreamConnection(Connection):
    """A length-prefixed frame connection over an asyncio stream pair.

    ``receive_frame`` is cancel-safe: ``readexactly`` consumes nothing until it can return
    everything, and a length prefix already read is kept for the next call.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        remote_address: str = "?",
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._max = max_frame_size
        self._remote_address = remote_address
        self._body_size: int | None = None
        self._closed = False
        # Frames sent after the first in one event-loop pass, written together (or None when
        # nothing was sent in this pass yet).
        self._batch: list[bytes] | None = None

    @property
    def remote_address(self) -> str:
        return self._remote_address

    @property
    def max_frame_size(self) -> int:
        """The largest frame ``receive_frame`` accepts; larger ones raise ``FrameTooLarge``."""
        return self._max

    @max_frame_size.setter
    def max_frame_size(self, value: int) -> None:
        self._max = value

    async def send_frame(self, frame: bytes) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        writer = self._writer
        transport = writer.transport
        if transport.is_closing():
            raise anyio.BrokenResourceError("the connection is closed")
        data = encode_frame(frame)
        if self._batch is not None:
            # Not the first frame in this event-loop pass: it goes out with the others in one
            # write at the start of the next pass (64 replies, 1 system call).
            self._batch.append(data)
        else:
            # The transport takes the whole frame into its buffer: frames never interleave.
            writer.write(data)
            self._batch = []
            asyncio.get_running_loop().call_soon(self._flush)
        if transport.get_write_buffer_size() > _HIGH_WATER:
            try:
                await writer.drain()
            except (ConnectionError, OSError) as exc:
                raise anyio.BrokenResourceError(str(exc)) from exc

    def _flush(self) -> None:
        batch, self._batch = self._batch, None
        if batch and not self._writer.transport.is_closing():
            self._writer.write(b"".join(batch))

    async def receive_frame(self) -> bytes:
        if self._closed:
            raise anyio.ClosedResourceError
        reader = self._reader
        try:
            if self._body_size is None:
                try:
                    header = await reader.readexactly(4)
                except asyncio.IncompleteReadError as exc:
                    if not exc.partial:
                        raise anyio.EndOfStream from None
                    raise anyio.BrokenResourceError(
                        "connection closed in the middle of a frame header"
                    ) from None
                (size,) = _HEADER.unpack(header)
                if size > self._max:
                    raise FrameTooLarge(size, self._max)
                self._body_size = size
            try:
                body = await reader.readexactly(self._body_size)
            except asyncio.IncompleteReadError as exc:
                raise anyio.BrokenResourceError(
                    f"connection closed in the middle of a frame ({len(exc.partial)} of"
                    f" {self._body_size} bytes)"
                ) from None
        except (ConnectionError, OSError) as exc:
            raise anyio.BrokenResourceError(str(exc)) from exc
        self._body_size = None
        return body

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._flush()
        self._writer.close()
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(1),
            contextlib.suppress(ConnectionError, OSError, ssl.SSLError),
        ):
            await self._writer.wait_closed()


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
    reader = asyncio.StreamReader(limit=2**16, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
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
        transport, _ = await loop.create_connection(
            lambda: protocol,
            host,
            port,
            ssl=ssl_context,
            server_hostname=host if ssl_context else None,
            ssl_handshake_timeout=timeout,
            happy_eyeballs_delay=0.25,
        )
        raw = transport.get_extra_info("socket")
        if raw is not None and raw.family in (socket.AF_INET, socket.AF_INET6):
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    assert isinstance(transport, asyncio.WriteTransport)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return AsyncioStreamConnection(reader, writer, remote_address=remote_address)


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
        loop = asyncio.get_running_loop()

        async def run(client: socket.socket) -> None:
            try:
                peer = self._describe(client)
            except OSError:
                peer = "?"
            try:
                conn = await open_asyncio_connection(
                    peer, sock=client, ssl_context=self._ssl_context, server_side=True
                )
            except (OSError, ssl.SSLError, TimeoutError) as exc:
                log.warning("connection from %s failed before it started: %r", peer, exc)
                client.close()
                return
            try:
                await handler(conn)
            finally:
                await conn.aclose()

        async def accept_loop(sock: socket.socket, tg: anyio.abc.TaskGroup) -> None:
            while True:
                try:
                    client, _ = await loop.sock_accept(sock)
                except OSError as exc:
                    # Out of file descriptors and the like: log, breathe, go on accepting.
                    log.warning("accept failed: %r", exc)
                    await anyio.sleep(0.1)
                    continue
                if client.family in (socket.AF_INET, socket.AF_INET6):
                    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                tg.start_soon(run, client)

        async with anyio.create_task_group() as tg:
            for listener in self._listeners:
                sock = listener.extra(SocketAttribute.raw_socket)
                tg.start_soon(accept_loop, sock, tg)

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            for listener in self._listeners:
                await listener.aclose()
            if self._on_close is not None:
                await self._on_close()
