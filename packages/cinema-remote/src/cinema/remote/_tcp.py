"""The TCP transport (``tcp://host:port`` or plain ``host:port``), registered as a plugin."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable
from typing import ClassVar, final

import anyio
from anyio.abc import ByteStream, SocketAttribute

from cinema.abc import Connection, Listener, Transport, hookimpl

from ._asyncio_streams import AsyncioStreamListener, on_asyncio, open_asyncio_connection
from ._framing import StreamConnection
from ._listener import AcceptLoop, QuietTLSListener, StreamListener

__all__ = ["TcpTransport", "cinema_transports", "parse_host_port"]


def parse_host_port(address: str) -> tuple[str, int]:
    """Split ``"host:port"`` (``"[::1]:port"`` for IPv6) into its parts.

    :raises ValueError: the address is malformed.
    """
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"expected 'host:port', got {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"port out of range in {address!r}")
    return host, port


def _format(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _peer_of_socket(sock: socket.socket) -> str:
    addr = sock.getpeername()
    return _format(str(addr[0]), int(addr[1])) if isinstance(addr, tuple) else str(addr)


def _peer(stream: ByteStream) -> str:
    addr = stream.extra(SocketAttribute.remote_address)
    if isinstance(addr, tuple):
        return _format(str(addr[0]), int(addr[1]))
    return str(addr)


@final
class TcpTransport(Transport):
    """TCP, optionally with TLS. Addresses: ``"tcp://host:port"`` or ``"host:port"``.

    Nagle's algorithm is off (anyio's default) so that small request frames go out at once.
    """

    scheme: ClassVar[str] = "tcp"

    async def connect(
        self, address: str, *, ssl_context: ssl.SSLContext | None = None
    ) -> Connection:
        host, port = parse_host_port(self.split_scheme(address))
        if on_asyncio():
            return await self._connect_asyncio(host, port, ssl_context)
        stream: ByteStream
        if ssl_context is None:
            stream = await anyio.connect_tcp(host, port)
        else:
            stream = await anyio.connect_tcp(host, port, ssl_context=ssl_context, tls=True)
        return StreamConnection(stream, remote_address=_format(host, port))

    async def listen(self, address: str, *, ssl_context: ssl.SSLContext | None = None) -> Listener:
        host, port = parse_host_port(self.split_scheme(address))
        multi = await anyio.create_tcp_listener(local_host=host, local_port=port)
        local = multi.listeners[0].extra(SocketAttribute.local_address)
        assert isinstance(local, tuple)  # an IP socket's address is (host, port, ...)
        bound = _format(str(local[0]), int(local[1]))
        if on_asyncio():
            return AsyncioStreamListener(
                multi.listeners, bound, _peer_of_socket, ssl_context=ssl_context
            )
        accepting = AcceptLoop(multi.listeners)
        if ssl_context is None:
            return StreamListener(accepting, bound, _peer)
        # The handshake runs in each connection's own task, so a slow client cannot stall
        # accepting others.
        tls = QuietTLSListener(
            accepting, ssl_context, standard_compatible=False, handshake_timeout=10
        )
        return StreamListener(tls, bound, _peer)

    async def _connect_asyncio(
        self, host: str, port: int, ssl_context: ssl.SSLContext | None
    ) -> Connection:
        return await open_asyncio_connection(
            _format(host, port), host=host, port=port, ssl_context=ssl_context
        )

    def __repr__(self) -> str:
        return "TcpTransport()"


TcpTransport.__module__ = "cinema.remote"


@hookimpl
def cinema_transports() -> Iterable[Transport]:
    """Plugin hook: Cinema's TCP transport."""
    return [TcpTransport()]
