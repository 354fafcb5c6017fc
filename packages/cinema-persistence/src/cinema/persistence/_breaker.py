"""A circuit breaker: after repeated store failures, refuse calls for a while."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, TypeVar, final

import anyio

from ._errors import CircuitOpen, JournalUnavailable

__all__ = ["CircuitBreaker"]

T = TypeVar("T")

CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half-open"


@final
class CircuitBreaker:
    """Counts consecutive :class:`JournalUnavailable` failures; at ``max_failures`` it opens and
    calls fail at once with :class:`CircuitOpen` for ``reset_timeout`` seconds, then one trial
    call is let through (half-open): success closes it, failure opens it again.

    Other errors (a sequence conflict, an unserializable event) say nothing about the store's
    health and do not count.
    """

    def __init__(self, max_failures: int = 5, reset_timeout: float = 1.0) -> None:
        if max_failures < 1:
            raise ValueError(f"max_failures must be at least 1, got {max_failures}")
        if reset_timeout <= 0:
            raise ValueError(f"reset_timeout must be positive, got {reset_timeout}")
        self.max_failures = max_failures
        self.reset_timeout = reset_timeout
        self._failures = 0
        self._opened_at = 0.0
        self._state: str = CLOSED
        self._trial = False

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half-open"``."""
        if self._state == OPEN and anyio.current_time() >= self._opened_at + self.reset_timeout:
            return HALF_OPEN
        return self._state

    async def call(self, func: Callable[[], Awaitable[T]]) -> T:
        """Run ``func()`` through the breaker.

        :raises CircuitOpen: the breaker is open (or a half-open trial is already running).
        """
        if self._state == OPEN:
            now = anyio.current_time()
            if now < self._opened_at + self.reset_timeout or self._trial:
                left = max(0.0, self._opened_at + self.reset_timeout - now)
                raise CircuitOpen(
                    f"the journal's circuit breaker is open after {self._failures} store"
                    f" failures; next trial in {left:.2f}s"
                )
            self._trial = True
        try:
            result = await func()
        except JournalUnavailable:
            self._failures += 1
            if self._trial or self._failures >= self.max_failures:
                self._state = OPEN
                self._opened_at = anyio.current_time()
            raise
        finally:
            self._trial = False
        self._failures = 0
        self._state = CLOSED
        return result
