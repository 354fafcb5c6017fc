"""Timers: ``ctx.run_later`` and ``ctx.run_interval``."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import anyio

from ._envelopes import Tick

if TYPE_CHECKING:
    from ._cell import Cell


@final
class TimerHandle:
    """A scheduled delivery made by ``run_later`` or ``run_interval``.

    Timers belong to their actor: they end when it stops and are dropped on restart.
    """

    __slots__ = ("_cancelled", "_ctx", "_queued", "_scope")

    def __init__(self, ctx: Cell) -> None:
        self._ctx = ctx
        self._scope = anyio.CancelScope()
        self._cancelled = False
        self._queued = False  # a tick of this timer waits in the mailbox

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called (or the timer was dropped with its actor)."""
        return self._cancelled

    def cancel(self) -> None:
        """Stop the timer; a tick already queued and not yet handled is dropped too."""
        self._drop()
        ext = self._ctx._ext
        if ext is not None:
            ext.timers.discard(self)

    def _drop(self) -> None:
        self._cancelled = True
        self._scope.cancel()

    def __repr__(self) -> str:
        return f"<TimerHandle {'cancelled' if self._cancelled else 'active'}>"


def start_timer(ctx: Cell, delay: float, msg: object, period: float | None) -> TimerHandle:
    handle = TimerHandle(ctx)
    ctx._extra().timers.add(handle)
    deadline = anyio.current_time() + delay
    ctx._dispatcher.start_soon(_run, ctx, handle, deadline, msg, period)
    return handle


async def _run(
    ctx: Cell, handle: TimerHandle, deadline: float, msg: object, period: float | None
) -> None:
    enqueue = ctx._dispatcher.enqueue
    try:
        with handle._scope:
            await anyio.sleep_until(deadline)
            if period is None:
                enqueue(ctx, Tick(handle, msg))
                return
            while not handle._cancelled:
                # Skip a tick while the previous one is still queued: a slow handler does not
                # make ticks pile up.
                if not handle._queued:
                    handle._queued = True
                    if not enqueue(ctx, Tick(handle, msg)):
                        return
                deadline += period
                await anyio.sleep_until(deadline)
    finally:
        ext = ctx._ext
        if ext is not None and period is None:
            ext.timers.discard(handle)
