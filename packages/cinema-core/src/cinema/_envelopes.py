"""What the runtime queues in a mailbox besides plain ``do_send`` messages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._timers import TimerHandle


class Tick:
    """A timer delivery; dropped if its timer was cancelled before it is handled."""

    __slots__ = ("handle", "msg")

    def __init__(self, handle: TimerHandle, msg: object) -> None:
        self.handle = handle
        self.msg = msg


class Sys:
    """A message from the runtime (``Terminated``): not counted by a bounded mailbox."""

    __slots__ = ("msg",)

    def __init__(self, msg: object) -> None:
        self.msg = msg


class StreamItem:
    """One stream item; ``ack`` resolves to True once handled, False if dropped."""

    __slots__ = ("ack", "item")

    def __init__(self, item: object, ack: Any) -> None:
        self.item = item
        self.ack = ack


class StreamEnd:
    """A stream ended by itself: run ``finished``."""

    __slots__ = ()


class Traced:
    """A message sent while tracing is on, with the sender's span context (see telemetry)."""

    __slots__ = ("fut", "msg", "parent")

    def __init__(self, msg: object, fut: Any, parent: Any) -> None:
        self.msg = msg
        self.fut = fut  # the reply's future for a send, None for a do_send
        self.parent = parent  # the OpenTelemetry context of the sender's span
