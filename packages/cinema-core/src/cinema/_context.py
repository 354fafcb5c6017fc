"""The actor's context: the public handle to the runtime passed to every handler and hook.

The runtime's record of the actor is :class:`Cell` (``_cell.py``); ``Context`` adds only the
public methods on top of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar, final

from ._actor import Actor
from ._addr import Addr
from ._cell import Cell
from ._errors import HandlerDefinitionError
from ._handler import unhandled
from ._message import Terminated
from ._states import STOPPED
from ._streams import start_stream
from ._supervision import RESTART_GROUPS, RestartGroup, SupervisorStrategy, seconds
from ._timers import TimerHandle, start_timer

if TYPE_CHECKING:
    from ._system import ActorSystem

A = TypeVar("A", bound=Actor)
B = TypeVar("B", bound=Actor)


@final
class Context(Cell, Generic[A]):
    """The actor's handle to the runtime, passed to every handler and hook.

    One context lives as long as the actor, across restarts.
    """

    __slots__ = ()

    _addr: Addr[A]

    def __repr__(self) -> str:
        return f"<Context of {self._addr!r}>"

    # -- public API ----------------------------------------------------------------------------

    @property
    def system(self) -> ActorSystem:
        """The :class:`cinema.ActorSystem` this actor runs in."""
        return self._system

    def address(self) -> Addr[A]:
        """This actor's own address."""
        return self._addr

    def stop(self) -> None:
        """Stop this actor once the current message is done."""
        self._request_stop()

    def spawn_child(self, actor: B, *, mailbox_capacity: int | None = None) -> Addr[B]:
        """Spawn a child supervised with the default strategy (stop).

        Children stop before their parent does.

        :param actor: the child actor instance
        :param mailbox_capacity: bound the child's mailbox (``None``: unbounded)
        """
        self._alive_or_raise()
        return self._system._spawn(actor, self, None, None, mailbox_capacity)

    def spawn_child_with_strategy(
        self,
        factory: Callable[[], B],
        strategy: SupervisorStrategy,
        *,
        mailbox_capacity: int | None = None,
    ) -> Addr[B]:
        """Spawn a child from a zero-argument factory, supervised by ``strategy``.

        The factory is called once now, and again for each restart.

        :param factory: makes a fresh instance of the child
        :param strategy: what to do when the child fails
        :param mailbox_capacity: bound the child's mailbox (``None``: unbounded)
        """
        self._alive_or_raise()
        return self._system._spawn_factory(factory, strategy, self, mailbox_capacity)

    def set_restart_group(self, group: RestartGroup) -> None:
        """Choose which of this actor's children restart together (OTP's supervisor flags).

        - ``"one_for_one"`` (the default): a child that restarts restarts alone;
        - ``"one_for_all"``: when a child restarts, all its siblings restart too;
        - ``"rest_for_one"``: when a child restarts, so do the siblings spawned after it.

        Only children spawned with a factory (``spawn_child_with_strategy``) can be restarted
        with a sibling; the others are left alone. A sibling restarted this way is not counted as
        failed. The choice lasts as long as this actor, across its restarts.
        """
        if group not in RESTART_GROUPS:
            raise ValueError(f"group must be one of {RESTART_GROUPS}, got {group!r}")
        self._extra().group = group

    def run_later(self, delay: float | timedelta, msg: object) -> TimerHandle:
        """Deliver ``msg`` to this actor after ``delay``.

        :param delay: seconds (float) or a ``timedelta``
        :param msg: a message this actor handles
        :return: a handle whose ``cancel()`` drops the delivery
        """
        return _start_timer(self, seconds(delay, "delay"), msg, None)

    def run_interval(self, period: float | timedelta, msg: object) -> TimerHandle:
        """Deliver ``msg`` to this actor every ``period``, first one period from now.

        A tick is skipped while the previous one is still queued.

        :param period: seconds (float) or a ``timedelta``; must be positive
        :param msg: a message this actor handles
        :return: a handle whose ``cancel()`` stops the ticks, queued ones included
        """
        period_s = seconds(period, "period")
        if period_s <= 0:
            raise ValueError(f"period must be positive, got {period!r}")
        return _start_timer(self, period_s, msg, period_s)

    def add_stream(self, stream: AsyncIterable[Any]) -> None:
        """Attach an async iterable; its items go to the actor's ``StreamHandler.handle``.

        The stream is pulled only as fast as items are handled; ``finished`` runs when it ends
        by itself; an exception it raises is the actor's failure. It is dropped when the actor
        stops or restarts.
        """
        self._alive_or_raise()
        if self._info.handle is None:
            raise HandlerDefinitionError(
                f"{type(self._actor).__qualname__} cannot take streams: it does not implement "
                "cinema.StreamHandler.handle"
            )
        if not hasattr(stream, "__aiter__"):
            raise TypeError(f"add_stream needs an async iterable, got {type(stream).__name__}")
        start_stream(self, stream)

    def watch(self, addr: Addr[Actor]) -> None:
        """Receive :class:`cinema.Terminated` when the actor at ``addr`` stops for good.

        Watching an actor that is already dead delivers ``Terminated`` at once. Watches survive
        restarts on both sides.

        :raises cinema.UnhandledMessage: this actor has no handler for ``Terminated``
        """
        if self._info.lookup(Terminated) is None:
            raise unhandled(type(self._actor), Terminated)
        self._alive_or_raise()
        target = addr._ctx
        if target is self:
            raise ValueError("an actor cannot watch itself")
        if target._state == STOPPED:
            self._dispatcher.deliver(self, Terminated(addr))
            return
        target._extra().watchers.add(self)
        self._extra().watching.add(target)

    def unwatch(self, addr: Addr[Actor]) -> None:
        """Stop watching ``addr``; a ``Terminated`` not yet delivered is not withdrawn."""
        target = addr._ctx
        if target._ext is not None:
            target._ext.watchers.discard(self)
        if self._ext is not None:
            self._ext.watching.discard(target)


def _start_timer(ctx: Context[Any], delay: float, msg: object, period: float | None) -> TimerHandle:
    ctx._alive_or_raise()
    if ctx._info.lookup(type(msg)) is None:
        raise unhandled(type(ctx._actor), type(msg))
    return start_timer(ctx, delay, msg, period)
