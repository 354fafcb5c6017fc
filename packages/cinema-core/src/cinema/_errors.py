"""The errors Cinema raises. Every one derives from :class:`CinemaError`."""

from __future__ import annotations


class CinemaError(Exception):
    """Base class of every error raised by Cinema."""


class UnhandledMessage(CinemaError, TypeError):
    """The target actor has no handler for the message's type.

    Raised by ``do_send`` at the call, and by ``send`` before anything is enqueued.
    """

    def __init__(self, actor_type: type, message_type: type, hint: str = "") -> None:
        self.actor_type = actor_type
        self.message_type = message_type
        super().__init__(
            f"actor {actor_type.__qualname__!r} has no handler for message type "
            f"{message_type.__qualname__!r}{hint}"
        )


class ActorStopped(CinemaError):
    """The actor is stopped, or stopped before it replied."""


class ActorFailed(CinemaError):
    """The handler raised while processing this ``send``.

    The original exception is the ``__cause__``; the failure was also handed to supervision.
    """


class NameTaken(CinemaError):
    """The registry name is already held by a live actor."""


class MailboxFull(CinemaError):
    """The bounded mailbox has no room for a ``do_send``."""


class HandlerDefinitionError(CinemaError, TypeError):
    """An ``@handler`` method or a stream handler is declared in a way Cinema cannot use."""


class Deadlock(CinemaError):
    """Awaiting this reply would close a cycle of actors awaiting each other's replies.

    Raised by ``send`` inside an actor's async handler or hook when the target (directly or
    through others) is itself awaiting a reply from this actor: the ask that would close the
    cycle fails at once instead of every actor in it waiting forever.
    """

    def __init__(self, message: str, cycle: list[str]) -> None:
        super().__init__(message)
        #: the actors in the cycle, by name, starting with the one that made this call
        self.cycle = cycle


class ReplyError(CinemaError):
    """Base class of the errors a handler *answers* with: expected outcomes, not failures.

    Raise a subclass from a handler (``class NotFound(ReplyError)``) and the sender's ``send``
    raises that same exception, typed; the actor is not failed, keeps its state and goes on with
    its next message, and nothing is logged as a crash. A reply error raised for a message sent
    with ``do_send`` has nobody to receive it and is logged at info level. Raised by a lifecycle
    hook or a stream handler, where no sender waits, it is an ordinary failure.

    It derives from :class:`CinemaError` so that ``send`` raises nothing but Cinema errors and
    ``TimeoutError``. Across ``cinema.remote`` a reply error travels as its type's name and its
    message (see :func:`cinema.lowlevel.reply_error_name` and
    :func:`cinema.lowlevel.rebuild_reply_error`).
    """

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        _reply_error_types[f"{cls.__module__}.{cls.__qualname__}"] = cls


# Every ReplyError subclass defined in this process, by "module.qualname": lets a process that
# receives a reply error's name from a peer raise the same type.
_reply_error_types: dict[str, type[ReplyError]] = {}


def reply_error_name(exc: ReplyError) -> str:
    """The name a reply error travels under between processes: ``"module.QualName"``."""
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}"


def rebuild_reply_error(name: str, message: str) -> ReplyError | None:
    """The reply error named ``name`` (as :func:`reply_error_name` gives it), if its class is
    defined in this process, carrying ``message`` as its only argument; else ``None``.

    The instance is made without calling the class's ``__init__`` (whose parameters a peer
    cannot know): ``str()`` of it is ``message``, and attributes set by ``__init__`` are absent.
    """
    cls = _reply_error_types.get(name)
    if cls is None:
        return None
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    return exc
