"""The Unix domain socket transport (``unix:///path/to/socket``), registered as a plugin."""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import ClassVar, final

import anyio

from cinema.abc import Connection, Listener, Transport, hookimpl

from ._asyncio_streams import AsyncioStreamListener, on_asyncio, open_asyncio_connection
from ._framing import StreamConnection
from ._listener import AcceptLoop, StreamListener

__all__ = ["UnixTransport", "cinema_transports"]


@final
class UnixTransport(Transport):
    """Unix domain sockets. Addresses: ``"unix:///run/app.sock"`` or ``"unix://relative.sock"``.

    Only processes that may open the socket file can connect, so file permissions are the access
    control; TLS is not offered (``ValueError``).
    """

    scheme: ClassVar[str] = "unix"

    def _path(self, address: str) -> str:
        if not address.startswith("unix://"):
            raise ValueError(f"expected 'unix://<path>', got {address!r}")
        path = address.removeprefix("unix://")
        if not path:
            raise ValueError(f"no socket path in {address!r}")
        return path

    async def connect(
        self, address: str, *, ssl_context: ssl.SSLContext | None = None
    ) -> Connection:
        if ssl_context is not None:
            raise ValueError("the unix transport does not do TLS")
        path = self._path(address)
        if on_asyncio():
            return await open_asyncio_connection(address, path=path)
        stream = await anyio.connect_unix(path)
        return StreamConnection(stream, remote_address=address)

    async def listen(self, address: str, *, ssl_context: ssl.SSLContext | None = None) -> Listener:
        if ssl_context is not None:
            raise ValueError("the unix transport does not do TLS")
        path = self._path(address)
        listener = await anyio.create_unix_listener(path)
        if on_asyncio():
            return AsyncioStreamListener([listener], address, lambda _sock: f"{address} (peer)")
        return StreamListener(AcceptLoop([listener]), address, lambda _stream: f"{address} (peer)")

    def __repr__(self) -> str:
        return "UnixTransport()"


UnixTransport.__module__ = "cinema.remote"


@hookimpl
def cinema_transports() -> Iterable[Transport]:
    """Plugin hook: Cinema's Unix domain socket transport."""
    return [UnixTransport()]
