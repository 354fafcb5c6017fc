"""Supervisor strategies."""

from __future__ import annotations

from datetime import timedelta
from typing import Final, final


def seconds(value: float | timedelta, what: str) -> float:
    """A duration given as seconds or a ``timedelta``, validated, in seconds."""
    result = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if result != result or result < 0:  # NaN or negative
        raise ValueError(f"{what} must be a non-negative number of seconds, got {value!r}")
    return result


STOP: Final = 0
RESTART: Final = 1
ESCALATE: Final = 2


@final
class SupervisorStrategy:
    """What happens to an actor when a handler or hook raises.

    Build one with :meth:`stop` (the default), :meth:`restart` or :meth:`escalate`.
    """

    __slots__ = ("_kind", "max_restarts", "within")

    def __init__(self, kind: int, max_restarts: int = 0, within: float = 0.0) -> None:
        self._kind = kind
        self.max_restarts = max_restarts
        self.within = within

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
    def escalate(cls) -> SupervisorStrategy:
        """Stop the actor and make its failure the parent's own failure."""
        return cls(ESCALATE)

    @property
    def kind(self) -> str:
        """``"stop"``, ``"restart"`` or ``"escalate"``."""
        return ("stop", "restart", "escalate")[self._kind]

    def __repr__(self) -> str:
        if self._kind == RESTART:
            return f"SupervisorStrategy.restart({self.max_restarts}, within={self.within})"
        return f"SupervisorStrategy.{self.kind}()"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SupervisorStrategy):
            return NotImplemented
        return (self._kind, self.max_restarts, self.within) == (
            other._kind,
            other.max_restarts,
            other.within,
        )

    def __hash__(self) -> int:
        return hash((self._kind, self.max_restarts, self.within))
