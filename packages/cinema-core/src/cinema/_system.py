"""The actor system: spawns actors, owns the dispatcher, the registry and the dead letters."""

from __future__ import annotations

import logging
from _thread import get_ident
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar, final, overload

import anyio
import anyio.abc

from ._actor import Actor
from ._addr import Addr
from ._backend import close_task_group
from ._cell import Cell
from ._context import Context
from ._dispatcher import Dispatcher
from ._errors import ActorStopped, CinemaError, NameTaken
from ._handler import _infos, class_info, unhandled
from ._message import DeadLetter, Terminated
from ._registry import Registry
from ._states import RUNNING, STOPPED, STOPPING
from ._stats import SystemStats, collect
from ._supervision import SupervisorStrategy, seconds

if TYPE_CHECKING:
    from ._plugins import PluginRegistry

A = TypeVar("A", bound=Actor)

logger = logging.getLogger("cinema")


@final
class ActorSystem:
    """Runs actors. Use it as an async context manager::

        async with ActorSystem() as system:
            addr = system.spawn(Greeter())

    Leaving the block stops every actor (children before parents): running handlers get
    ``shutdown_timeout`` seconds to finish and are then cancelled; ``stopped`` hooks run either
    way. If the block itself is cancelled, handlers are cancelled at once.

    :param shutdown_timeout: grace period for running handlers at shutdown, in seconds
    """

    def __init__(self, *, shutdown_timeout: float = 5.0) -> None:
        self._shutdown_timeout = seconds(shutdown_timeout, "shutdown_timeout")
        self._tg: anyio.abc.TaskGroup | None = None
        self._dispatcher: Dispatcher = None  # type: ignore[assignment]  # set on entry
        self._registry = Registry()
        self._next_id = 0
        self._state = "new"
        self._plugins: PluginRegistry | None = None

    def __repr__(self) -> str:
        return f"<ActorSystem {self._state}, {self._registry.live} actors>"

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise CinemaError("an ActorSystem can be entered only once")
        from ._plugins import load_plugins

        self._plugins = load_plugins()
        self._dispatcher = Dispatcher(self._registry)
        from . import telemetry

        tracing = telemetry.tracing()
        if tracing is not None:
            self._dispatcher.trace_with(tracing)
        telemetry.track(self)
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        self._dispatcher.start(tg)
        self._state = "running"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg = self._tg
        assert tg is not None
        hurry = exc is not None and isinstance(exc, anyio.get_cancelled_exc_class())
        try:
            with anyio.CancelScope(shield=True):
                await self._shutdown(hurry)
        finally:
            self._state = "closed"
            tg.cancel_scope.cancel()
        fatal = self._registry.fatal_exc
        if fatal is not None and exc is not fatal:
            await close_task_group(tg, exc_type, exc, tb)
            raise fatal
        # The runtime's own tasks were cancelled above.
        return await close_task_group(tg, exc_type, exc, tb)

    async def _shutdown(self, hurry: bool) -> None:
        self._state = "closing"
        for ctx in list(self._registry.top):
            ctx._request_stop()
        if not self._registry.live:
            return
        self._registry.all_stopped = anyio.Event()
        if not hurry:
            with anyio.move_on_after(self._shutdown_timeout):
                await self._registry.all_stopped.wait()
            if not self._registry.live:
                return
            logger.warning(
                "shutdown: %d actors still busy after %ss: cancelling their handlers",
                self._registry.live,
                self._shutdown_timeout,
            )
        with anyio.move_on_after(max(self._shutdown_timeout, 1.0)):
            await self._dispatcher.drive_shutdown()
        if self._registry.live:
            logger.error("shutdown: %d actors did not stop; abandoning them", self._registry.live)
            for ctx in list(self._registry.top):
                self._abandon(ctx)

    def _abandon(self, ctx: Cell) -> None:
        for child in list(ctx._children or ()):
            self._abandon(child)
        if ctx._state != STOPPED:
            ctx._set_stopping()
            self._dispatcher.finalize(ctx)

    # -- spawning -----------------------------------------------------------------------------

    def spawn(self, actor: A, *, mailbox_capacity: int | None = None) -> Addr[A]:
        """Start ``actor`` as a top-level actor supervised with the default strategy (stop).

        Returns at once; ``started`` runs before the first message is handled.

        :param actor: the actor instance
        :param mailbox_capacity: bound the mailbox (``None``: unbounded)
        :return: the actor's address
        """
        return self._spawn(actor, None, None, None, mailbox_capacity)

    def spawn_with_strategy(
        self,
        factory: Callable[[], A],
        strategy: SupervisorStrategy,
        *,
        mailbox_capacity: int | None = None,
    ) -> Addr[A]:
        """Start a top-level actor from a zero-argument factory, supervised by ``strategy``.

        The factory is called once now and again for each restart.
        """
        return self._spawn_factory(factory, strategy, None, mailbox_capacity)

    def _spawn_factory(
        self,
        factory: Callable[[], A],
        strategy: SupervisorStrategy,
        parent: Cell | None,
        capacity: int | None,
    ) -> Addr[A]:
        if not callable(factory):
            raise TypeError(f"factory must be a zero-argument callable, got {factory!r}")
        if not isinstance(strategy, SupervisorStrategy):
            raise TypeError(f"strategy must be a SupervisorStrategy, got {strategy!r}")
        self._check_running()
        return self._spawn(factory(), parent, strategy, factory, capacity)

    def _check_running(self) -> None:
        if self._state != "running":
            if self._state == "new":
                raise CinemaError(
                    "the ActorSystem is not running: use `async with ActorSystem() as system:`"
                )
            raise CinemaError(f"the ActorSystem is {self._state}: it takes no new actors")

    def _spawn(
        self,
        actor: A,
        parent: Cell | None,
        strategy: SupervisorStrategy | None,
        factory: Callable[[], A] | None,
        capacity: int | None,
    ) -> Addr[A]:
        if self._state != "running":
            self._check_running()
        if get_ident() != self._dispatcher.thread:
            raise CinemaError(
                "spawn from another thread than the system's event loop: use "
                "anyio.from_thread.run_sync(system.spawn, actor) (with the loop's token)"
            )
        try:
            info = _infos[type(actor)]
        except KeyError:
            if not isinstance(actor, Actor):
                raise TypeError(f"spawn needs an Actor instance, got {actor!r}") from None
            info = class_info(type(actor))
        if capacity is not None and (
            isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1
        ):
            raise ValueError(f"mailbox_capacity must be a positive int or None, not {capacity!r}")
        self._next_id += 1
        ctx: Context[A] = Context(
            self, actor, info, parent, strategy, factory, capacity, self._next_id
        )
        if parent is None:
            self._registry.top[ctx] = None
        else:
            children = parent._children
            if children is None:
                children = parent._children = set()
            children.add(ctx)
            if parent._info.lookup(Terminated) is not None:
                # As in the original: a parent that handles Terminated watches its children,
                # so it learns when one stops for good (not when it restarts).
                ctx._extra().watchers.add(parent)
                parent._extra().watching.add(ctx)
        self._registry.live += 1
        if info.started is None:
            ctx._state = RUNNING
            ctx._up = True
        else:
            ctx._sched = True
            self._dispatcher.schedule(ctx)
        return ctx._addr

    # -- registry -----------------------------------------------------------------------------

    def register(self, name: str, addr: Addr[Actor]) -> None:
        """Register ``addr`` under ``name``; the entry goes away when the actor stops for good.

        Registering the same address under the same name again does nothing.

        :raises cinema.NameTaken: the name is held by another live actor
        :raises cinema.ActorStopped: the actor is not alive
        """
        if not isinstance(name, str):
            raise TypeError(f"registry names are str, not {type(name).__name__}")
        if not isinstance(addr, Addr):
            raise TypeError(f"register needs an Addr, got {addr!r}")
        ctx = addr._ctx
        if ctx._state >= STOPPING:
            raise ActorStopped(f"cannot register {addr!r}: it is stopped")
        held = self._registry.names.get(name)
        if held is not None:
            if held is addr:
                return
            if held._ctx._state < STOPPING:
                raise NameTaken(f"the name {name!r} is held by {held!r}")
        self._registry.names[name] = addr
        ctx._extra().names.add(name)

    @overload
    def lookup(self, name: str) -> Addr[Actor] | None: ...

    @overload
    def lookup(self, name: str, actor_type: type[A]) -> Addr[A] | None: ...

    def lookup(self, name: str, actor_type: type[Actor] = Actor) -> Addr[Actor] | None:
        """The address registered under ``name``, if its actor is an ``actor_type``.

        :return: the address, or ``None`` if the name is unknown or the type differs
        """
        addr = self._registry.names.get(name)
        if addr is None or addr._ctx._state >= STOPPING:
            return None
        if not isinstance(addr._ctx._actor, actor_type):
            return None
        return addr

    def unregister(self, name: str) -> bool:
        """Remove ``name`` from the registry.

        :return: whether the name was registered
        """
        addr = self._registry.names.pop(name, None)
        if addr is None:
            return False
        ext = addr._ctx._ext
        if ext is not None:
            ext.names.discard(name)
        return True

    # -- observability ------------------------------------------------------------------------

    def stats(self) -> SystemStats:
        """A snapshot of the system's statistics: per actor class, messages handled, time
        spent handling them, mailbox depths, failures and restarts; dead letters by reason;
        the last failures with their tracebacks.

        Counting is always on and cheap; the snapshot walks the live actors once.
        """
        dispatcher = self._dispatcher
        return collect(self._registry, dispatcher.backend if dispatcher is not None else "")

    @property
    def tracing(self) -> bool:
        """Whether this system records OpenTelemetry spans (see :mod:`cinema.telemetry`)."""
        dispatcher = self._dispatcher
        return dispatcher is not None and dispatcher.instrument is not None

    @property
    def dead_letters(self) -> int:
        """How many messages went to the dead letters so far (each is logged at debug)."""
        return self._registry.dead_letters

    @property
    def plugins(self) -> PluginRegistry:
        """The transports and serializers found through the ``cinema`` entry points."""
        if self._plugins is None:
            from ._plugins import load_plugins

            self._plugins = load_plugins()
        return self._plugins

    @property
    def dead_letter_counts(self) -> dict[str, int]:
        """How many dead letters so far, by reason (see :class:`cinema.DeadLetter`); a copy."""
        return dict(self._registry.dead_counts)

    def subscribe_dead_letters(self, addr: Addr[Actor]) -> None:
        """Deliver a :class:`cinema.DeadLetter` to ``addr`` for every later dead letter.

        The subscription ends when the subscriber stops. Dead letters of ``DeadLetter``
        records themselves are counted but not delivered again.

        :raises cinema.UnhandledMessage: the actor has no handler for ``DeadLetter``
        :raises cinema.ActorStopped: the actor is not alive
        """
        if not isinstance(addr, Addr):
            raise TypeError(f"subscribe_dead_letters needs an Addr, got {addr!r}")
        ctx = addr._ctx
        if ctx._info.lookup(DeadLetter) is None:
            raise unhandled(type(ctx._actor), DeadLetter)
        if ctx._state >= STOPPING:
            raise ActorStopped(f"cannot subscribe {addr!r}: it is stopped")
        if ctx not in self._registry.dead_subscribers:
            self._registry.dead_subscribers.append(ctx)

    def unsubscribe_dead_letters(self, addr: Addr[Actor]) -> bool:
        """End ``addr``'s dead-letter subscription.

        :return: whether it was subscribed
        """
        try:
            self._registry.dead_subscribers.remove(addr._ctx)
        except ValueError:
            return False
        return True
