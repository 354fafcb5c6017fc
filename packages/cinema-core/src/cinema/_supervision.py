"""Supervisor strategies, and the supervision policy as plain functions.

The dispatcher asks :func:`decide` what to do with a failure and applies the answer; the policy
itself (restart windows, backoff delays and their reset) lives here and touches nothing but the
strategy and the actor's :class:`RestartRecord`.
"""

from __future__ import annotations

import random
from collections import deque
from datetime import timedelta
from typing import Final, Literal, final


def seconds(value: float | timedelta, what: str) -> float:
    """A duration given as seconds or a ``timedelta``, validated, in seconds."""
    result = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if result != result or result < 0:  # NaN or negative
        raise ValueError(f"{what} must be a non-negative number of seconds, got {value!r}")
    return result


STOP: Final = 0
RESTART: Final = 1
ESCALATE: Final = 2
BACKOFF: Final = 3  # a restart, after a growing delay


@final
class SupervisorStrategy:
    """What happens to an actor when a handler or hook raises.

    Build one with :meth:`stop` (the default), :meth:`restart` or :meth:`escalate`.
    """

    __slots__ = (
        "_kind",
        "max_backoff",
        "max_restarts",
        "min_backoff",
        "random_factor",
        "reset_after",
        "within",
    )

    def __init__(self, kind: int, max_restarts: int | None = 0, within: float = 0.0) -> None:
        self._kind = kind
        #: restart: failures tolerated inside ``within``; backoff: restarts in a row (or None)
        self.max_restarts = max_restarts
        self.within = within
        self.min_backoff = 0.0
        self.max_backoff = 0.0
        self.random_factor = 0.0
        self.reset_after = 0.0

    @classmethod
    def stop(cls) -> SupervisorStrategy:
        """The failed actor stops for good; its watchers get ``Terminated``."""
        return cls(STOP)

    @classmethod
    def restart(cls, max_restarts: int, within: float | timedelta) -> SupervisorStrategy:
        """Replace the failed instance with a fresh one from the factory.

        :param max_restarts: failures tolerated inside any window of ``within``; one more and
            the actor stops for good
        :param within: the sliding window, in seconds or as a ``timedelta``
        """
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, int):
            raise TypeError(f"max_restarts must be an int, got {max_restarts!r}")
        if max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0, got {max_restarts}")
        return cls(RESTART, max_restarts, seconds(within, "within"))

    @classmethod
    def backoff(
        cls,
        min_backoff: float | timedelta,
        max_backoff: float | timedelta,
        *,
        random_factor: float = 0.2,
        reset_after: float | timedelta | None = None,
        max_restarts: int | None = None,
    ) -> SupervisorStrategy:
        """Restart the failed actor after a delay that doubles with each failure in a row.

        The n-th restart in a row waits ``min(max_backoff, min_backoff * 2 ** (n - 1))``,
        stretched by a random part of up to ``random_factor`` of it (so that many actors failing
        together do not restart in step). Messages sent meanwhile wait in the mailbox. Once the
        actor has run ``reset_after`` (default: ``max_backoff``) since its last restart without
        failing, the next failure counts as the first again.

        :param min_backoff: the first delay, in seconds or as a ``timedelta``
        :param max_backoff: the longest delay
        :param random_factor: up to this fraction of the delay is added at random (0: none)
        :param reset_after: how long the actor must run without failing for the count to reset
        :param max_restarts: restarts in a row before the actor stops for good (None: no limit)
        """
        low = seconds(min_backoff, "min_backoff")
        high = seconds(max_backoff, "max_backoff")
        if high < low:
            raise ValueError(f"max_backoff ({high}) must be >= min_backoff ({low})")
        factor = float(random_factor)
        if factor != factor or factor < 0:
            raise ValueError(f"random_factor must be >= 0, got {random_factor!r}")
        if max_restarts is not None:
            if isinstance(max_restarts, bool) or not isinstance(max_restarts, int):
                raise TypeError(f"max_restarts must be an int or None, got {max_restarts!r}")
            if max_restarts < 0:
                raise ValueError(f"max_restarts must be >= 0, got {max_restarts}")
        strategy = cls(BACKOFF, max_restarts)
        strategy.min_backoff = low
        strategy.max_backoff = high
        strategy.random_factor = factor
        strategy.reset_after = high if reset_after is None else seconds(reset_after, "reset_after")
        return strategy

    @classmethod
    def escalate(cls) -> SupervisorStrategy:
        """Stop the actor and make its failure the parent's own failure."""
        return cls(ESCALATE)

    @property
    def kind(self) -> str:
        """``"stop"``, ``"restart"``, ``"escalate"`` or ``"backoff"``."""
        return ("stop", "restart", "escalate", "backoff")[self._kind]

    def __repr__(self) -> str:
        if self._kind == RESTART:
            return f"SupervisorStrategy.restart({self.max_restarts}, within={self.within})"
        if self._kind == BACKOFF:
            return (
                f"SupervisorStrategy.backoff({self.min_backoff}, {self.max_backoff}, "
                f"random_factor={self.random_factor}, reset_after={self.reset_after}, "
                f"max_restarts={self.max_restarts})"
            )
        return f"SupervisorStrategy.{self.kind}()"

    def _key(self) -> tuple[object, ...]:
        return (
            self._kind,
            self.max_restarts,
            self.within,
            self.min_backoff,
            self.max_backoff,
            self.random_factor,
            self.reset_after,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SupervisorStrategy):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


#: Which siblings restart with a child that restarts (see ``Context.set_restart_group``).
RestartGroup = Literal["one_for_one", "one_for_all", "rest_for_one"]
RESTART_GROUPS: Final = ("one_for_one", "one_for_all", "rest_for_one")


class RestartRecord:
    """What supervision remembers about one actor's failures (kept across its restarts)."""

    __slots__ = ("failures", "in_a_row", "started_at")

    def __init__(self) -> None:
        self.failures: deque[float] = deque()  # times of recent failures (restart windows)
        self.in_a_row = 0  # backoff restarts since the actor last ran long enough
        self.started_at = 0.0  # when the current instance was made (backoff reset)


# What decide() tells the dispatcher to do.
DO_STOP: Final = 0
DO_RESTART: Final = 1
DO_ESCALATE: Final = 2
DO_GIVE_UP: Final = 3  # out of restarts: stop for good


def decide(
    strategy: SupervisorStrategy | None, record: RestartRecord, now: float
) -> tuple[int, float]:
    """The supervisor's decision on a failure at ``now``: (what to do, delay before a restart).

    Updates ``record`` (the failure is counted).
    """
    kind = strategy._kind if strategy is not None else STOP
    if kind == STOP or strategy is None:
        return DO_STOP, 0.0
    if kind == ESCALATE:
        return DO_ESCALATE, 0.0
    if kind == RESTART:
        window = record.failures
        window.append(now)
        cutoff = now - strategy.within
        while window and window[0] < cutoff:
            window.popleft()
        assert strategy.max_restarts is not None
        if len(window) > strategy.max_restarts:
            return DO_GIVE_UP, 0.0
        return DO_RESTART, 0.0
    # BACKOFF
    if record.in_a_row and now - record.started_at >= strategy.reset_after:
        record.in_a_row = 0  # it ran long enough: this failure is a first one again
    if strategy.max_restarts is not None and record.in_a_row >= strategy.max_restarts:
        return DO_GIVE_UP, 0.0
    record.in_a_row += 1
    return DO_RESTART, backoff_delay(strategy, record.in_a_row)


def backoff_delay(strategy: SupervisorStrategy, n: int, rand: float | None = None) -> float:
    """The delay before the ``n``-th restart in a row (``rand`` in [0, 1) for the random part)."""
    base = min(strategy.max_backoff, strategy.min_backoff * 2.0 ** min(n - 1, 64))
    if rand is None:
        rand = random.random()
    return base * (1.0 + strategy.random_factor * rand)
