"""A :class:`cinema.abc.Listener` over anyio byte-stream listeners (TCP, Unix, TLS)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
from anyio.abc import ByteStream, SocketListener, TaskGroup
from anyio.abc import Listener as AnyioListener
from anyio.streams.tls import TLSListener

from cinema.abc import Connection, Listener

from ._framing import DEFAULT_MAX_FRAME_SIZE, StreamConnection
from ._peerlog import clip

__all__ = ["AcceptLoop", "QuietTLSListener", "StreamListener"]

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


class AcceptLoop(AnyioListener[ByteStream]):
    """Accepts from anyio socket listeners in a loop that outlives a failed accept (out of
    file descriptors and the like: logged, and accepting goes on a moment later), where
    anyio's own ``serve`` would end with the error."""

    def __init__(self, listeners: Sequence[AnyioListener[Any]]) -> None:
        self._listeners = listeners

    async def serve(
        self,
        handler: Callable[[ByteStream], Any],
        task_group: TaskGroup | None = None,
    ) -> None:
        async with anyio.create_task_group() as tg:
            for listener in self._listeners:
                tg.start_soon(self._accept, listener, handler, task_group or tg)

    @staticmethod
    async def _accept(
        listener: AnyioListener[Any], handler: Callable[[ByteStream], Any], tg: TaskGroup
    ) -> None:
        if not isinstance(listener, SocketListener):
            await listener.serve(handler, tg)
            return
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                log.warning("accept failed: %r", exc)
                await anyio.sleep(0.1)
                continue
            tg.start_soon(handler, stream)

    async def aclose(self) -> None:
        for listener in self._listeners:
            await listener.aclose()

    @property
    def extra_attributes(self) -> dict[Any, Callable[[], Any]]:
        return {}


class QuietTLSListener(TLSListener):
    """anyio's TLS listener, but a client's failed handshake is the client's fault: one
    bounded WARNING line, not an ERROR with a traceback."""

    @staticmethod
    async def handle_handshake_error(exc: BaseException, stream: Any) -> None:
        await anyio.aclose_forcefully(stream)
        if isinstance(exc, anyio.get_cancelled_exc_class()) or not isinstance(exc, Exception):
            raise exc
        log.warning("TLS handshake with a client failed: %s", clip(repr(exc)))
