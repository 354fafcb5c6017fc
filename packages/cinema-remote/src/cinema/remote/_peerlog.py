"""What a peer controls, made safe to log and to echo: clipped, escaped, rate-limited."""

from __future__ import annotations

import logging
from typing import Final, final

import anyio

__all__ = ["PEER_TEXT_LIMIT", "ConnectionLog", "clip"]

log = logging.getLogger("cinema.remote")

#: Peer-supplied strings are cut to this many characters in log lines and error replies.
PEER_TEXT_LIMIT: Final = 200

# Per connection: at most this many log lines per window; the rest are counted and summed up
# in one line when the window ends (or the connection does).
_BURST: Final = 10
_WINDOW: Final = 10.0


def clip(value: str | bytes, limit: int = PEER_TEXT_LIMIT) -> str:
    """``value`` as one printable line of bounded length: control characters, newlines and
    non-ASCII escaped (as ``repr`` does), cut after ``limit`` characters with a note of how
    many more there were."""
    cut = value[:limit]
    text = repr(cut)[1:-1] if isinstance(cut, str) else repr(cut)[2:-1]
    if len(value) > limit:
        text += f"...({len(value) - limit} more)"
    return text


@final
class ConnectionLog:
    """The log lines about one connection: peer faults at WARNING or below, at most a burst of
    ``_BURST`` per ``_WINDOW`` seconds, and a summary of what was suppressed.

    Every argument must already be bounded (pass peer strings through :func:`clip`).
    """

    __slots__ = ("_count", "_peer", "_suppressed", "_window_start")

    def __init__(self, peer: str) -> None:
        self._peer = clip(peer)
        self._window_start = -_WINDOW
        self._count = 0
        self._suppressed = 0

    @property
    def peer(self) -> str:
        """The peer's description, clipped and escaped."""
        return self._peer

    def log(
        self, level: int, message: str, *args: object, exc_info: BaseException | None = None
    ) -> None:
        """Log ``message % args`` about this peer (prefixed with it), unless over the rate."""
        if not log.isEnabledFor(level):
            return
        now = anyio.current_time()
        if now - self._window_start >= _WINDOW:
            self.flush()
            self._window_start = now
            self._count = 0
        if self._count >= _BURST:
            self._suppressed += 1
            return
        self._count += 1
        log.log(level, "%s: " + message, self._peer, *args, exc_info=exc_info)

    def debug(self, message: str, *args: object) -> None:
        self.log(logging.DEBUG, message, *args)

    def info(self, message: str, *args: object) -> None:
        self.log(logging.INFO, message, *args)

    def warning(self, message: str, *args: object) -> None:
        self.log(logging.WARNING, message, *args)

    def error(self, message: str, *args: object, exc_info: BaseException | None = None) -> None:
        """A fault of this server or its application (never of the peer), with a traceback."""
        self.log(logging.ERROR, message, *args, exc_info=exc_info)

    def flush(self) -> None:
        """Log how many lines were suppressed, if any (called when the connection ends)."""
        if self._suppressed:
            log.warning(
                "%s: %d more log lines about this connection were suppressed",
                self._peer,
                self._suppressed,
            )
            self._suppressed = 0
