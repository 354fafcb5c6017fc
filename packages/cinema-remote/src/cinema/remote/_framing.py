"""Length-prefixed framing over a byte stream: a 4-byte big-endian length, then the frame."""

from __future__ import annotations

import logging
import struct
from typing import Final

import anyio
from anyio.abc import ByteStream

from cinema.abc import Connection

from ._errors import FrameTooLarge

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "MAX_WIRE_FRAME_SIZE",
    "FrameDecoder",
    "StreamConnection",
    "encode_frame",
]

log = logging.getLogger("cinema.remote")

#: Frames larger than this (16 MiB) are refused unless configured otherwise.
DEFAULT_MAX_FRAME_SIZE: Final = 16 * 1024 * 1024

_HEADER: Final = struct.Struct(">I")
#: The largest frame the 4-byte length prefix can describe.
MAX_WIRE_FRAME_SIZE: Final = 0xFFFFFFFF
_READ_SIZE: Final = 65536
# Bytes of frames queued behind a write in progress before senders wait for it.
_MAX_QUEUED: Final = 1024 * 1024


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
            if size > self._max:
                # The limit was lowered after the prefix came in (see max_frame_size).
                raise FrameTooLarge(size, self._max)
            return None
        frame = bytes(buffer[4:end])
        del buffer[:end]
        # The next frame's prefix is checked when that frame is asked for (here) or when more
        # bytes come (feed), not now: this frame is delivered whatever follows it, and the
        # limit may change in between (the handshake's is lower than the connection's).
        return frame

    def has_frame(self) -> bool:
        """Whether :meth:`next_frame` would return a frame."""
        buffer = self._buffer
        return len(buffer) >= 4 and len(buffer) >= 4 + _HEADER.unpack_from(buffer)[0]

    @property
    def max_frame_size(self) -> int:
        """The largest accepted frame body, in bytes."""
        return self._max

    @max_frame_size.setter
    def max_frame_size(self, value: int) -> None:
        # Never raises for bytes already buffered: a frame over the new limit is refused by
        # the next call of next_frame (or feed), in the receiver's task, where it belongs.
        if value < 0 or value > 0xFFFFFFFF:
            raise ValueError(f"max_frame_size must be in 0..2**32-1, not {value}")
        self._max = value

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as frames (a partial frame at end of stream)."""
        return len(self._buffer)


class StreamConnection(Connection):
    """A :class:`cinema.abc.Connection` over any anyio byte stream, with length-prefix framing.

    Transport plugins over a byte-oriented medium can return one of these from ``connect`` and
    hand them to the listener's handler. ``receive_frame`` is cancel-safe: bytes already read stay
    buffered for the next call. ``send_frame`` writes each frame whole even if several tasks send
    at once, and is shielded from cancellation so that a frame is never half-written. While one
    task writes, frames sent by others are queued and written by that task right after, in
    order and in one batch; their ``send_frame`` returns once queued (up to 1 MiB queued,
    beyond which senders wait). If that write fails, the connection is broken for everyone.
    ``aclose`` ends a write in progress at once (the writer gets ``BrokenResourceError``).

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
        # Write combining: one task writes at a time; others queue their frames for it.
        self._flushing = False
        self._queue: list[bytes] = []
        self._queued = 0
        self._drained: anyio.Event | None = None
        self._remote_address = remote_address
        self._closed = False
        self._write_scope: anyio.CancelScope | None = None
        self._broken: str | None = None  # why nothing more can be written

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

    def has_frame(self) -> bool:
        """Whether :meth:`receive_frame` would return a frame without waiting."""
        return self._decoder.has_frame()

    def receive_frame_nowait(self) -> bytes | None:
        """The next frame if one is buffered whole (else ``None``), without awaiting."""
        if self._closed:
            return None
        return self._decoder.next_frame()

    @property
    def stream(self) -> ByteStream:
        """The underlying byte stream (e.g. to read TLS attributes)."""
        return self._stream

    def send_frame_nowait(self, frame: bytes) -> bool:
        """Queue ``frame`` behind the write in progress, if there is one and the queue has
        room, without awaiting (the writing task sends it next).

        :returns: whether it was queued; if not, ``await send_frame(frame)``.
        """
        if self._closed:
            raise anyio.ClosedResourceError
        if self._broken is not None:
            raise anyio.BrokenResourceError(self._broken)
        if not self._flushing or self._queued > _MAX_QUEUED:
            return False
        data = encode_frame(frame, MAX_WIRE_FRAME_SIZE)
        self._queue.append(data)
        self._queued += len(data)
        return True

    async def send_frame(self, frame: bytes) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        if self._broken is not None:
            raise anyio.BrokenResourceError(self._broken)
        data = encode_frame(frame, MAX_WIRE_FRAME_SIZE)
        if self._flushing:
            # Another task is writing: it writes this frame too, right after its own, together
            # with any others queued meanwhile (one system call for many small frames).
            self._queue.append(data)
            self._queued += len(data)
            while self._queued > _MAX_QUEUED and self._flushing:
                # The peer reads slowly: wait instead of buffering without bound.
                if self._drained is None:
                    self._drained = anyio.Event()
                await self._drained.wait()
            return
        self._flushing = True
        try:
            # Shielded from the caller's cancellation, so that a frame is never half-written;
            # but aclose() cancels this scope, so that closing never waits for a peer that does
            # not read.
            with anyio.CancelScope(shield=True) as scope:
                self._write_scope = scope
                await self._stream.send(data)
                while self._queue:
                    batch = b"".join(self._queue)
                    self._queue.clear()
                    self._queued = 0
                    self._wake_drained()
                    await self._stream.send(batch)
            if scope.cancel_called:
                self._broken = "the connection was closed during a write"
                raise anyio.BrokenResourceError(self._broken)
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            # Part of a frame may be out: nothing else can be written after it.
            if self._broken is None:
                self._broken = f"a write failed: {exc!r}"
            if isinstance(exc, OSError):
                raise anyio.BrokenResourceError(self._broken) from exc
            raise
        finally:
            self._write_scope = None
            self._flushing = False
            self._queue.clear()
            self._queued = 0
            self._wake_drained()

    def _wake_drained(self) -> None:
        if self._drained is not None:
            self._drained.set()
            self._drained = None

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
        if self._write_scope is not None:
            # A write blocked on a peer that does not read: give up on it.
            self._write_scope.cancel()
        with anyio.CancelScope(shield=True):
            try:
                await self._stream.aclose()
            except (OSError, anyio.BrokenResourceError):
                log.debug("error closing connection to %s", self._remote_address, exc_info=True)


for _cls in (FrameDecoder, StreamConnection):
    _cls.__module__ = "cinema.remote"
