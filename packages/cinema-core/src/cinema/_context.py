"""The actor's context: its handle to the runtime, and the runtime's record of the actor."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar, final

from ._actor import Actor
from ._addr import Addr
from ._errors import ActorStopped, HandlerDefinitionError
from ._handler import ClassInfo, unhandled
from ._message import Terminated
from ._states import STARTING, STOPPED, STOPPING
from ._supervision import RESTART_GROUPS, RestartGroup, RestartRecord, SupervisorStrategy, seconds

if TYPE_CHECKING:
    from ._dispatcher import Dispatcher
    from ._system import ActorSystem
    from ._timers import TimerHandle

A = TypeVar("A", bound=Actor)
B = TypeVar("B", bound=Actor)

logger = logging.getLogger("cinema")


class Extra:
    """Per-actor state most actors never need, allocated on first use to keep actors small."""

    __slots__ = (
        "backoff",
        "delay",
        "escalation",
        "group",
        "names",
        "record",
        "room",
        "streams",
        "timers",
        "watchers",
        "watching",
    )

    def __init__(self) -> None:
        self.watchers: set[Context[Any]] = set()
        self.watching: set[Context[Any]] = set()
        self.timers: set[TimerHandle] = set()
        self.streams: set[Any] = set()  # cancel scopes of stream pumps
        self.names: set[str] = set()
        self.record = RestartRecord()
        self.delay = 0.0  # a backoff restart waits this long before the fresh instance
        self.backoff: Any = None  # the cancel scope of that wait
        self.group: RestartGroup = "one_for_one"  # how this actor's children restart
        self.escalation: BaseException | None = None
        self.room: deque[Any] = deque()


@final
class Context(Generic[A]):
    """The actor's handle to the runtime, passed to every handler and hook.

    One context lives as long as the actor, across restarts.
    """

    __slots__ = (
        "_actor",
        "_addr",
        "_capacity",
        "_children",
        "_count",
        "_dispatcher",
        "_ext",
        "_factory",
        "_failure",
        "_id",
        "_info",
        "_mailbox",
        "_open",
        "_parent",
        "_phase",
        "_sched",
        "_state",
        "_strategy",
        "_system",
        "_table",
        "_up",
        "_wait",
    )

    def __init__(
        self,
        system: ActorSystem,
        actor: A,
        info: ClassInfo,
        parent: Context[Any] | None,
        strategy: SupervisorStrategy | None,
        factory: Callable[[], A] | None,
        capacity: int | None,
        ident: int,
    ) -> None:
        self._system = system
        self._dispatcher: Dispatcher = system._dispatcher
        self._actor: Any = actor
        self._info = info
        self._table = info.table
        self._addr: Addr[A] = Addr(self)
        self._mailbox: deque[Any] | None = None
        # While do_send may append directly (alive, unbounded, the mailbox allocated): the ident
        # of the event loop's thread, which do_send compares with its own; else 0.
        self._open = 0
        self._sched = False
        self._state = STARTING
        self._up = False  # this instance's started() completed: stopped() is due
        self._wait = 0  # non-zero while parked: waiting for an async step or for children
        self._phase = 0  # progress through a stop or restart sequence
        self._parent = parent
        self._children: set[Context[Any]] | None = None
        self._strategy = strategy
        self._factory = factory
        self._failure: BaseException | None = None
        self._capacity = capacity
        self._count = 0
        self._ext: Extra | None = None
        self._id = ident

    def __repr__(self) -> str:
        return f"<Context of {self._addr!r}>"

    # -- internal helpers used by Addr and the dispatcher -------------------------------------

    def _new_mailbox(self) -> deque[Any]:
        # Allocated when messages arrive for an idle actor, dropped when it is idle again.
        mailbox: deque[Any] = deque()
        self._mailbox = mailbox
        if self._capacity is None and self._state < STOPPING:
            self._open = self._dispatcher.thread
        else:
            self._open = 0
        return mailbox

    def _set_stopping(self) -> None:
        self._state = STOPPING
        self._open = 0

    def _extra(self) -> Extra:
        ext = self._ext
        if ext is None:
            ext = self._ext = Extra()
        return ext

    def _request_stop(self) -> None:
        if self._state >= STOPPING:
            return
        self._set_stopping()
        self._phase = 0
        ext = self._ext
        if ext is not None and ext.backoff is not None:
            ext.backoff.cancel()  # a restart waiting out its backoff delay: stop now instead
        if self._mailbox:
            # Queued messages are not handled: refuse them now, and the dispatcher's loop,
            # which stops when the mailbox is empty, needs no per-message state check.
            self._dispatcher.flush(self)
        if not self._sched:
            self._sched = True
            self._dispatcher.schedule(self)

    async def _wait_for_room(self) -> None:
        fut = self._dispatcher.new_future()
        self._extra().room.append(fut)
        await fut

    def _alive_or_raise(self) -> None:
        if self._state >= STOPPING:
            raise ActorStopped(f"{self._addr!r} is stopped")

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
        return self._start_timer(seconds(delay, "delay"), msg, None)

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
        return self._start_timer(period_s, msg, period_s)

    def _start_timer(self, delay: float, msg: object, period: float | None) -> TimerHandle:
        self._alive_or_raise()
        if self._info.lookup(type(msg)) is None:
            raise unhandled(type(self._actor), type(msg))
        from ._timers import start_timer

        return start_timer(self, delay, msg, period)

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
        from ._streams import start_stream

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
