"""Low-level primitives for code that extends Cinema (transports, cinema-remote, cinema-cluster).

Applications do not need these. They are the pieces of the runtime's hot path that extenders
reuse, public here so that sibling distributions need not import private modules (as anyio's
``lowlevel`` does):

- :class:`Backend`: the primitives of the running backend: ``new_future()`` (an asyncio future,
  or a :class:`TrioFuture` on trio), ``checkpoint()``, ``cancel_point()`` and
  ``call_soon_threadsafe()``;
- :class:`Future`: the one-shot result slot those futures share;
- :func:`current_backend`: ``"asyncio"`` or ``"trio"``;
- :func:`close_task_group`: leave a task group entered by hand so that an exception from the
  ``async with`` block propagates as it is;
- :func:`cancelled_from_outside`: whether a cancellation exception came from a cancelled scope
  around the current task (shutdown) or was raised by other code (a failure);
- :func:`reply_error_name`, :func:`rebuild_reply_error`: carry a handler's
  :class:`cinema.ReplyError` between processes as its type's name and message, and raise the
  same type on the other side when that type is defined there;
- :func:`actor_class`, :func:`handled_types`: the class behind an :class:`cinema.Addr` and the
  message classes its handlers take (how a remote node serves every type an actor handles).
"""

from ._addr import actor_class as actor_class
from ._backend import Backend as Backend
from ._backend import Future as Future
from ._backend import TrioFuture as TrioFuture
from ._backend import cancelled_from_outside as cancelled_from_outside
from ._backend import close_task_group as close_task_group
from ._backend import current_backend as current_backend
from ._errors import rebuild_reply_error as rebuild_reply_error
from ._errors import reply_error_name as reply_error_name
from ._handler import handled_types as handled_types

__all__ = [
    "Backend",
    "Future",
    "TrioFuture",
    "actor_class",
    "cancelled_from_outside",
    "close_task_group",
    "current_backend",
    "handled_types",
    "rebuild_reply_error",
    "reply_error_name",
]

# Reprs and docs say cinema.lowlevel.Backend, not cinema._backend.Backend.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "") in (
        "cinema._addr",
        "cinema._backend",
        "cinema._errors",
        "cinema._handler",
    ):
        _obj.__module__ = __name__
del _name, _obj
