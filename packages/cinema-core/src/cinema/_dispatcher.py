"""The dispatcher: runs ready actors' handlers back to back, without a task switch per message.

An actor with queued work is *scheduled*: it sits in the ready queue, is being processed, or is
parked while one of its async steps (an ``async def`` handler or hook) runs in a task of its own.
A scheduled actor is never scheduled twice, so one actor never runs two steps at once. Sync
handlers run inline in the dispatcher's loop; async ones get a task while the dispatcher moves on
to other actors, and hand the actor back when they finish.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from time import perf_counter
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from ._backend import Backend, Future, cancelled_from_outside
from ._envelopes import StreamEnd, StreamItem, Sys, Tick, Traced
from ._errors import ActorFailed, ActorStopped, ReplyError
from ._handler import AsyncHandler, Parked, class_info, unhandled
from ._message import DROPPED, NO_HANDLER, STOPPED_REASON, Terminated
from ._registry import safe_repr
from ._states import RESTARTING, RUNNING, STARTING, STOPPED, STOPPING, Ask, current_actor
from ._supervision import DO_ESCALATE, DO_GIVE_UP, DO_RESTART, decide

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from ._cell import Cell
    from ._registry import Registry

logger = logging.getLogger("cinema")
# Crash reports: an actor's failure and what supervision made of it. With no logging configured
# they reach stderr through Python's last-resort handler, as asyncio's task errors do.
crash_logger = logging.getLogger("cinema.crash")

# Raised by user code, these are not only that actor's failure: they end the whole system.
FATAL = (KeyboardInterrupt, SystemExit)

# How many messages one actor handles before the next ready actor gets its turn, and how many
# the dispatcher handles in all before it yields to the event loop.
PER_ACTOR = 256
PER_TURN = 4096
# Worker tasks kept waiting for async steps once they are done with one.
MAX_IDLE_WORKERS = 32

# Why a scheduled actor is parked (Context._wait).
WAIT_OP = 1
WAIT_CHILDREN = 2
WAIT_BACKOFF = 3

# Kinds of step (what an async step was running).
HANDLER = 0
STREAM = 1
STARTED = 2
STOPPED_HOOK = 3
FINISHED = 4


def _name(ctx: Cell) -> str:
    return f"{type(ctx._actor).__qualname__}#{ctx._id}"


def _failed(ctx: Cell, msg: object, exc: BaseException) -> ActorFailed:
    error = ActorFailed(f"{_name(ctx)} failed handling {type(msg).__qualname__}: {safe_repr(exc)}")
    error.__cause__ = exc
    return error


class Dispatcher:
    """Owns the ready queue of one :class:`cinema.ActorSystem`."""

    def __init__(self, registry: Registry) -> None:
        backend = Backend()
        self.backend = backend.name
        self.new_future: Callable[[], Future] = backend.new_future
        self.checkpoint = backend.checkpoint
        self.cancel_point = backend.cancel_point
        self.inline_sends = 0  # sends run in the sender's task (every 64th one yields)
        # The event loop's thread; other threads hand their calls over with call_soon_threadsafe.
        self.thread = threading.get_ident()
        # Tracing (cinema.telemetry.Tracing) when a tracer provider is configured, else None.
        # While it is on, the fast paths of do_send and send are closed (their thread checks
        # compare with these, 0 then) and every message goes through the traced path.
        self.instrument: Any = None
        self.open_ident = self.thread
        self.ask_ident = self.thread
        self.call_soon_threadsafe = backend.call_soon_threadsafe
        self.token = anyio.lowlevel.current_token()
        self.registry = registry
        registry.deliver = self.deliver
        # Statistics, per class: [messages handled, seconds in handlers] (the registry's dict;
        # per class, not per actor: an actor stays as small as without statistics).
        self.per_class = registry.counters.per_class
        self._ready: deque[Cell] = deque()
        self._wakeup: Future | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        # While shutting down in a hurry, async steps are not given tasks but queued here for
        # the shutdown driver (hooks run, handlers are dropped as cancelled).
        self._hurry = False
        self._deferred: deque[tuple[Cell, int, Any, tuple[Any, ...], Any]] = deque()
        self._ops: set[anyio.CancelScope] = set()
        # Idle worker tasks, each waiting on its future for the next async step.
        self._idle: list[Future] = []
        self._scope: anyio.CancelScope | None = None
        # Which actors' async steps await replies from which actors (for Deadlock).
        self.waits: dict[Cell, list[Cell]] = {}

    def sampled(self, ctx: Cell, seconds: float) -> None:
        """One in 64 sends handled in the sender's task took ``seconds``: its class's share."""
        self.per_class[ctx._info][1] += 64 * seconds

    def trace_with(self, instrument: Any) -> None:
        """Trace every message from now on (before any actor is spawned)."""
        self.instrument = instrument
        self.open_ident = self.ask_ident = 0

    def start(self, tg: anyio.abc.TaskGroup) -> None:
        """Start the dispatcher task in the system's task group, which its other tasks share."""
        self._tg = tg
        self.registry.scope = tg.cancel_scope
        tg.start_soon(self.run)

    def start_soon(self, func: Callable[..., Coroutine[Any, Any, None]], *args: object) -> None:
        """Run a runtime task (a timer, a stream pump) in the system's task group."""
        assert self._tg is not None
        self._tg.start_soon(func, *args)

    # -- scheduling ---------------------------------------------------------------------------

    def schedule(self, ctx: Cell) -> None:
        """Append a scheduled actor to the ready queue and wake the dispatcher."""
        self._ready.append(ctx)
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            if not wakeup.done():
                wakeup.set_result(None)

    async def run(self) -> None:
        """The dispatcher task: drain ready actors, park while there are none."""
        ready = self._ready
        with anyio.CancelScope() as self._scope:
            while True:
                if not ready:
                    await self.wait_for_work()
                try:
                    self.drain()
                except Exception:
                    # User code never gets here (failures are caught per actor); this is a bug
                    # in Cinema. Keep serving the other actors rather than take the app down.
                    logger.critical("internal error in the Cinema dispatcher", exc_info=True)
                if ready:
                    await self.checkpoint()

    async def wait_for_work(self) -> None:
        fut = self.new_future()
        self._wakeup = fut
        try:
            await fut
        finally:
            if self._wakeup is fut:
                self._wakeup = None

    def drain(self) -> None:
        ready = self._ready
        budget = PER_TURN
        process = self._process
        clock = perf_counter
        per_class = self.per_class
        while ready and budget > 0:
            ctx = ready.popleft()
            if not ctx._mailbox:
                # Nothing queued: a start, stop or restart step, not timed.
                budget -= process(ctx)
                continue
            began = clock()
            handled = process(ctx)
            # Statistics: once per turn, not per message.
            row = per_class[ctx._info]
            row[0] += handled
            row[1] += clock() - began
            budget -= handled

    # -- processing one actor -----------------------------------------------------------------

    def _process(self, ctx: Cell) -> int:
        """Advance one scheduled actor; return how many messages it handled."""
        handled = 0
        while True:
            if ctx._wait:
                return handled
            if ctx._failure is not None:
                self._on_failure(ctx)
            state = ctx._state
            if state == RUNNING:
                mailbox = ctx._mailbox
                if not mailbox:
                    self._idle_now(ctx)
                    return handled
                if handled >= PER_ACTOR:
                    self._ready.append(ctx)
                    return handled
                handled += self._run_messages(ctx, mailbox, PER_ACTOR - handled)
            elif state == STARTING:
                self._start(ctx)
            elif state == STOPPED:
                return handled
            else:
                self._advance(ctx)

    @staticmethod
    def _idle_now(ctx: Cell) -> None:
        # An idle actor gives its empty mailbox back (a deque is ~760 bytes): a million actors
        # that each handled a message once stay as small as ones that never did.
        ctx._sched = False
        if ctx._mailbox is not None:
            ctx._mailbox = None
            ctx._open = 0

    def _run_messages(self, ctx: Cell, mailbox: deque[Any], limit: int) -> int:
        # The hot loop. Sync handlers are plain functions in the table and run back to back;
        # stop() empties the mailbox and ends the loop; an async handler's entry raises Parked.
        if ctx._capacity is not None:
            return self._run_bounded(ctx, mailbox, limit)
        actor = ctx._actor
        get = ctx._table.get
        popleft = mailbox.popleft
        count = 0
        try:
            for count in range(limit):  # count is the result
                item = popleft()  # IndexError once the mailbox is empty ends the turn
                func = get(type(item))
                if func is None:
                    if not self._special(ctx, item):
                        return count + 1
                else:
                    try:
                        func(actor, item, ctx)
                    except Parked:
                        return count + 1
                    except BaseException as exc:
                        if isinstance(exc, ReplyError):
                            self._answer_error(ctx, item, None, exc)
                            continue
                        ctx._failure = exc
                        return count + 1
        except IndexError:
            return count
        return limit

    def _run_bounded(self, ctx: Cell, mailbox: deque[Any], limit: int) -> int:
        actor = ctx._actor
        table = ctx._table
        count = 0
        while mailbox and count < limit:
            item = mailbox.popleft()
            count += 1
            func = table.get(type(item))
            if func is None:
                if not self._special(ctx, item):
                    break
                continue
            self._room(ctx)
            try:
                func(actor, item, ctx)
            except Parked:
                break
            except BaseException as exc:
                if isinstance(exc, ReplyError):
                    self._answer_error(ctx, item, None, exc)
                    continue
                ctx._failure = exc
                break
            if ctx._state != RUNNING:
                break
        return count

    def _special(self, ctx: Cell, item: Any) -> bool:
        """Handle a queued item that is not a plain message; False ends the actor's turn."""
        cls = type(item)
        actor = ctx._actor
        info = ctx._info
        if cls is Ask:
            if ctx._capacity is not None:
                self._room(ctx)
            msg = item.msg
            entry = info.lookup(type(msg))
            if entry is None:
                if not item.fut.done():
                    item.fut.set_exception(unhandled(type(actor), type(msg)))
                return True
            return self._call_entry(ctx, entry, (actor, msg, ctx), item.fut)
        if cls is Traced:
            return bool(self.instrument.handle(self, ctx, item))
        if cls is Tick:
            handle = item.handle
            handle._queued = False
            if handle._cancelled:
                return True
            msg = item.msg
        elif cls is Sys:
            msg = item.msg
        elif cls is StreamItem:
            func = info.handle
            assert func is not None
            args = (actor, item.item, ctx)
            return self._call(ctx, STREAM, func, info.handle_async, args, item.ack)
        elif cls is StreamEnd:
            if info.finished is None:
                return True
            return self._call(ctx, FINISHED, info.finished, info.finished_async, (actor, ctx), None)
        else:
            # A plain message whose type this instance has no handler for: only possible when
            # a restart's factory made an instance of another class.
            if ctx._capacity is not None:
                self._room(ctx)
            self.registry.dead_letter(item, ctx, NO_HANDLER)
            return True
        entry = info.lookup(type(msg))
        if entry is None:
            self.registry.dead_letter(msg, ctx, NO_HANDLER)
            return True
        return self._call_entry(ctx, entry, (actor, msg, ctx), None)

    def _call_entry(self, ctx: Cell, entry: Any, args: tuple[Any, ...], reply: Any) -> bool:
        if type(entry) is AsyncHandler:
            return self._call(ctx, HANDLER, entry.func, True, args, reply)
        return self._call(ctx, HANDLER, entry, False, args, reply)

    def _call(
        self,
        ctx: Cell,
        kind: int,
        func: Any,
        is_async: bool,
        args: tuple[Any, ...],
        reply: Any,
    ) -> bool:
        if is_async:
            self._start_op(ctx, kind, func, args, reply)
            return False
        try:
            result = func(*args)
        except BaseException as exc:
            return self._step_failed(ctx, kind, args, reply, exc)
        if reply is not None and not reply.done():
            reply.set_result(result if kind == HANDLER else True)
        return ctx._state == RUNNING

    def _step_failed(
        self, ctx: Cell, kind: int, args: tuple[Any, ...], reply: Any, exc: BaseException
    ) -> bool:
        """A step raised; return whether the actor's turn goes on."""
        if kind == HANDLER and isinstance(exc, ReplyError):
            self._answer_error(ctx, args[1], reply, exc)
            return ctx._state == RUNNING
        if kind == STOPPED_HOOK:
            self._stop_hook_failed(ctx, exc)
            return False
        # Supervision decides first, so that a sender who sees ActorFailed also sees the
        # outcome (e.g. is_alive already False under the stop strategy).
        ctx._failure = exc
        self._on_failure(ctx)
        if reply is not None and not reply.done():
            if kind == HANDLER:
                reply.set_exception(_failed(ctx, args[1], exc))
            else:
                reply.set_result(False)
        return False

    def _stop_hook_failed(self, ctx: Cell, exc: BaseException) -> None:
        crash_logger.error("%s: stopped() raised", _name(ctx), exc_info=exc)
        if isinstance(exc, FATAL):
            self.registry.fatal(exc)

    @staticmethod
    def _answer_error(ctx: Cell, msg: object, reply: Any, exc: BaseException) -> None:
        """A handler answered with a :class:`cinema.ReplyError`: the sender gets it raised."""
        if reply is not None:
            if not reply.done():
                reply.set_exception(exc)
            return
        logger.info(
            "%s answered %s to a %s sent with do_send: nobody receives it",
            _name(ctx),
            safe_repr(exc),
            type(msg).__qualname__,
        )

    def _room(self, ctx: Cell) -> None:
        ctx._count -= 1
        ext = ctx._ext
        if ext is not None:
            room = ext.room
            while room:
                fut = room.popleft()
                if not fut.done():
                    fut.set_result(None)
                    break

    # -- async steps --------------------------------------------------------------------------

    def start_handler(self, ctx: Cell, func: Any, args: tuple[Any, ...], reply: Any) -> None:
        """Run an async handler in a task of its own; the actor is parked until it ends."""
        self._start_op(ctx, HANDLER, func, args, reply)

    def _start_op(self, ctx: Cell, kind: int, func: Any, args: tuple[Any, ...], reply: Any) -> None:
        ctx._wait = WAIT_OP
        if self._hurry:
            self._deferred.append((ctx, kind, func, args, reply))
            return
        job = (ctx, kind, func, args, reply)
        idle = self._idle
        while idle:
            slot = idle.pop()
            if not slot.done():
                slot.set_result(job)
                return
        assert self._tg is not None
        self._tg.start_soon(self._worker, job)

    async def _worker(self, job: tuple[Cell, int, Any, tuple[Any, ...], Any]) -> None:
        # Async steps run in pooled worker tasks: handing a step to an idle worker costs one
        # task switch, starting a task several times that. The worker's scope is what shutdown
        # cancels once the grace period is over.
        idle = self._idle
        scope = anyio.CancelScope()
        self._ops.add(scope)
        try:
            with scope:
                while True:
                    await self._op(*job)
                    if scope.cancel_called or len(idle) >= MAX_IDLE_WORKERS:
                        return
                    slot = self.new_future()
                    idle.append(slot)
                    job = await slot
        finally:
            self._ops.discard(scope)

    async def _op(self, ctx: Cell, kind: int, func: Any, args: tuple[Any, ...], reply: Any) -> None:
        # The task's own context: lets send() spot an actor awaiting a reply from itself.
        current_actor.set(ctx)
        ok = False
        result: Any = None
        error: BaseException | None = None
        began = perf_counter()
        try:
            if kind == STOPPED_HOOK:
                # stopped() runs shielded: it must run even when shutdown cancels handlers.
                with anyio.CancelScope(shield=True):
                    result = await func(*args)
                ok = True
            else:
                turns = 0
                while True:
                    try:
                        result = await func(*args)
                    except ReplyError as exc:
                        if kind != HANDLER:
                            raise
                        self._answer_error(ctx, args[1], reply, exc)
                        result = reply = None
                    step = self._next_async(ctx, kind, reply, result)
                    if step is None:
                        ok = True
                        break
                    # The next queued message also has an async handler: run it here rather
                    # than handing the actor back to the dispatcher.
                    func, args, reply = step
                    turns += 1
                    if turns % 16 == 0:
                        await self.checkpoint()
        except BaseException as exc:
            if isinstance(exc, anyio.get_cancelled_exc_class()) and cancelled_from_outside():
                raise  # shutdown: the step ends as cancelled
            error = exc
        finally:
            self.per_class[ctx._info][1] += perf_counter() - began
            self._op_done(ctx, kind, args, reply, ok, result, error)

    def _next_async(
        self, ctx: Cell, kind: int, reply: Any, result: Any
    ) -> tuple[Any, tuple[Any, ...], Any] | None:
        """After an async handler: the next step if it is an async handler too, else None."""
        if kind != HANDLER or ctx._state != RUNNING or ctx._failure is not None:
            return None
        mailbox = ctx._mailbox
        if not mailbox or ctx._capacity is not None:
            return None
        item = mailbox[0]
        if type(item) is Ask:
            msg, next_reply = item.msg, item.fut
        else:
            msg, next_reply = item, None
        entry = ctx._table.get(type(msg))
        if type(entry) is not AsyncHandler:
            return None
        mailbox.popleft()
        ctx._handled += 1
        if reply is not None and not reply.done():
            reply.set_result(result)
        return entry.func, (ctx._actor, msg, ctx), next_reply

    def _op_done(
        self,
        ctx: Cell,
        kind: int,
        args: tuple[Any, ...],
        reply: Any,
        ok: bool,
        result: Any,
        error: BaseException | None,
    ) -> None:
        if kind == STOPPED_HOOK:
            ctx._phase = 3
        if ctx._state == STOPPED:
            # Torn down while the step ran (a forced shutdown).
            if reply is not None and not reply.done():
                reply.set_exception(ActorStopped(f"{_name(ctx)} was stopped"))
            return
        if ok:
            if reply is not None and not reply.done():
                reply.set_result(result if kind == HANDLER else True)
            if kind == STARTED:
                ctx._up = True
                if ctx._state == STARTING:
                    ctx._state = RUNNING
        elif error is not None:
            self._step_failed(ctx, kind, args, reply, error)
        else:
            # Cancelled by shutdown.
            if reply is not None and not reply.done():
                if kind == HANDLER:
                    reply.set_exception(ActorStopped(f"{_name(ctx)} was cancelled by shutdown"))
                else:
                    reply.set_result(False)
            if kind == STARTED and ctx._state == STARTING:
                ctx._state = RUNNING
        ctx._wait = 0
        if ctx._state == RUNNING and not ctx._mailbox and ctx._failure is None:
            self._idle_now(ctx)  # nothing for the dispatcher to do
        else:
            self.schedule(ctx)

    def cancel_ops(self) -> None:
        """Cancel every worker task (``stopped`` hooks inside run shielded)."""
        for scope in list(self._ops):
            scope.cancel()

    # -- lifecycle ----------------------------------------------------------------------------

    def _start(self, ctx: Cell) -> None:
        info = ctx._info
        hook = info.started
        if hook is None:
            ctx._state = RUNNING
            ctx._up = True
            return
        if info.started_async:
            self._start_op(ctx, STARTED, hook, (ctx._actor, ctx), None)
            return
        try:
            hook(ctx._actor, ctx)
        except BaseException as exc:
            ctx._failure = exc
            return
        ctx._up = True
        if ctx._state == STARTING:
            ctx._state = RUNNING

    def _on_failure(self, ctx: Cell) -> None:
        exc = ctx._failure
        assert exc is not None
        ctx._failure = None
        if isinstance(exc, FATAL):
            self.registry.fatal(exc)
        if ctx._state >= STOPPING:
            crash_logger.error("%s failed while stopping", _name(ctx), exc_info=exc)
            self._decided(ctx, exc, "none (stopping)", 0.0)
            return
        ext = ctx._extra()
        decision, delay = decide(ctx._strategy, ext.record, time.monotonic())
        ctx._phase = 0
        self._decided(
            ctx,
            exc,
            {DO_RESTART: "restart", DO_GIVE_UP: "give up", DO_ESCALATE: "escalate"}.get(
                decision, "stop"
            ),
            delay,
        )
        if decision == DO_RESTART:
            if delay:
                crash_logger.error(
                    "%s failed: restarting in %.3gs", _name(ctx), delay, exc_info=exc
                )
                ext.delay = delay
            else:
                crash_logger.error("%s failed: restarting", _name(ctx), exc_info=exc)
            ctx._state = RESTARTING
            self._restart_siblings(ctx)
        elif decision == DO_GIVE_UP:
            strategy = ctx._strategy
            assert strategy is not None
            if strategy.kind == "restart":
                crash_logger.error(
                    "%s failed %d times within %ss: stopping for good",
                    _name(ctx),
                    len(ext.record.failures),
                    strategy.within,
                    exc_info=exc,
                )
            else:
                crash_logger.error(
                    "%s failed after %d restarts in a row: stopping for good",
                    _name(ctx),
                    ext.record.in_a_row,
                    exc_info=exc,
                )
            ctx._set_stopping()
        elif decision == DO_ESCALATE:
            crash_logger.error("%s failed: escalating to its supervisor", _name(ctx), exc_info=exc)
            ext.escalation = exc
            ctx._set_stopping()
        else:
            crash_logger.error("%s failed: stopping", _name(ctx), exc_info=exc)
            ctx._set_stopping()

    def _decided(self, ctx: Cell, exc: BaseException, decision: str, delay: float) -> None:
        # Statistics (counts, recent failures) and the trace's supervision event.
        self.registry.counters.failure(ctx, exc, decision)
        if self.instrument is not None:
            self.instrument.decided(ctx, decision, delay)

    def _restart_siblings(self, ctx: Cell) -> None:
        """A child restarts: under one-for-all or rest-for-one, its siblings restart too."""
        parent = ctx._parent
        if parent is None or parent._ext is None or parent._ext.group == "one_for_one":
            return
        children = parent._children
        if not children:
            return
        rest = parent._ext.group == "rest_for_one"
        for sibling in sorted(children, key=lambda c: c._id):
            if sibling is ctx or sibling._factory is None or (rest and sibling._id < ctx._id):
                continue
            if sibling._state not in (STARTING, RUNNING):
                continue
            sibling._state = RESTARTING
            sibling._phase = 0
            if not sibling._sched:
                sibling._sched = True
                self.schedule(sibling)

    def fail(self, ctx: Cell, exc: BaseException) -> None:
        """Hand a failure from outside a handler (a stream, an escalation) to supervision."""
        if ctx._state not in (STARTING, RUNNING):
            crash_logger.error("%s: failure while not running", _name(ctx), exc_info=exc)
            return
        if ctx._failure is None:
            ctx._failure = exc
        else:
            crash_logger.error("%s: further failure", _name(ctx), exc_info=exc)
        if not ctx._sched:
            ctx._sched = True
            self.schedule(ctx)

    @staticmethod
    def failed(ctx: Cell, msg: object, exc: BaseException) -> ActorFailed:
        """The :class:`cinema.ActorFailed` a sender gets when handling ``msg`` raised ``exc``."""
        return _failed(ctx, msg, exc)

    def fail_inline(self, ctx: Cell, exc: BaseException) -> None:
        """A handler run in the sender's task raised; ``ctx`` is scheduled already."""
        ctx._failure = exc
        self._on_failure(ctx)
        self.schedule(ctx)

    def _advance(self, ctx: Cell) -> None:
        """One step of a stop or restart: children, then ``stopped``, then the end."""
        phase = ctx._phase
        if phase == 0:
            self._drop_timers_and_streams(ctx)
            if ctx._state == STOPPING:
                self.flush(ctx)
            ctx._phase = 1
            children = ctx._children
            if children:
                for child in list(children):
                    child._request_stop()
                ctx._wait = WAIT_CHILDREN
                return
            phase = 1
        if phase == 1:
            ctx._phase = 2
            info = ctx._info
            hook = info.stopped
            # stopped() pairs with a started() that completed: an instance stopped before it
            # ever started (or whose started() failed) has nothing to release.
            if hook is not None and ctx._up:
                ctx._up = False
                if info.stopped_async:
                    self._start_op(ctx, STOPPED_HOOK, hook, (ctx._actor, ctx), None)
                    return
                try:
                    hook(ctx._actor, ctx)
                except BaseException as exc:
                    self._stop_hook_failed(ctx, exc)
            phase = ctx._phase = 3
        if phase == 3:
            if ctx._state == STOPPING:
                self.finalize(ctx)
                return
            ext = ctx._ext
            if ext is not None and ext.delay > 0:
                delay, ext.delay = ext.delay, 0.0
                ctx._wait = WAIT_BACKOFF
                assert self._tg is not None
                self._tg.start_soon(self._backoff, ctx, ext, delay)
                return
            self._recreate(ctx)

    async def _backoff(self, ctx: Cell, ext: Any, delay: float) -> None:
        # A restart under a backoff strategy waits here; stop() or shutdown cut it short.
        scope = anyio.CancelScope()
        ext.backoff = scope
        self._ops.add(scope)
        try:
            with scope:
                await anyio.sleep(delay)
        finally:
            self._ops.discard(scope)
            ext.backoff = None
            if ctx._wait == WAIT_BACKOFF:
                ctx._wait = 0
                self.schedule(ctx)

    def _recreate(self, ctx: Cell) -> None:
        factory = ctx._factory
        try:
            assert factory is not None
            actor = factory()
            from ._actor import Actor

            if not isinstance(actor, Actor):
                raise TypeError(f"the factory returned {actor!r}, not an Actor")
            info = class_info(type(actor))
        except BaseException as exc:
            crash_logger.error("%s: restart failed: stopping for good", _name(ctx), exc_info=exc)
            if isinstance(exc, FATAL):
                self.registry.fatal(exc)
            ctx._set_stopping()
            self.finalize(ctx)
            return
        ctx._actor = actor
        ctx._info = info
        ctx._table = info.table
        self.registry.counters.restart(ctx)
        if self.instrument is not None:
            self.instrument.restarted(ctx)
        if ctx._ext is not None:
            ctx._ext.record.started_at = time.monotonic()
        ctx._up = False
        ctx._phase = 0
        ctx._state = STARTING

    def _drop_timers_and_streams(self, ctx: Cell) -> None:
        ext = ctx._ext
        if ext is None:
            return
        for timer in list(ext.timers):
            timer._drop()
        ext.timers.clear()
        for scope in list(ext.streams):
            scope.cancel()
        ext.streams.clear()
        mailbox = ctx._mailbox
        if mailbox:
            items = list(mailbox)
            mailbox.clear()
            for item in items:
                cls = type(item)
                if cls is StreamItem:
                    if not item.ack.done():
                        item.ack.set_result(False)
                elif cls is not StreamEnd and cls is not Tick:
                    mailbox.append(item)

    def flush(self, ctx: Cell) -> None:
        """Refuse everything still queued for a stopping actor; nothing vanishes silently."""
        mailbox = ctx._mailbox
        if mailbox:
            items = list(mailbox)
            mailbox.clear()
            for item in items:
                cls = type(item)
                if cls is Ask:
                    if not item.fut.done():
                        item.fut.set_exception(ActorStopped(f"{ctx._addr!r} is stopped"))
                elif cls is StreamItem:
                    if not item.ack.done():
                        item.ack.set_result(False)
                elif cls is Sys:
                    self.registry.dead_letter(item.msg, ctx, DROPPED)
                elif cls is Traced:
                    if item.fut is None:
                        self.registry.dead_letter(item.msg, ctx, DROPPED)
                    elif not item.fut.done():
                        item.fut.set_exception(ActorStopped(f"{ctx._addr!r} is stopped"))
                elif cls is not Tick and cls is not StreamEnd:
                    self.registry.dead_letter(item, ctx, DROPPED)
        ctx._count = 0
        ext = ctx._ext
        if ext is not None:
            while ext.room:
                fut = ext.room.popleft()
                if not fut.done():
                    fut.set_result(None)

    def finalize(self, ctx: Cell) -> None:
        """The actor has stopped for good: tell everyone who needs to know."""
        ctx._state = STOPPED
        ctx._open = 0
        ctx._sched = True  # never scheduled again
        ctx._wait = 0
        self._drop_timers_and_streams(ctx)
        self.flush(ctx)
        if self.instrument is not None:
            self.instrument.forget(ctx)
        addr = ctx._addr
        escalation = None
        ext = ctx._ext
        if ext is not None:
            parent = ctx._parent
            for watcher in list(ext.watchers):
                if watcher._ext is not None:
                    watcher._ext.watching.discard(ctx)
                if watcher is parent and watcher._state >= RESTARTING:
                    continue  # the parent stops or restarts, and stopped this child itself
                self.deliver(watcher, Terminated(addr))
            ext.watchers.clear()
            for target in list(ext.watching):
                if target._ext is not None:
                    target._ext.watchers.discard(ctx)
            ext.watching.clear()
            escalation = ext.escalation
            ext.escalation = None
        parent = ctx._parent
        if parent is not None:
            children = parent._children
            if children is not None:
                children.discard(ctx)
                if parent._wait == WAIT_CHILDREN and not children:
                    parent._wait = 0
                    self.schedule(parent)
            if escalation is not None:
                self.fail(parent, escalation)
        elif escalation is not None:
            crash_logger.error(
                "%s escalated a failure with no supervisor above it: its tree is stopped",
                _name(ctx),
                exc_info=escalation,
            )
        self.registry.finalized(ctx)

    def deliver(self, ctx: Cell, msg: object) -> None:
        """Queue a runtime message (``Terminated``) for ``ctx``, past any mailbox bound."""
        self.enqueue(ctx, Sys(msg))

    def enqueue(self, ctx: Cell, item: object) -> bool:
        """Queue a runtime item; False (and a dead letter if it matters) if ``ctx`` is dead."""
        if ctx._state >= STOPPING:
            if isinstance(item, Sys):
                self.registry.dead_letter(item.msg, ctx, STOPPED_REASON)
            elif isinstance(item, StreamItem) and not item.ack.done():
                item.ack.set_result(False)
            return False
        mailbox = ctx._mailbox
        if mailbox is None:
            mailbox = ctx._new_mailbox()
        mailbox.append(item)
        if not ctx._sched:
            ctx._sched = True
            self.schedule(ctx)
        return True

    # -- shutdown -----------------------------------------------------------------------------

    async def drive_shutdown(self) -> None:
        """Finish stopping every actor from the shutdown task, in a hurry.

        Used once the grace period is over or when the system's block was cancelled: the
        dispatcher task is cancelled, running handlers are cancelled, and this coroutine takes
        over the ready queue. Async ``stopped`` hooks still run (shielded by the caller).
        """
        self._hurry = True
        if self._scope is not None:
            self._scope.cancel()
        self.cancel_ops()
        registry = self.registry
        while registry.live:
            self.drain()
            if self._deferred:
                ctx, kind, func, args, reply = self._deferred.popleft()
                if kind == STOPPED_HOOK:
                    await self._op(ctx, kind, func, args, reply)
                else:
                    self._op_done(ctx, kind, args, reply, False, None, None)
            elif not self._ready and registry.live:
                await self.wait_for_work()
