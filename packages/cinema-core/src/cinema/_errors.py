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
    ``TimeoutError``.
    """
