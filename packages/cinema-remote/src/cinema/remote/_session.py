"""One authenticated connection's requests: hand each to routing, send back its reply.

The connection loop (``_connection.py``) calls down into a :class:`Session` for every request
frame; the session calls down into routing (a :class:`RemoteHandler`) or an extension handler,
and never back up: what the loop must do about a request (end the connection) comes back as a
raised :class:`Closing`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, final

import anyio

from cinema import ActorStopped
from cinema.abc import Connection

from ._errors import (
    FrameTooLarge,
    RemoteError,
    RemoteHandlerError,
    RemoteReplyError,
    UnknownExtension,
)
from ._peerlog import ConnectionLog, clip
from ._stats import RemoteCounters, error_kind_name
from ._wire import body_frame, error_to_wire
from .proto import wire_pb2 as pb

__all__ = ["Closing", "ExtensionHandler", "ReplyBudget", "Session"]

#: ``async def handler(data: bytes, peer: str) -> bytes | None`` for one extension kind: gets a
#: request's data and the peer's description, returns the reply's data (ignored for one-way).
ExtensionHandler = Callable[[bytes, str], Awaitable[bytes | None]]

# Errors from a connection that mean the peer is gone (not a fault of anyone here).
_GONE: Final = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


class Closing(Exception):
    """Internal: end this connection, telling the peer why."""

    def __init__(self, kind: pb.ErrorKind.ValueType, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@final
class ReplyBudget:
    """Bytes of replies that wait for their peer to read, per connection and in total.

    A reply that cannot be written at once waits (in memory) until the peer reads; a peer that
    stops reading would otherwise pin every reply of every request it sends.
    """

    __slots__ = ("per_connection", "total", "used")

    def __init__(self, per_connection: int, total: int) -> None:
        self.per_connection = per_connection
        self.total = total
        self.used = 0


@final
class Session:
    """Handles the requests of one connection once its handshake is done.

    :param handle_request: routing: the reply envelope for a request envelope.
    :param extensions: extension handlers by kind (shared with the server, which may add some).
    :param max_frame_size: the largest reply frame sent; a larger one becomes an error reply.
    """

    __slots__ = (
        "_budget",
        "_conn",
        "_counters",
        "_extensions",
        "_handle_request",
        "_log",
        "_max_frame_size",
        "_nowait",
        "_waiting",
    )

    def __init__(
        self,
        conn: Connection,
        log: ConnectionLog,
        handle_request: Callable[[pb.Envelope], Awaitable[pb.Envelope | None]],
        extensions: dict[str, ExtensionHandler],
        *,
        max_frame_size: int,
        budget: ReplyBudget,
        counters: RemoteCounters | None = None,
    ) -> None:
        self._counters = counters if counters is not None else RemoteCounters()
        self._conn = conn
        self._log = log
        self._handle_request = handle_request
        self._extensions = extensions
        self._max_frame_size = max_frame_size
        self._budget = budget
        self._waiting = 0  # bytes of this connection's replies waiting to be written
        self._nowait = conn.send_frame_nowait

    async def handle_envelope(self, envelope: pb.Envelope) -> None:
        """Route one request or one-way envelope; reply to a request.

        :raises Closing: the peer does not read its replies (over the reply budget).
        """
        counters = self._counters
        counters.requests += 1
        counters.in_flight += 1
        try:
            answer = await self._handle_request(envelope)
        except Exception as exc:
            what = self._what(envelope)
            error = self._failure(what, exc)
            if envelope.kind == pb.ENVELOPE_KIND_REQUEST:
                answer = pb.Envelope(
                    kind=pb.ENVELOPE_KIND_REPLY, correlation_id=envelope.correlation_id, error=error
                )
            else:
                self._log.info("one-way message (%s) was lost: %s", what, clip(error.message))
                return
        finally:
            counters.in_flight -= 1
        if envelope.kind != pb.ENVELOPE_KIND_REQUEST:
            return
        if answer is None:
            answer = pb.Envelope(kind=pb.ENVELOPE_KIND_REPLY)
        if answer.kind != pb.ENVELOPE_KIND_REPLY:
            answer.kind = pb.ENVELOPE_KIND_REPLY
        if answer.correlation_id != envelope.correlation_id:
            answer.correlation_id = envelope.correlation_id
        data = body_frame(answer)
        if len(data) > self._max_frame_size:
            error = self._too_large(self._what(envelope), len(data))
            data = body_frame(
                pb.Envelope(
                    kind=pb.ENVELOPE_KIND_REPLY, correlation_id=envelope.correlation_id, error=error
                )
            )
        await self._reply(data)

    async def handle_extension(self, ext: pb.Extension) -> None:
        """Hand one extension request or one-way frame to its handler; reply to a request.

        :raises Closing: as :meth:`handle_envelope`.
        """
        answer = pb.Extension(
            kind=ext.kind, envelope_kind=pb.ENVELOPE_KIND_REPLY, correlation_id=ext.correlation_id
        )
        what = f"extension {clip(ext.kind)}"
        try:
            handler = self._extensions.get(ext.kind)
            if handler is None:
                raise UnknownExtension(f"no handler for extension {clip(ext.kind)}")
            try:
                answer.data = await handler(ext.data, self._conn.remote_address) or b""
            except RemoteError:
                raise
            except Exception as exc:
                raise RemoteHandlerError(type(exc).__qualname__, str(exc)) from exc
        except Exception as exc:
            answer.error.CopyFrom(self._failure(what, exc))
        if ext.envelope_kind != pb.ENVELOPE_KIND_REQUEST:
            if answer.HasField("error"):
                self._log.info("one-way %s was lost: %s", what, clip(answer.error.message))
            return
        data = body_frame(answer)
        if len(data) > self._max_frame_size:
            answer.ClearField("data")
            answer.error.CopyFrom(self._too_large(what, len(data)))
            data = body_frame(answer)
        await self._reply(data)

    def _what(self, envelope: pb.Envelope) -> str:
        return f"{clip(envelope.message_type)} for {clip(envelope.actor_name) or '-'}"

    def _failure(self, what: str, exc: Exception) -> pb.Error:
        if isinstance(exc, RemoteReplyError):
            # The handler answered with a cinema.ReplyError: an outcome, not a failure.
            self._log.debug("request (%s) answered %s", what, clip(exc.type_name))
        elif isinstance(exc, RemoteError | ActorStopped):
            # The peer asked for something that does not exist or failed: not our fault.
            self._log.info("request (%s) failed: %s", what, clip(repr(exc)))
        else:
            self._log.error("internal error serving a request (%s)", what, exc_info=exc)
        error = error_to_wire(exc)
        self._counters.error(error_kind_name(error.kind))
        return error

    def _too_large(self, what: str, size: int) -> pb.Error:
        # The handler (the application) made a reply the protocol cannot carry.
        exc = FrameTooLarge(size, self._max_frame_size)
        self._log.error("the reply to a request (%s) is too large: %s", what, exc)
        return pb.Error(
            kind=pb.ERROR_KIND_HANDLER_ERROR,
            type_name=FrameTooLarge.__qualname__,
            message=f"the reply is too large: {exc}",
        )

    async def _reply(self, data: bytes) -> None:
        """Send one reply frame: at once if the connection can, else waiting within budget."""
        self._counters.bytes_out += len(data)
        try:
            if self._nowait(data):
                return
        except _GONE as exc:
            self._log.debug("cannot reply: %r", exc)
            return
        size = len(data)
        budget = self._budget
        if (self._waiting and self._waiting + size > budget.per_connection) or (
            budget.used and budget.used + size > budget.total
        ):
            raise Closing(
                pb.ERROR_KIND_OVERLOADED,
                f"the peer does not read its replies ({self._waiting + size} bytes waiting)",
            )
        self._waiting += size
        budget.used += size
        try:
            await self._conn.send_frame(data)
        except _GONE as exc:
            self._log.debug("cannot reply: %r", exc)
        finally:
            self._waiting -= size
            budget.used -= size
