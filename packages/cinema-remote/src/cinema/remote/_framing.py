"""Length-prefixed framing over a byte stream: a 4-byte big-endian length, then the frame."""

from __future__ import annotations

import logging
import struct
from typing import Final

import anyio
from anyio.abc import ByteStream

from cinema.abc import Connection

from ._errors import FrameTooLarge

__all__ = ["DEFAULT_MAX_FRAME_SIZE", "FrameDecoder", "StreamConnection", "encode_frame"]

log = logging.getLogger("cinema.remote")

#: Frames larger than this (16 MiB) are refused unless configured otherwise.
DEFAULT_MAX_FRAME_SIZE: Final = 16 * 1024 * 1024

_HEADER: Final = struct.Struct(">I")
_READ_SIZE: Final = 65536


def encode_frame(frame: bytes, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> bytes:
    """Return ``frame`` with its 4-byte big-endian length prefix.

    :raises FrameTooLarge: the frame exceeds ``max_frame_size``.
    """
    if len(frame) > max_frame_size:
        raise FrameTooLarge(len(frame), max_frame_size)
    return _HEADER.pack(len(frame)) + frame


class FrameDecoder:
    """Incremental decoder: feed it bytes as they arrive, take whole frames out.

    The length prefix is checked against ``max_frame_size`` as soon as its 4 bytes are in, before
    any buffer for the body is grown, so a hostile prefix cannot make us allocate.
    """

    __slots__ = ("_buffer", "_max")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if max_frame_size < 0 or max_frame_size > 0xFFFFFFFF:
            raise ValueError(f"max_frame_size must be in 0..2**32-1, not {max_frame_size}")
        self._buffer = bytearray()
        self._max = max_frame_size

    def feed(self, data: bytes) -> None:
        """Append received bytes.

        :raises FrameTooLarge: a pending frame's length prefix exceeds the limit.
        """
        self._buffer += data
        self._check_header()

    def _check_header(self) -> None:
        if len(self._buffer) >= 4:
            (size,) = _HEADER.unpack_from(self._buffer)
            if size > self._max:
                raise FrameTooLarge(size, self._max)

    def next_frame(self) -> bytes | None:
        """Remove and return the next complete frame, or ``None`` if none is complete yet."""
        buffer = self._buffer
        if len(buffer) < 4:
            return None
        (size,) = _HEADER.unpack_from(buffer)
        end = 4 + size
        if len(buffer) < end:
            return None
        frame = bytes(buffer[4:end])
        del buffer[:end]
        self._check_header()
        return frame

    @property
    def max_frame_size(self) -> int:
        """The largest accepted frame body, in bytes."""
        return self._max

    @max_frame_size.setter
    def max_frame_size(self, value: int) -> None:
        if value < 0 or value > 0xFFFFFFFF:
            raise ValueError(f"max_frame_size must be in 0..2**32-1, not {value}")
        self._max = value
        self._check_header()

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as frames (a partial frame at end of stream)."""
        return len(self._buffer)


class StreamConnection(Connection):
    """A :class:`cinema.abc.Connection` over any anyio byte stream, with length-prefix framing.

    Transport plugins over a byte-oriented medium can return one of these from ``connect`` and
    hand them to the listener's handler. ``receive_frame`` is cancel-safe: bytes already read stay
    buffered for the next call. ``send_frame`` writes each frame whole even if several tasks send
    at once, and is shielded from cancellation so that a frame is never half-written.

    :param stream: the byte stream (e.g. ``anyio.connect_tcp(...)``'s result).
    :param max_frame_size: refuse received frames larger than this (``FrameTooLarge``).
    :param remote_address: description of the peer for log lines.
    """

    def __init__(
        self,
        stream: ByteStream,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        remote_address: str = "?",
    ) -> None:
        self._stream = stream
        self._decoder = FrameDecoder(max_frame_size)
        self._send_lock = anyio.Lock()
        self._remote_address = remote_address
        self._closed = False

    @property
    def remote_address(self) -> str:
        return self._remote_address

    @property
    def max_frame_size(self) -> int:
        """The largest frame ``receive_frame`` accepts; larger ones raise ``FrameTooLarge``."""
        return self._decoder.max_frame_size

    @max_frame_size.setter
    def max_frame_size(self, value: int) -> None:
        self._decoder.max_frame_size = value

    @property
    def stream(self) -> ByteStream:
        """The underlying byte stream (e.g. to read TLS attributes)."""
        return self._stream

    async def send_frame(self, frame: bytes) -> None:
        data = encode_frame(frame)
        lock = self._send_lock
        try:
            # The uncontended case skips acquire()'s scheduling checkpoint.
            lock.acquire_nowait()
        except anyio.WouldBlock:
            await lock.acquire()
        try:
            with anyio.CancelScope(shield=True):
                await self._stream.send(data)
        finally:
            lock.release()

    async def receive_frame(self) -> bytes:
        while True:
            frame = self._decoder.next_frame()
            if frame is not None:
                return frame
            try:
                data = await self._stream.receive(_READ_SIZE)
            except anyio.EndOfStream:
                if self._decoder.buffered:
                    raise anyio.BrokenResourceError(
                        f"connection closed in the middle of a frame"
                        f" ({self._decoder.buffered} bytes buffered)"
                    ) from None
                raise
            except OSError as exc:
                raise anyio.BrokenResourceError(str(exc)) from exc
            self._decoder.feed(data)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            try:
                await self._stream.aclose()
            except (OSError, anyio.BrokenResourceError):
                log.debug("error closing connection to %s", self._remote_address, exc_info=True)


for _cls in (FrameDecoder, StreamConnection):
    _cls.__module__ = "cinema.remote"
