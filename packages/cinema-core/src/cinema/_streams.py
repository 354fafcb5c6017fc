"""Streams attached to an actor with ``ctx.add_stream``."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING, Any

import anyio

from ._backend import cancelled_from_outside
from ._envelopes import StreamEnd, StreamItem

if TYPE_CHECKING:
    from ._cell import Cell


def start_stream(ctx: Cell, stream: AsyncIterable[Any]) -> None:
    scope = anyio.CancelScope()
    ctx._extra().streams.add(scope)
    ctx._dispatcher.start_soon(_pump, ctx, stream, scope)


async def _pump(ctx: Cell, stream: AsyncIterable[Any], scope: anyio.CancelScope) -> None:
    dispatcher = ctx._dispatcher
    ended = False
    iterator: AsyncIterator[Any] | None = None
    try:
        with scope:
            iterator = aiter(stream)
            while True:
                try:
                    item = await anext(iterator)
                except StopAsyncIteration:
                    ended = True
                    break
                ack = dispatcher.new_future()
                if not dispatcher.enqueue(ctx, StreamItem(item, ack)):
                    break
                # Pull the next item only once this one is handled: no unbounded buffering.
                if not await ack:
                    break
    except BaseException as exc:
        if isinstance(exc, anyio.get_cancelled_exc_class()) and cancelled_from_outside():
            raise
        # Whatever the stream raises (a stray cancellation included) is the actor's failure.
        dispatcher.fail(ctx, exc)
    finally:
        ext = ctx._ext
        if ext is not None:
            ext.streams.discard(scope)
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with anyio.CancelScope(shield=True):
                try:
                    await aclose()
                except BaseException as exc:
                    dispatcher.fail(ctx, exc)
    if ended and not scope.cancel_called:
        dispatcher.enqueue(ctx, StreamEnd())
