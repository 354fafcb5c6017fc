"""The actor base class and the stream handler mix-in."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

if TYPE_CHECKING:
    from ._context import Context

T_contra = TypeVar("T_contra", contravariant=True)


def _default(func: Callable[..., Any]) -> Callable[..., Any]:
    # Marks the base no-op hooks so the runtime can skip calling them at all.
    func.__cinema_default__ = True  # type: ignore[attr-defined]  # plain function attribute
    return func


class Actor:
    """Base class of actors.

    State lives in plain attributes and is touched by one handler at a time, so no locks are
    needed. Override the optional lifecycle hooks (``def`` or ``async def``):

    - :meth:`started` runs before the first message is handled (again after each restart);
    - :meth:`stopped` runs last, after the actor's children have stopped.

    Message handlers are methods marked with :func:`cinema.handler`.
    """

    @_default
    def started(self, ctx: Context[Self]) -> Awaitable[None] | None:
        """Called when the actor starts, before its first message.

        :param ctx: the actor's context
        """
        return None

    @_default
    def stopped(self, ctx: Context[Self]) -> Awaitable[None] | None:
        """Called when the actor stops (also before a restart replaces this instance).

        :param ctx: the actor's context
        """
        return None


class StreamHandler(ABC, Generic[T_contra]):
    """Mix-in for actors that consume async iterables attached with ``ctx.add_stream``.

    Items are handled one at a time, in order, never concurrently with a message handler; the
    stream is pulled only as fast as :meth:`handle` returns. :meth:`finished` runs when a stream
    ends by itself.
    """

    @abstractmethod
    def handle(self, item: T_contra, ctx: Context[Any]) -> Awaitable[None] | None:
        """Handle one stream item (``def`` or ``async def``).

        :param item: the item
        :param ctx: the actor's context
        """

    @_default
    def finished(self, ctx: Context[Any]) -> Awaitable[None] | None:
        """Called when an attached stream is exhausted.

        :param ctx: the actor's context
        """
        return None
