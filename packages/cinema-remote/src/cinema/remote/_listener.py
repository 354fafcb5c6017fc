"""A :class:`cinema.abc.Listener` over anyio byte-stream listeners (TCP, Unix, TLS)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import ByteStream
from anyio.abc import Listener as AnyioListener

from cinema.abc import Connection, Listener

from ._framing import DEFAULT_MAX_FRAME_SIZE, StreamConnection

__all__ = ["StreamListener"]

log = logging.getLogger("cinema.remote")


class StreamListener(Listener):
    """Serves framed :class:`StreamConnection` objects from an anyio byte-stream listener.

    :param listener: the anyio listener (e.g. from ``anyio.create_tcp_listener``).
    :param address: the bound address, as ``Transport.connect`` accepts it.
    :param describe: returns a peer description for a freshly accepted stream (for logs).
    """

    def __init__(
        self,
        listener: AnyioListener[ByteStream],
        address: str,
        describe: Callable[[ByteStream], str] = lambda _stream: "?",
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        self._listener = listener
        self._address = address
        self._describe = describe
        self._max_frame_size = max_frame_size

    @property
    def address(self) -> str:
        return self._address

    async def serve(self, handler: Callable[[Connection], Awaitable[None]]) -> None:
        async def accepted(stream: ByteStream) -> None:
            try:
                peer = self._describe(stream)
            except (OSError, anyio.TypedAttributeLookupError):
                # The peer may already be gone by the time we ask for its address (trio then
                # has no address to give at all).
                peer = "?"
            conn = StreamConnection(
                stream, max_frame_size=self._max_frame_size, remote_address=peer
            )
            try:
                await handler(conn)
            finally:
                await conn.aclose()

        await self._listener.serve(accepted)

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._listener.aclose()


StreamListener.__module__ = "cinema.remote"
