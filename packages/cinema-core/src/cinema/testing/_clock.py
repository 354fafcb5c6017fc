"""Virtual time for tests: ``run_later(3600, ...)`` fires at once, on asyncio and on trio.

Cinema's timers, anyio's ``sleep``/``fail_after`` and every other deadline read anyio's clock
(``anyio.current_time()``): the event loop's ``time()`` on asyncio, trio's clock on trio. Both
can be replaced for a test run:

- trio: :class:`trio.testing.MockClock`, passed to ``trio.run(clock=...)``;
- asyncio: :class:`VirtualTimeEventLoop`, a selector event loop whose ``time()`` is virtual.

Virtual time runs with real time, plus jumps: either clock *autojumps* when every task is
blocked and nothing arrives within ``autojump_threshold`` real seconds, to the next deadline;
a test may also move it by hand with :meth:`Clock.advance`.

Limits: only anyio's clock is virtual. Code that reads :func:`time.monotonic` or
:func:`time.time` itself (cinema.cluster's failure detector, for one) sees real time; uvloop
cannot be made virtual (asyncio's virtual time needs this module's loop); with a threshold of
0, a jump happens as soon as the loop would wait, also while a thread (``to_thread``) or a
socket is about to deliver, so tests with real I/O should pass a small threshold such as 0.05.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, final

from .._backend import current_backend

__all__ = ["Clock", "VirtualTimeEventLoop", "current_clock", "virtual_time"]

_BACKENDS: Final = ("asyncio", "trio")


class _JumpingSelector(selectors.BaseSelector):
    """Delegates to a real selector; turns a wait for the next timer into a jump of time."""

    def __init__(self, clock: VirtualTimeEventLoop) -> None:
        self._inner = selectors.DefaultSelector()
        self._clock = clock

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        threshold = self._clock.autojump_threshold
        if timeout is None or timeout <= 0 or threshold is None:
            return self._inner.select(timeout)
        began = time.monotonic()
        events = self._inner.select(min(timeout, threshold))
        if events:
            return events
        # Nothing happened: the loop waits only for a timer. Let virtual time reach it.
        self._clock.advance(max(0.0, timeout - (time.monotonic() - began)))
        return []

    def close(self) -> None:
        self._inner.close()

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()


@final
class VirtualTimeEventLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop on virtual time: ``time()`` is the real monotonic clock plus an
    offset that :meth:`advance` (and the autojump) increase.

    :param autojump_threshold: real seconds the loop waits for I/O before jumping to its next
        timer; ``None`` never jumps (time moves only by :meth:`advance`).
    """

    def __init__(self, autojump_threshold: float | None = 0.0) -> None:
        self.autojump_threshold = autojump_threshold
        self._offset = 0.0
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds``; timers now due run at the next iteration.

        :raises ValueError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError(f"time only moves forward, not by {seconds!r}")
        self._offset += seconds


@final
class Clock:
    """The virtual clock of the running test, whichever the backend (see :func:`current_clock`)."""

    __slots__ = ("_advance", "_now", "_threshold")

    def __init__(
        self,
        now: Callable[[], float],
        advance: Callable[[float], None],
        threshold: Callable[[float | None], None],
    ) -> None:
        self._now, self._advance, self._threshold = now, advance, threshold

    def time(self) -> float:
        """The current virtual time (what ``anyio.current_time()`` returns)."""
        return self._now()

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds`` (timers that fall due fire).

        :raises ValueError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError(f"time only moves forward, not by {seconds!r}")
        self._advance(seconds)

    def set_autojump(self, threshold: float | None) -> None:
        """Jump to the next deadline after ``threshold`` idle real seconds; ``None``: never."""
        self._threshold(threshold)


def virtual_time(
    backend: str = "asyncio", *, autojump_threshold: float | None = 0.0
) -> tuple[str, dict[str, Any]]:
    """An ``anyio_backend`` value that runs the test on a fresh virtual clock::

        @pytest.fixture(params=["asyncio", "trio"])
        def anyio_backend(request: pytest.FixtureRequest) -> object:
            return virtual_time(request.param)

    :param backend: ``"asyncio"`` or ``"trio"``.
    :param autojump_threshold: see :class:`VirtualTimeEventLoop`; ``None`` never jumps.
    :raises ValueError: an unknown backend.
    """
    if backend == "asyncio":
        return ("asyncio", {"loop_factory": lambda: VirtualTimeEventLoop(autojump_threshold)})
    if backend == "trio":
        from trio.testing import MockClock

        threshold = float("inf") if autojump_threshold is None else autojump_threshold
        # rate=1: between jumps virtual time runs with real time, as on asyncio.
        return ("trio", {"clock": MockClock(rate=1.0, autojump_threshold=threshold)})
    raise ValueError(f"backend must be one of {_BACKENDS}, not {backend!r}")


def current_clock() -> Clock:
    """The virtual clock of the running event loop (call it inside the test).

    :raises RuntimeError: the test does not run on virtual time (see :func:`virtual_time`).
    """
    if current_backend() == "trio":
        import trio
        from trio.testing import MockClock

        clock = trio.lowlevel.current_clock()
        if isinstance(clock, MockClock):
            mock = clock

            def set_threshold(threshold: float | None) -> None:
                mock.autojump_threshold = float("inf") if threshold is None else threshold

            return Clock(mock.current_time, mock.jump, set_threshold)
    else:
        loop = asyncio.get_running_loop()
        if isinstance(loop, VirtualTimeEventLoop):
            virtual = loop

            def set_loop_threshold(threshold: float | None) -> None:
                virtual.autojump_threshold = threshold

            return Clock(virtual.time, virtual.advance, set_loop_threshold)
    raise RuntimeError(
        "this test does not run on virtual time: return cinema.testing.virtual_time(backend) "
        "from its anyio_backend fixture"
    )
