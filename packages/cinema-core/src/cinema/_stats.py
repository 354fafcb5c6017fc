"""Statistics snapshots of a system: what :meth:`cinema.ActorSystem.stats` returns.

Counting costs the hot paths almost nothing: each system keeps, per class of actor, a message
count and the seconds spent handling them, bumped once per dispatcher turn (not per message); a
send run inline in the sender's task is counted on the actor (an int slot) and one in 64 is
timed. Failures and restarts are counted where supervision decides, never a hot path. A snapshot
walks the live actors once for their counts and mailbox depths.
"""

from __future__ import annotations

import time
import traceback
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ._states import STOPPING

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from ._registry import Registry

__all__ = ["ActorTypeStats", "FailureRecord", "SystemStats"]

#: How many failures a system remembers for :attr:`SystemStats.recent_failures`.
RECENT_FAILURES = 50
# Characters of a traceback kept per failure.
TRACEBACK_LIMIT = 8000
#: The longest ``repr`` of a failure's exception kept in a record.
ERROR_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class ActorTypeStats:
    """Counters of the actors of one class (by ``__qualname__``), live and stopped.

    :ivar actor_type: the class's ``__qualname__``
    :ivar live: actors of the class alive now (not stopping)
    :ivar messages: messages (and requests) handled so far
    :ivar handling_seconds: time spent in their handlers (wall time for ``async`` ones)
    :ivar mailbox: messages queued now, summed over the live actors
    :ivar max_mailbox: the longest mailbox among the live actors now
    :ivar failures: handler or hook failures handed to supervision
    :ivar restarts: fresh instances made by supervision
    """

    actor_type: str
    live: int = 0
    messages: int = 0
    handling_seconds: float = 0.0
    mailbox: int = 0
    max_mailbox: int = 0
    failures: int = 0
    restarts: int = 0


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """One failure supervision handled.

    :ivar at: when (``time.time()``)
    :ivar actor: the actor, as ``"Class#id"``
    :ivar actor_type: the class's ``__qualname__``
    :ivar error: ``repr`` of the exception
    :ivar traceback: the formatted traceback (clipped to 8000 characters)
    :ivar decision: what supervision did: ``"restart"``, ``"stop"``, ``"give up"``,
        ``"escalate"``, or ``"none (stopping)"``
    """

    at: float
    actor: str
    actor_type: str
    error: str
    traceback: str
    decision: str


@dataclass(frozen=True, slots=True)
class SystemStats:
    """A snapshot of one :class:`cinema.ActorSystem` (see :meth:`cinema.ActorSystem.stats`).

    :ivar backend: ``"asyncio"`` or ``"trio"`` (``""`` before the system was entered)
    :ivar actors: live actors
    :ivar messages: messages handled so far, all actors together
    :ivar dead_letters: dead letters so far
    :ivar dead_letters_by_reason: the same by reason (see :class:`cinema.DeadLetter`)
    :ivar actor_types: per class, by ``__qualname__``
    :ivar recent_failures: the last 50 failures, oldest first
    """

    backend: str
    actors: int
    messages: int
    dead_letters: int
    dead_letters_by_reason: Mapping[str, int] = field(default_factory=dict)
    actor_types: Mapping[str, ActorTypeStats] = field(default_factory=dict)
    recent_failures: tuple[FailureRecord, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The snapshot as plain JSON-ready data (dicts, lists, numbers, strings)."""
        return {
            "backend": self.backend,
            "actors": self.actors,
            "messages": self.messages,
            "dead_letters": self.dead_letters,
            "dead_letters_by_reason": dict(self.dead_letters_by_reason),
            "actor_types": {name: asdict(s) for name, s in self.actor_types.items()},
            "recent_failures": [asdict(f) for f in self.recent_failures],
        }


def _zero_row() -> list[Any]:
    return [0, 0.0]


class Counters:
    """The system-wide counters the registry keeps for statistics."""

    __slots__ = ("failures", "per_class", "recent", "restarts")

    def __init__(self) -> None:
        # class info -> [messages handled, seconds in handlers] (added once per turn); a class
        # seen for the first time gets a zero row on first use.
        self.per_class: defaultdict[Any, list[Any]] = defaultdict(_zero_row)
        self.failures: dict[str, int] = {}
        self.restarts: dict[str, int] = {}
        self.recent: deque[FailureRecord] = deque(maxlen=RECENT_FAILURES)

    def fold(self, ctx: Any) -> None:
        """An actor stopped for good: its own count joins its class's."""
        handled = ctx._handled
        if handled:
            self.per_class[ctx._info][0] += handled

    def failure(self, ctx: Any, exc: BaseException, decision: str) -> FailureRecord:
        """Count a failure and remember it."""
        name = type(ctx._actor).__qualname__
        self.failures[name] = self.failures.get(name, 0) + 1
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        if len(text) > TRACEBACK_LIMIT:
            text = text[:TRACEBACK_LIMIT] + "\n..."
        try:
            error = repr(exc)
        except Exception:
            error = f"<{type(exc).__qualname__} (repr failed)>"
        if len(error) > ERROR_LIMIT:  # bounded like the traceback: it is shown as it is
            error = error[:ERROR_LIMIT] + "..."
        record = FailureRecord(time.time(), f"{name}#{ctx._id}", name, error, text, decision)
        self.recent.append(record)
        return record

    def restart(self, ctx: Any) -> None:
        name = type(ctx._actor).__qualname__
        self.restarts[name] = self.restarts.get(name, 0) + 1


def live_cells(registry: Registry) -> Iterator[Any]:
    """Every live actor's cell, parents before children."""
    stack = list(registry.top)
    while stack:
        ctx = stack.pop()
        yield ctx
        children = ctx._children
        if children:
            stack.extend(children)


def collect(registry: Registry, backend: str) -> SystemStats:
    """Take a snapshot of a system's counters."""
    counters = registry.counters
    rows: dict[str, list[Any]] = {}  # name -> [live, messages, seconds, mailbox, max]
    for info, (messages, seconds) in list(counters.per_class.items()):
        name = info.cls.__qualname__
        row = rows.get(name)
        if row is None:
            row = rows[name] = [0, 0, 0.0, 0, 0]
        row[1] += messages
        row[2] += seconds
    for ctx in live_cells(registry):
        name = type(ctx._actor).__qualname__
        row = rows.get(name)
        if row is None:
            row = rows[name] = [0, 0, 0.0, 0, 0]
        if ctx._state < STOPPING:
            row[0] += 1
        row[1] += ctx._handled
        depth = len(ctx._mailbox) if ctx._mailbox else 0
        row[3] += depth
        if depth > row[4]:
            row[4] = depth
    for name in (*counters.failures, *counters.restarts):
        rows.setdefault(name, [0, 0, 0.0, 0, 0])
    types = {
        name: ActorTypeStats(
            name,
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            counters.failures.get(name, 0),
            counters.restarts.get(name, 0),
        )
        for name, row in sorted(rows.items())
    }
    return SystemStats(
        backend,
        registry.live,
        sum(s.messages for s in types.values()),
        registry.dead_letters,
        dict(registry.dead_counts),
        types,
        tuple(counters.recent),
    )
