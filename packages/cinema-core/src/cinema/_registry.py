"""What the dispatcher needs of its system: names, top-level actors, live count, dead letters.

The dispatcher is given this object, never the :class:`cinema.ActorSystem`: what it may touch
of the system is exactly what is here. The system's public registry and dead-letter methods
read and write it too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from ._message import DeadLetter
from ._states import STOPPING
from ._stats import Counters

if TYPE_CHECKING:
    from ._addr import Addr

logger = logging.getLogger("cinema")

#: Dead letters logged per second at most (at debug level); the rest are counted in one line.
DEAD_LETTER_LOG_RATE = 10


def safe_repr(obj: object) -> str:
    """``repr(obj)``, or a stand-in if the object's own ``__repr__`` raises."""
    try:
        return repr(obj)
    except Exception:
        return f"<{type(obj).__qualname__} (repr failed)>"


class Registry:
    """Names, top-level actors, live actors and dead letters of one system."""

    def __init__(self) -> None:
        self.names: dict[str, Addr[Any]] = {}
        self.top: dict[Any, None] = {}  # top-level actors' records, in spawn order
        self.live = 0
        # Set while the system waits for its last actor to stop.
        self.all_stopped: anyio.Event | None = None
        # A KeyboardInterrupt or SystemExit raised by user code inside an actor: it ends the
        # system; ``scope`` is the system's task group scope, cancelled for it.
        self.fatal_exc: BaseException | None = None
        self.scope: anyio.CancelScope | None = None
        self.dead_letters = 0
        self.dead_counts: dict[str, int] = {}
        self.dead_subscribers: list[Any] = []
        self.counters = Counters()  # statistics: stopped actors' totals, failures, restarts
        # Queues a runtime message for an actor (the dispatcher's deliver), for subscribers.
        self.deliver: Callable[[Any, object], None] | None = None
        # Rate limit of the dead-letter log lines: the current one-second window.
        self._window = 0.0
        self._logged = 0
        self._unlogged = 0

    def finalized(self, ctx: Any) -> None:
        """An actor stopped for good: forget it."""
        ext = ctx._ext
        if ext is not None:
            addr = ctx._addr
            for name in ext.names:
                if self.names.get(name) is addr:
                    del self.names[name]
            ext.names.clear()
        if ctx._parent is None:
            self.top.pop(ctx, None)
        self.counters.fold(ctx)
        self.live -= 1
        if not self.live and self.all_stopped is not None:
            self.all_stopped.set()

    def fatal(self, exc: BaseException) -> None:
        """End the system because user code raised ``exc`` (KeyboardInterrupt, SystemExit)."""
        if self.fatal_exc is None:
            self.fatal_exc = exc
            if self.scope is not None:
                self.scope.cancel()  # cancels the user's block too; __aexit__ raises exc

    def dead_letter(self, msg: object, ctx: Any, reason: str) -> None:
        """``msg`` for ``ctx`` will never be handled: count, log, tell the subscribers."""
        self.dead_letters += 1
        counts = self.dead_counts
        counts[reason] = counts.get(reason, 0) + 1
        if logger.isEnabledFor(logging.DEBUG):
            self._log(msg, ctx, reason)
        subscribers = self.dead_subscribers
        if subscribers and type(msg) is not DeadLetter and self.deliver is not None:
            record = DeadLetter(msg, ctx._addr, reason)
            for sub in list(subscribers):
                if sub._state >= STOPPING:
                    subscribers.remove(sub)
                else:
                    self.deliver(sub, record)

    def _log(self, msg: object, ctx: Any, reason: str) -> None:
        # At most DEAD_LETTER_LOG_RATE lines a second, then one line saying how many were not
        # logged: a flood of dead letters must not become a flood of log lines.
        now = time.monotonic()
        if now - self._window >= 1.0:
            if self._unlogged:
                logger.debug("%d more dead letters were not logged", self._unlogged)
            self._window = now
            self._logged = self._unlogged = 0
        if self._logged < DEAD_LETTER_LOG_RATE:
            self._logged += 1
            logger.debug("dead letter (%s): %s for %r", reason, safe_repr(msg), ctx._addr)
        else:
            self._unlogged += 1
