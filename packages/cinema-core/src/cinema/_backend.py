"""Small backend-specific primitives for the hot path.

anyio's generic primitives checkpoint on every operation; the runtime's hot path (waking the
dispatcher, replying to ``send``) uses asyncio futures or trio's low-level parking directly,
behind the same small interface, so both backends keep the same semantics.
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import Awaitable, Callable, Generator
from types import TracebackType
from typing import Any, Protocol

import anyio
import anyio.abc


class Future(Protocol):
    """The subset of :class:`asyncio.Future` the runtime uses for replies and acks."""

    def done(self) -> bool: ...

    def set_result(self, value: Any, /) -> None: ...

    def set_exception(self, exc: BaseException, /) -> None: ...

    def __await__(self) -> Generator[Any, None, Any]: ...


def current_backend() -> str:
    """``"trio"`` inside a trio run, else ``"asyncio"``."""
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            pass
        else:
            return "trio"
    return "asyncio"


class TrioFuture:
    """A one-shot result slot that one trio task awaits (a trio analogue of asyncio.Future)."""

    __slots__ = ("_done", "_exc", "_result", "_task")

    def __init__(self) -> None:
        self._done = False
        self._result: Any = None
        self._exc: BaseException | None = None
        self._task: Any = None

    def done(self) -> bool:
        return self._done

    def set_result(self, value: Any, /) -> None:
        if self._done:
            return
        self._done = True
        self._result = value
        self._wake()

    def set_exception(self, exc: BaseException, /) -> None:
        if self._done:
            return
        self._done = True
        self._exc = exc
        self._wake()

    def _wake(self) -> None:
        task = self._task
        if task is not None:
            self._task = None
            import trio

            trio.lowlevel.reschedule(task)

    def __await__(self) -> Generator[Any, None, Any]:
        return self._wait().__await__()

    async def _wait(self) -> Any:
        if not self._done:
            import trio

            self._task = trio.lowlevel.current_task()

            def abort(_: object) -> Any:
                # Cancelled (e.g. a timeout): a later reply is dropped, as with asyncio.
                self._task = None
                self._done = True
                return trio.lowlevel.Abort.SUCCEEDED

            await trio.lowlevel.wait_task_rescheduled(abort)
        if self._exc is not None:
            raise self._exc
        return self._result


async def close_task_group(
    tg: anyio.abc.TaskGroup,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> bool | None:
    """Leave a task group entered by hand, from an ``__aexit__``, once its tasks are cancelled.

    With no exception, or a cancellation, the group's own ``__aexit__`` gets the exception (and
    may absorb a cancellation of its own scope). Any other exception from the ``async with``
    block propagates as it is, not wrapped in the group's ``ExceptionGroup``.

    :return: what ``__aexit__`` should return
    """
    if exc is None or isinstance(exc, anyio.get_cancelled_exc_class()):
        return await tg.__aexit__(exc_type, exc, tb)
    await tg.__aexit__(None, None, None)
    return None


def cancelled_from_outside() -> bool:
    """Whether the current task is being cancelled by a scope around it.

    A cancellation exception raised while no enclosing scope is cancelled did not come from
    the runtime (e.g. awaiting an asyncio future that some other code cancelled): it is the
    user code's own failure, not a shutdown.
    """
    return anyio.current_effective_deadline() == -math.inf


class Backend:
    """The primitives of one backend, bound to the running event loop."""

    __slots__ = ("call_soon_threadsafe", "cancel_point", "checkpoint", "name", "new_future")

    def __init__(self) -> None:
        self.name = current_backend()
        self.new_future: Callable[[], Future]
        self.checkpoint: Callable[[], Awaitable[None]]
        # Raises if the task is cancelled, without yielding to the event loop.
        self.cancel_point: Callable[[], Awaitable[None]]
        # Schedules a plain call in the event loop from any thread, without waiting for it;
        # raises RuntimeError once the loop is gone.
        self.call_soon_threadsafe: Callable[..., object]
        if self.name == "trio":
            import trio

            self.new_future = TrioFuture
            self.checkpoint = trio.lowlevel.checkpoint
            self.cancel_point = trio.lowlevel.checkpoint_if_cancelled
            self.call_soon_threadsafe = trio.lowlevel.current_trio_token().run_sync_soon
        else:
            loop = asyncio.get_running_loop()
            self.new_future = loop.create_future
            self.call_soon_threadsafe = loop.call_soon_threadsafe
            self.checkpoint = _asyncio_checkpoint
            # asyncio delivers a pending cancellation at the task's next real suspension.
            self.cancel_point = _nothing


async def _asyncio_checkpoint() -> None:
    await asyncio.sleep(0)


async def _nothing() -> None:
    return None
