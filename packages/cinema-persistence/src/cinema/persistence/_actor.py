"""The persistent actor: state rebuilt from its events before it handles a message."""

from __future__ import annotations

import inspect
import logging
import types
import typing
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar, Union, get_args, get_origin

from cinema import Actor, ActorSystem, Context

from ._codec import register_types
from ._errors import EventDecodeError, PersistenceError, RecoveryFailed, SequenceGap
from ._journal import Journal
from ._rows import SnapshotCriteria

__all__ = ["PersistentActor", "use_journal"]

log = logging.getLogger("cinema.persistence")

E = TypeVar("E")

_system_journals: weakref.WeakKeyDictionary[ActorSystem, Journal] = weakref.WeakKeyDictionary()


def use_journal(system: ActorSystem, journal: Journal) -> None:
    """Make ``journal`` the journal of the persistent actors of ``system`` that do not name one
    (their ``journal`` attribute is ``None``)."""
    _system_journals[system] = journal


class _Recovery:
    """Per-instance bookkeeping (a fresh instance after each restart gets a fresh one)."""

    __slots__ = ("broken", "journal", "last_snapshot", "recovering", "sequence_nr")

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.sequence_nr = 0
        self.last_snapshot = 0
        self.recovering = True
        self.broken: str | None = None


def _flatten(annotation: object) -> list[type]:
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return [t for arg in get_args(annotation) for t in _flatten(arg)]
    if origin is typing.Annotated:
        return _flatten(get_args(annotation)[0])
    if isinstance(annotation, type):
        return [annotation]
    return []  # a TypeVar (a generic intermediate class) or a forward reference


class PersistentActor(Actor, Generic[E]):
    """An event-sourced actor: its state changes only in :meth:`apply`, from events that
    :meth:`persist` has made durable; recovery replays them (after the newest snapshot) before
    the first message, and again in the new instance after a supervisor restart.

    Set ``persistence_id`` (a class or instance attribute, unique per entity). Messages that
    arrive during recovery wait in the mailbox, in order. ``journal`` names the journal; left
    ``None``, the system's (:func:`use_journal`) is used.

    Snapshots: set ``snapshot_every = N`` and implement :meth:`snapshot_state` and
    :meth:`restore`; a snapshot is saved after every N events, the newest ``keep_snapshots``
    are kept. A snapshot that fails to load falls back to an older one, then to a full replay.

    The event types named in ``PersistentActor[E]`` (a class or a union), and the snapshot type
    annotated on :meth:`snapshot_state` or :meth:`restore`, are registered for decoding when
    the subclass is defined (others: :func:`register_types`).
    """

    persistence_id: str
    #: The journal; ``None``: the system's (see :func:`use_journal`).
    journal: Journal | None = None
    #: Save a snapshot after this many events (``None``: never automatically).
    snapshot_every: ClassVar[int | None] = None
    #: How many snapshots to keep.
    keep_snapshots: ClassVar[int] = 2

    _cinema_recovery: _Recovery | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            origin = get_origin(base)
            if isinstance(origin, type) and issubclass(origin, PersistentActor):
                for arg in get_args(base):
                    register_types(*_flatten(arg))
        # The snapshot type, from the annotations of snapshot_state() / restore().
        for name, key in (("snapshot_state", "return"), ("restore", "state")):
            func = cls.__dict__.get(name)
            if func is not None:
                try:
                    hint = typing.get_type_hints(func).get(key)
                except Exception:
                    continue  # an unresolvable annotation: register_types() is the way then
                register_types(*_flatten(hint))
        own_started = cls.__dict__.get("started")
        if own_started is not None and not getattr(own_started, "_cinema_wrapped", False):
            cls.started = _recover_first(own_started)  # type: ignore[method-assign]

    # -- what subclasses implement -------------------------------------------------------------

    def apply(self, event: E) -> None:
        """Change the state by one event: the only place state changes. Runs at recovery and
        after each persist; it must not fail nor do I/O (it reruns on every recovery)."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement apply(event)")

    def tags_of(self, event: E) -> Iterable[str]:
        """The tags stored with ``event`` (for ``Journal.events_by_tag``); default none."""
        return ()

    def snapshot_state(self) -> object:
        """The state to snapshot, as an object a serializer handles."""
        raise NotImplementedError(
            f"{type(self).__qualname__} sets snapshot_every but does not implement snapshot_state()"
        )

    def restore(self, state: Any) -> None:
        """Set the state from a snapshot taken by :meth:`snapshot_state`."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement restore(state)")

    def recovery_completed(self, ctx: Context[Self]) -> Awaitable[None] | None:
        """Called once recovery is done, before the first message (``def`` or ``async def``)."""
        return None

    # -- recovery ------------------------------------------------------------------------------

    if TYPE_CHECKING:
        # Typed like Actor.started, so that a subclass may override it with a plain ``def``.
        def started(self, ctx: Context[Self]) -> Awaitable[None] | None: ...

    else:

        async def started(self, ctx):
            """Runs recovery. A subclass overriding ``started`` gets recovery run before its
            own code (there is no need to call this)."""
            await self._cinema_recover(ctx)

    async def _cinema_recover(self, ctx: Context[Any]) -> None:
        if self._cinema_recovery is not None:
            return
        journal = self.journal if self.journal is not None else _system_journals.get(ctx.system)
        if journal is None:
            raise PersistenceError(
                f"{type(self).__qualname__} has no journal: set its journal attribute or call"
                " cinema.persistence.use_journal(system, journal)"
            )
        pid = getattr(self, "persistence_id", None)
        if not isinstance(pid, str) or not pid:
            raise PersistenceError(
                f"{type(self).__qualname__} needs a persistence_id (a non-empty str), got {pid!r}"
            )
        state = self._cinema_recovery = _Recovery(journal)
        snapshot = await journal.load_snapshot(pid)
        last = 0
        if snapshot is not None:
            last, snap_state = snapshot
            try:
                self.restore(snap_state)
            except Exception as exc:
                raise RecoveryFailed(pid, last, f"restore() raised {exc!r}") from exc
            state.last_snapshot = last
        highest = await journal.highest_sequence_nr(pid)
        apply = self.apply
        decoder = journal.codec.decoder
        # Carried from page to page: [last applied nr, none applied yet, serializer, type,
        # decoder of that pair].
        carry: list[Any] = [last, True, "", "", None]

        def consume(page: list[tuple[int, str, str, bytes]]) -> None:
            # The hot loop of recovery: one decode and one apply per event, on locals.
            last, first, kind_s, kind_t, decode = carry
            for nr, serializer, type_name, payload in page:
                if nr != last + 1 and not first:
                    raise SequenceGap(pid, last + 1, f"the next stored event is {nr}")
                first = False
                try:
                    if type(payload) is not bytes:
                        raise TypeError("not bytes")
                    if decode is None or type_name != kind_t or serializer != kind_s:
                        kind_s, kind_t = serializer, type_name
                        decode = decoder(serializer, type_name)
                    event = decode(payload)
                except Exception as exc:
                    raise EventDecodeError(pid, nr, _decode_failure(exc, payload)) from exc
                try:
                    apply(event)
                except Exception as exc:
                    raise RecoveryFailed(pid, nr, f"apply() raised {exc!r}") from exc
                last = nr
            carry[:] = last, first, kind_s, kind_t, decode

        await journal.replay(pid, last + 1, highest, consume)
        last, first = carry[0], carry[1]
        if not first and last < highest:
            raise SequenceGap(pid, last + 1, f"events {last + 1}..{highest} are missing")
        state.sequence_nr = max(last, highest)
        state.recovering = False
        hook = self.recovery_completed(ctx)
        if hook is not None:
            await hook

    # -- writing -------------------------------------------------------------------------------

    @property
    def last_sequence_nr(self) -> int:
        """The sequence number of the last event applied (``0``: none)."""
        state = self._cinema_recovery
        return state.sequence_nr if state is not None else 0

    def _cinema_writer(self) -> _Recovery:
        state = self._cinema_recovery
        if state is None or state.recovering:
            raise PersistenceError(
                f"{type(self).__qualname__} cannot persist before its recovery is done"
            )
        if state.broken is not None:
            raise PersistenceError(
                f"{self.persistence_id!r}: an earlier write failed ({state.broken}), so this"
                " instance's state may differ from the journal; let it fail and restart"
            )
        return state

    async def persist(self, event: E) -> None:
        """Store ``event``, then :meth:`apply` it; return once both are done.

        :raises SequenceConflict: another live instance wrote for this persistence id.
        :raises UnserializableEvent: no serializer handles the event; nothing was stored.
        :raises JournalUnavailable: the store failed (whether it stored the event is unknown;
            :class:`CircuitOpen`: it was not tried).
        """
        await self.persist_all((event,))

    async def persist_all(self, events: Iterable[E]) -> None:
        """Store ``events`` atomically (all or none), then apply each; return once done."""
        batch = list(events)
        if not batch:
            return
        state = self._cinema_writer()
        tags = [tuple(self.tags_of(event)) for event in batch]
        from ._errors import CircuitOpen, UnserializableEvent

        try:
            await state.journal.append(self.persistence_id, state.sequence_nr + 1, batch, tags)
        except (UnserializableEvent, CircuitOpen, ValueError):
            raise  # nothing was written: the instance is still in step with the journal
        except Exception as exc:
            state.broken = f"{type(exc).__name__}: {exc}"
            raise
        state.sequence_nr += len(batch)
        for event in batch:
            self.apply(event)
        every = self.snapshot_every
        if every is not None and state.sequence_nr - state.last_snapshot >= every:
            await self._cinema_auto_snapshot(state)

    async def save_snapshot(self) -> None:
        """Snapshot the state now (at :attr:`last_sequence_nr`).

        :raises UnserializableEvent: no serializer handles the state.
        :raises JournalUnavailable: the store failed.
        """
        state = self._cinema_writer()
        snapshot = self.snapshot_state()
        register_types(type(snapshot))
        await state.journal.save_snapshot(self.persistence_id, state.sequence_nr, snapshot)
        state.last_snapshot = state.sequence_nr
        keep = max(1, self.keep_snapshots)
        kept = await state.journal.snapshots(self.persistence_id, limit=keep + 1)
        if len(kept) > keep:
            await state.journal.delete_snapshots(
                self.persistence_id, SnapshotCriteria(max_sequence_nr=kept[keep].sequence_nr)
            )

    async def _cinema_auto_snapshot(self, state: _Recovery) -> None:
        # The events are durable already: a snapshot that cannot be saved costs replay time
        # only, so it is logged, not raised.
        try:
            await self.save_snapshot()
        except Exception:
            log.warning(
                "%r: saving a snapshot at %d failed",
                self.persistence_id,
                state.sequence_nr,
                exc_info=True,
            )
            state.last_snapshot = state.sequence_nr

    async def delete_events(self, to_sequence_nr: int) -> None:
        """Delete this actor's events up to ``to_sequence_nr`` (usually after a snapshot)."""
        state = self._cinema_writer()
        await state.journal.delete_events(
            self.persistence_id, min(to_sequence_nr, state.sequence_nr)
        )


def _decode_failure(exc: Exception, payload: object) -> str:
    if not isinstance(payload, bytes):
        return f"the stored payload is {type(payload).__name__}, not bytes"
    if isinstance(exc, LookupError):
        return str(exc)
    return f"it does not decode: {exc!r}"


def _recover_first(started: Callable[..., Any]) -> Callable[..., Any]:
    async def started_after_recovery(self: PersistentActor[Any], ctx: Context[Any]) -> None:
        await self._cinema_recover(ctx)
        result = started(self, ctx)
        if inspect.isawaitable(result):
            await result

    started_after_recovery._cinema_wrapped = True  # type: ignore[attr-defined]
    started_after_recovery.__doc__ = started.__doc__
    started_after_recovery.__qualname__ = getattr(started, "__qualname__", "started")
    return started_after_recovery


if TYPE_CHECKING:
    _: type[Actor] = PersistentActor
PersistentActor.__module__ = "cinema.persistence"
