"""Addresses: the handle through which everyone else talks to an actor."""

from __future__ import annotations

from _thread import get_ident as _get_ident
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, final, overload

import anyio
import anyio.from_thread

from ._actor import Actor
from ._errors import ActorStopped, CinemaError, Deadlock, MailboxFull, ReplyError
from ._handler import AsyncHandler, unhandled
from ._message import CLOSED_REASON, FULL_REASON, STOPPED_REASON, Message
from ._states import RUNNING, STOPPING, Ask, current_actor

if TYPE_CHECKING:
    from ._cell import Cell

A_co = TypeVar("A_co", bound=Actor, covariant=True)
R = TypeVar("R")


@final
class Addr(Generic[A_co]):
    """The address of an actor: cheap to copy, hashable, valid across restarts.

    Two addresses are equal when they name the same actor. Obtain one from
    :meth:`cinema.ActorSystem.spawn`, :meth:`cinema.Context.spawn_child`,
    :meth:`cinema.Context.address` or the registry.
    """

    __slots__ = ("_ctx",)

    def __init__(self, ctx: Cell) -> None:
        self._ctx = ctx

    def __repr__(self) -> str:
        ctx = self._ctx
        state = "alive" if ctx._state < STOPPING else "stopped"
        return f"<Addr {type(ctx._actor).__qualname__} #{ctx._id} {state}>"

    # An Addr is an immutable handle: copies (also inside deep-copied messages or state) are the
    # same address, so equality by identity keeps meaning "same actor".
    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self

    def __reduce__(self) -> str | tuple[Any, ...]:
        raise TypeError(
            "an Addr names an actor in this process and cannot be pickled; "
            "use cinema.remote to reach actors in other processes"
        )

    @property
    def is_alive(self) -> bool:
        """Whether the actor accepts messages (false from the moment ``stop()`` is called)."""
        return self._ctx._state < STOPPING

    def stop(self) -> None:
        """Stop the actor once the message it is handling now is done.

        Queued messages are not handled; their senders get :class:`cinema.ActorStopped`.
        Stopping a stopped actor does nothing. May be called from any thread.
        """
        ctx = self._ctx
        if _get_ident() != ctx._dispatcher.thread:
            _from_thread(ctx, ctx._request_stop)
            return
        ctx._request_stop()

    def do_send(self, msg: object) -> None:
        """Enqueue ``msg`` without waiting for it to be handled (fire and forget).

        Never blocks. A message for a stopped actor goes to the dead letters. May be called
        from any thread: from outside the system's event loop thread the message is handed to
        that loop, which wakes up for it; messages from one thread keep their order.

        :raises cinema.UnhandledMessage: the actor has no handler for the message's type
        :raises cinema.MailboxFull: the actor's bounded mailbox is full (from another thread a
            message that finds the mailbox full on arrival goes to the dead letters instead)
        """
        ctx = self._ctx
        if type(msg) in ctx._table and ctx._open == _get_ident():
            # Fast path: a known handler; alive, unbounded, mailbox allocated, and the caller
            # runs in the event loop's thread. get_ident() is the cheapest exact per-thread
            # check on CPython 3.11 (timeit: ~75 ns; asyncio's C _get_running_loop() ~185 ns, it
            # calls getpid(); a threading.local read ~100 ns; a ContextVar is cheaper but is
            # copied into worker threads by to_thread, so it cannot tell threads apart).
            ctx._mailbox.append(msg)  # type: ignore[union-attr]  # allocated when _open
            if not ctx._sched:
                ctx._sched = True
                ctx._dispatcher.schedule(ctx)
            return
        if ctx._info.lookup(type(msg)) is None:
            raise unhandled(type(ctx._actor), type(msg))
        if _get_ident() != ctx._dispatcher.thread:
            _from_thread(ctx, self._deliver_from_thread, msg)
            return
        if ctx._state >= STOPPING:
            ctx._dispatcher.registry.dead_letter(msg, ctx, STOPPED_REASON)
            return
        mailbox = ctx._mailbox
        if mailbox is None:
            mailbox = ctx._new_mailbox()
        if ctx._capacity is not None:
            if ctx._count >= ctx._capacity:
                raise MailboxFull(
                    f"the mailbox of {self!r} is full ({ctx._capacity} messages queued)"
                )
            ctx._count += 1
        mailbox.append(msg)
        if not ctx._sched:
            ctx._sched = True
            ctx._dispatcher.schedule(ctx)

    def _deliver_from_thread(self, msg: object) -> None:
        # In the event loop, for a do_send made in another thread.
        try:
            self.do_send(msg)
        except MailboxFull:
            ctx = self._ctx
            ctx._dispatcher.registry.dead_letter(msg, ctx, FULL_REASON)

    @overload
    def send_from_thread(self, msg: Message[R], *, timeout: float | None = None) -> R: ...

    @overload
    def send_from_thread(self, msg: object, *, timeout: float | None = None) -> object: ...

    def send_from_thread(self, msg: object, *, timeout: float | None = None) -> object:
        """:meth:`send` for code running in another OS thread: block until the reply comes.

        For synchronous code outside the event loop, such as a web framework's ``def``
        endpoints run in a thread pool, or a plain :class:`threading.Thread`. It raises what
        :meth:`send` raises.

        :raises cinema.CinemaError: called from the event loop's own thread (``await
            addr.send(...)`` there), or the system is no longer running
        """
        ctx = self._ctx
        dispatcher = ctx._dispatcher
        if _get_ident() == dispatcher.thread:
            raise CinemaError(
                "send_from_thread blocks its thread: in the event loop's thread use "
                "`await addr.send(...)`"
            )
        send = self.send

        async def call() -> object:
            return await send(msg, timeout=timeout)

        try:
            return anyio.from_thread.run(call, token=dispatcher.token)
        except anyio.RunFinishedError:
            raise ActorStopped(f"{self!r} is stopped: its system is closed") from None

    @overload
    async def send(self, msg: Message[R], *, timeout: float | None = None) -> R: ...

    @overload
    async def send(self, msg: object, *, timeout: float | None = None) -> object: ...

    async def send(self, msg: object, *, timeout: float | None = None) -> object:
        """Send ``msg`` and wait for the handler's reply.

        :param msg: the message; for a :class:`cinema.Message` ``[R]`` the reply is an ``R``
        :param timeout: seconds to wait for the reply; the message is not withdrawn
        :raises TimeoutError: no reply within ``timeout``
        :raises cinema.UnhandledMessage: the actor has no handler for the message's type
        :raises cinema.ActorStopped: the actor is stopped, or stopped before it replied
        :raises cinema.ActorFailed: the handler raised (the exception is the ``__cause__``)
        :raises cinema.ReplyError: the handler answered with this error (any subclass, as
            raised); the actor is not failed
        :raises cinema.CinemaError: awaited in another thread than the system's event loop
            (use :meth:`send_from_thread` there)
        """
        ctx = self._ctx
        if _get_ident() != ctx._dispatcher.thread:
            raise CinemaError(
                f"{self!r} lives in an event loop in another thread: await send() there, or "
                "call addr.send_from_thread() from a plain thread"
            )
        cls = type(msg)
        entry = ctx._table.get(cls)
        if entry is None:
            entry = ctx._info.lookup(cls)
        if entry is None:
            raise unhandled(type(ctx._actor), cls)
        dispatcher = ctx._dispatcher
        if ctx._state >= STOPPING:
            raise ActorStopped(f"{self!r} is stopped")
        if not ctx._sched and ctx._state == RUNNING and type(entry) is not AsyncHandler:
            # Fast path: the actor is idle and the handler is synchronous, so running it
            # here, in the sender's task, is indistinguishable from running it in the
            # dispatcher and saves two task switches. Cancellation is honoured here; the
            # sender yields to the event loop on every 64th such call, so that a loop of
            # sends cannot starve other tasks.
            dispatcher.inline_sends += 1
            if dispatcher.inline_sends & 63:
                await dispatcher.cancel_point()
            else:
                await dispatcher.checkpoint()
                if ctx._sched or ctx._state != RUNNING:
                    if ctx._state >= STOPPING:  # stopped while this task yielded
                        raise ActorStopped(f"{self!r} is stopped")
                    return await self._send_queued(ctx, msg, timeout)
            ctx._sched = True
            try:
                result = entry(ctx._actor, msg, ctx)
            except ReplyError:
                # An answer, not a failure: the actor goes on as after a normal reply.
                if ctx._mailbox or ctx._state != RUNNING:
                    dispatcher.schedule(ctx)
                else:
                    ctx._sched = False
                raise
            except BaseException as exc:
                dispatcher.fail_inline(ctx, exc)
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                raise dispatcher.failed(ctx, msg, exc) from exc
            if ctx._mailbox or ctx._state != RUNNING:
                dispatcher.schedule(ctx)
            else:
                ctx._sched = False
            return result
        if (
            isinstance(entry, AsyncHandler)
            and not ctx._sched
            and ctx._state == RUNNING
            and not dispatcher._hurry
        ):
            # The actor is idle and the handler is async: hand it straight to a worker task,
            # skipping the dispatcher (the mailbox is empty, so order is kept).
            ctx._sched = True
            fut = dispatcher.new_future()
            args = (ctx._actor, msg, ctx)
            dispatcher.start_handler(ctx, entry.func, args, fut)
            me = current_actor.get()
            if me is not None:
                # An actor's step awaits another: note it, for the cycle check.
                return await _await_tracked(me, ctx, fut, timeout)
            if timeout is None:
                return await fut
            with anyio.fail_after(timeout):
                return await fut
        return await self._send_queued(ctx, msg, timeout)

    async def _send_queued(self, ctx: Cell, msg: object, timeout: float | None) -> object:
        # The caller checked that the actor is alive, with no await since.
        if timeout is None:
            return await self._enqueue_and_wait(ctx, msg)
        with anyio.fail_after(timeout):
            return await self._enqueue_and_wait(ctx, msg)

    async def _enqueue_and_wait(self, ctx: Cell, msg: object) -> object:
        me = current_actor.get()
        if me is not None:
            _check_cycle(me, ctx)
        if ctx._capacity is not None:
            while ctx._count >= ctx._capacity:
                await ctx._wait_for_room()
                if ctx._state >= STOPPING:
                    raise ActorStopped(f"{self!r} is stopped")
            ctx._count += 1
        dispatcher = ctx._dispatcher
        fut = dispatcher.new_future()
        mailbox = ctx._mailbox
        if mailbox is None:
            mailbox = ctx._new_mailbox()
        mailbox.append(Ask(msg, fut))
        if not ctx._sched:
            ctx._sched = True
            dispatcher.schedule(ctx)
        if me is None:
            return await fut
        return await _await_tracked(me, ctx, fut, None)


def _from_thread(ctx: Cell, func: Callable[..., object], *args: object) -> None:
    """Run ``func(*args)`` soon in the event loop of ``ctx``'s system, from another thread."""
    try:
        ctx._dispatcher.call_soon_threadsafe(func, *args)
    except RuntimeError:  # the event loop is gone (trio's RunFinishedError is one too)
        if args:
            ctx._dispatcher.registry.dead_letter(args[0], ctx, CLOSED_REASON)


def _name(ctx: Cell) -> str:
    return f"{type(ctx._actor).__qualname__}#{ctx._id}"


def _check_cycle(me: Cell, target: Cell) -> None:
    """Raise :class:`cinema.Deadlock` if ``me`` awaiting ``target`` closes a cycle of asks.

    ``me`` is the actor whose async step the current task runs. The message to ``target`` is
    handled only once ``target``'s current step ends; if that step awaits (through others) a
    reply from ``me``, nobody ever goes on.
    """
    if not me._wait:
        return  # a task that outlived the step it was started from: not a step of ``me``
    if target is me:
        raise Deadlock(
            f"{me._addr!r} cannot await a reply from itself inside its own handler or hook "
            "(it would wait forever): use do_send, or call the method directly",
            [_name(me)],
        )
    waits = me._dispatcher.waits
    if not waits:
        return
    # Depth-first over "is awaiting a reply from", looking for a way back to ``me``.
    path = [target]
    seen = {target}
    stack = [iter(waits.get(target, ()))]
    while stack:
        nxt = next(stack[-1], None)
        if nxt is None:
            stack.pop()
            path.pop()
            continue
        if nxt is me:
            names = [_name(me), *(_name(c) for c in path)]
            raise Deadlock(
                f"{_name(me)} awaiting a reply from {_name(target)} would deadlock: "
                f"{' -> '.join([*names, names[0]])} each await the next one's reply",
                names,
            )
        if nxt in seen or not nxt._wait:
            continue
        seen.add(nxt)
        path.append(nxt)
        stack.append(iter(waits.get(nxt, ())))


async def _await_tracked(me: Cell, target: Cell, fut: Any, timeout: float | None) -> object:
    waits = me._dispatcher.waits
    edges = waits.get(me)
    if edges is None:
        edges = waits[me] = []
    edges.append(target)
    try:
        if timeout is None:
            return await fut
        with anyio.fail_after(timeout):
            return await fut
    finally:
        edges.remove(target)
        if not edges and waits.get(me) is edges:
            del waits[me]


def actor_class(addr: Addr[Any]) -> type:
    """The class of the actor behind ``addr`` (of its current instance, across restarts)."""
    return type(addr._ctx._actor)
