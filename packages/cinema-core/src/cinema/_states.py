"""The few facts about an actor that every runtime module reads: a leaf, importing nothing.

Kept apart (as trio keeps ``_run_context``) so that ``_addr``, ``_context``, ``_dispatcher`` and
``_system`` share them without importing each other for them.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

# The runtime record of the actor whose async step the current task runs (None outside such
# tasks): lets send() spot an actor awaiting itself, and the cycle check find who is asking.
current_actor: ContextVar[Any] = ContextVar("cinema_current_actor", default=None)

# Actor states; an actor is alive while its state is below STOPPING.
STARTING = 0
RUNNING = 1
RESTARTING = 2
STOPPING = 3
STOPPED = 4


class Ask:
    """A queued ``send``: the message and the future its sender awaits."""

    __slots__ = ("fut", "msg")

    def __init__(self, msg: object, fut: Any) -> None:
        self.msg = msg
        self.fut = fut
