"""The runtime's record of one actor (its cell): mailbox, state, supervision data.

:class:`cinema.Context` is the public face of a cell (a subclass adding only public methods, as
Akka's ``ActorCell`` is its ``ActorContext``): one object per actor, so that an idle actor stays
small and the dispatcher's hot loop passes handlers their context without a lookup. The
runtime (``_addr``, ``_dispatcher``, ``_timers``, ``_streams``, ``_system``) works on cells
and imports this module, never ``_context``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._actor import Actor
from ._addr import Addr
from ._errors import ActorStopped
from ._handler import ClassInfo
from ._states import STARTING, STOPPING
from ._supervision import RestartGroup, RestartRecord, SupervisorStrategy

if TYPE_CHECKING:
    from ._dispatcher import Dispatcher
    from ._system import ActorSystem
    from ._timers import TimerHandle


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
        self.watchers: set[Cell] = set()
        self.watching: set[Cell] = set()
        self.timers: set[TimerHandle] = set()
        self.streams: set[Any] = set()  # cancel scopes of stream pumps
        self.names: set[str] = set()
        self.record = RestartRecord()
        self.delay = 0.0  # a backoff restart waits this long before the fresh instance
        self.backoff: Any = None  # the cancel scope of that wait
        self.group: RestartGroup = "one_for_one"  # how this actor's children restart
        self.escalation: BaseException | None = None
        self.room: deque[Any] = deque()


class Cell:
    """The runtime's record of an actor; one lives as long as the actor, across restarts."""

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
        "_handled",
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
        actor: Actor,
        info: ClassInfo,
        parent: Cell | None,
        strategy: SupervisorStrategy | None,
        factory: Callable[[], Actor] | None,
        capacity: int | None,
        ident: int,
    ) -> None:
        self._system = system
        self._dispatcher: Dispatcher = system._dispatcher
        self._actor: Any = actor
        self._info = info
        self._table = info.table
        self._addr: Addr[Any] = Addr(self)
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
        self._children: set[Cell] | None = None
        self._strategy = strategy
        self._factory = factory
        self._failure: BaseException | None = None
        self._capacity = capacity
        self._count = 0
        self._ext: Extra | None = None
        self._id = ident
        # Messages handled in senders' tasks (statistics; the dispatcher counts its own turns
        # per class). Small ints are shared objects: no allocation for most actors.
        self._handled = 0

    def _new_mailbox(self) -> deque[Any]:
        # Allocated when messages arrive for an idle actor, dropped when it is idle again.
        mailbox: deque[Any] = deque()
        self._mailbox = mailbox
        if self._capacity is None and self._state < STOPPING:
            # open_ident is 0 while tracing: every do_send then takes the traced path.
            self._open = self._dispatcher.open_ident
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
