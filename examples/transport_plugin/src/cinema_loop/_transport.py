"""In-process transport over anyio memory object streams."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from typing import ClassVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from cinema.abc import Connection, Listener, Transport

# Frames buffered per direction before send_frame waits (backpressure).
_BUFFER = 256

# Listening endpoints of this process, by name. One process = one "network".
_endpoints: dict[str, LoopListener] = {}


class LoopConnection(Connection):
    """One end of an in-process connection; each frame is one stream item."""

    def __init__(
        self,
        send: MemoryObjectSendStream[bytes],
        receive: MemoryObjectReceiveStream[bytes],
        peer: str,
    ) -> None:
        self._send = send
        self._receive = receive
        self._peer = peer

    @property
    def remote_address(self) -> str:
        return self._peer

    async def send_frame(self, frame: bytes) -> None:
        # Memory streams already raise anyio.BrokenResourceError (peer closed) and
        # anyio.ClosedResourceError (we closed), as the Connection contract asks.
        await self._send.send(frame)

    async def receive_frame(self) -> bytes:
        # EndOfStream when the peer closed; cancel-safe (an item is never half-received).
        return await self._receive.receive()

    async def aclose(self) -> None:
        await self._send.aclose()
        await self._receive.aclose()


def _pair(name: str) -> tuple[LoopConnection, LoopConnection]:
    to_server, server_inbox = anyio.create_memory_object_stream[bytes](_BUFFER)
    to_client, client_inbox = anyio.create_memory_object_stream[bytes](_BUFFER)
    client = LoopConnection(to_server, client_inbox, f"loop://{name}")
    server = LoopConnection(to_client, server_inbox, f"loop://{name} (client)")
    return client, server


class LoopListener(Listener):
    def __init__(self, name: str) -> None:
        self._name = name
        self._incoming, self._accept = anyio.create_memory_object_stream[LoopConnection](_BUFFER)

    @property
    def address(self) -> str:
        return f"loop://{self._name}"

    def _offer(self, conn: LoopConnection) -> None:
        try:
            self._incoming.send_nowait(conn)
        except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise ConnectionRefusedError(f"loop://{self._name} is not accepting") from None

    async def serve(self, handler: Callable[[Connection], Awaitable[None]]) -> None:
        async def run(conn: LoopConnection) -> None:
            try:
                await handler(conn)
            finally:
                await conn.aclose()

        async with anyio.create_task_group() as tg:
            async for conn in self._accept:
                tg.start_soon(run, conn)

    async def aclose(self) -> None:
        if _endpoints.get(self._name) is self:
            del _endpoints[self._name]
        await self._incoming.aclose()
        await self._accept.aclose()


class LoopTransport(Transport):
    """Addresses: ``loop://<name>``. TLS makes no sense in-process (``ValueError``)."""

    scheme: ClassVar[str] = "loop"

    async def connect(
        self, address: str, *, ssl_context: ssl.SSLContext | None = None
    ) -> Connection:
        if ssl_context is not None:
            raise ValueError("loop:// connections do not do TLS")
        name = self.split_scheme(address)
        listener = _endpoints.get(name)
        if listener is None:
            raise ConnectionRefusedError(f"nothing listens at loop://{name}")
        client, server = _pair(name)
        listener._offer(server)
        return client

    async def listen(self, address: str, *, ssl_context: ssl.SSLContext | None = None) -> Listener:
        if ssl_context is not None:
            raise ValueError("loop:// connections do not do TLS")
        name = self.split_scheme(address)
        if name in _endpoints:
            raise OSError(f"loop://{name} is already in use")
        listener = _endpoints[name] = LoopListener(name)
        return listener
