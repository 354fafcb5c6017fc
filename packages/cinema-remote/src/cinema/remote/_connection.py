"""One accepted connection, from its handshake to its end: the connection loop.

``RemoteServer`` (``_server.py``) accepts and hands each connection to a
:class:`ServerConnection`, which runs the handshake, then reads request frames and hands each
to the connection's :class:`~._session.Session` (which calls routing). Calls only go down this
chain; what a request means for the connection comes back up as a raised ``Closing``.

Each connection is a fault domain: whatever its peer sends, and whatever goes wrong serving it,
ends at most this connection (with a ``Close`` frame and one bounded log line).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import math
import os
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final, final

import anyio
from anyio.abc import TaskGroup

from cinema.abc import Connection
from cinema.lowlevel import Backend, Future

from ._asyncio_streams import AsyncioStreamConnection
from ._errors import AuthenticationError, FrameTooLarge, ProtocolError
from ._framing import StreamConnection
from ._peerlog import ConnectionLog, clip
from ._session import Closing, ExtensionHandler, ReplyBudget, Session
from ._stats import RemoteCounters, error_kind_name
from ._wire import (
    MAX_NONCE_SIZE,
    MIN_NONCE_SIZE,
    NONCE_SIZE,
    PROTOCOL_VERSION,
    client_proof,
    enum_name,
    parse_frame,
    server_proof,
)
from .proto import wire_pb2 as pb

__all__ = ["ConnectionSettings", "ServerConnection", "send_close"]

# How long a Close frame may take to go out before the connection is closed anyway.
_CLOSE_GRACE: Final = 0.25

# Errors from a connection that mean the peer is gone.
_GONE: Final = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError)


async def send_close(conn: Connection, kind: pb.ErrorKind.ValueType, message: str) -> None:
    """Tell the peer why we are closing, if it still listens; never waits for long."""
    frame = pb.Frame(close=pb.Close(error=pb.Error(kind=kind, message=message)))
    data = frame.SerializeToString()
    with anyio.move_on_after(_CLOSE_GRACE, shield=True):
        with contextlib.suppress(*_GONE):
            if not conn.send_frame_nowait(data):
                await conn.send_frame(data)


@final
class ConnectionSettings:
    """What every connection of one server is served with (made by the server per
    connection, so that later changes to its attributes apply to new connections)."""

    __slots__ = (
        "budget",
        "counters",
        "extensions",
        "handle_request",
        "handshake_frame_size",
        "handshake_timeout",
        "idle_timeout",
        "max_frame_size",
        "max_in_flight",
        "node",
        "secret",
    )

    def __init__(
        self,
        *,
        node: str,
        secret: bytes | None,
        handle_request: Callable[[pb.Envelope], Awaitable[pb.Envelope | None]],
        extensions: dict[str, ExtensionHandler],
        max_frame_size: int,
        handshake_frame_size: int,
        max_in_flight: int,
        idle_timeout: float | None,
        handshake_timeout: float,
        budget: ReplyBudget,
        counters: RemoteCounters | None = None,
    ) -> None:
        self.counters = counters if counters is not None else RemoteCounters()
        self.node = node
        self.secret = secret
        self.handle_request = handle_request
        self.extensions = extensions
        self.max_frame_size = max_frame_size
        self.handshake_frame_size = handshake_frame_size
        self.max_in_flight = max_in_flight
        self.idle_timeout = idle_timeout
        self.handshake_timeout = handshake_timeout
        self.budget = budget


_READ = object()
_DONE = object()


@final
class _Turn:
    """An idle task's wake-up call: with a frame to handle, or to read the next one."""

    __slots__ = ("frame", "future")

    def __init__(self, future: Future) -> None:
        # A bare backend future rather than an anyio Event: one is made per pipelined request.
        self.future = future
        self.frame: pb.Frame | None = None

    def wake(self, frame: pb.Frame | None = None) -> None:
        if not self.future.done():
            self.frame = frame
            self.future.set_result(None)


@final
class _Handoff:
    """What a reader hands out if it has to wait: the requests it has not reached, and the
    reading role."""

    __slots__ = ("batch", "cancelled", "released")

    def __init__(self, batch: deque[pb.Frame]) -> None:
        self.batch = batch
        self.released = False  # the callback ran: the reader waited, and gave its role away
        self.cancelled = False  # the reader never waited: the callback does nothing


@final
class ServerConnection:
    """Serves one accepted connection: handshake, then its requests, until it ends.

    Requests are read and handled by a few tasks (leader/followers).

    The task that reads a request also handles it, so a request reaches its handler without a
    hop through a queue; before handling, it hands requests that arrived with it to idle tasks
    and passes the reading role on (starting tasks as needed, up to ``max_in_flight``).

    On asyncio the hand-out is lazy: the reader handles the requests that arrived together one
    after the other, and hands out the rest (and the reading role) only if one of them makes it
    wait: a callback scheduled with ``call_soon`` runs exactly when the reader's task yields.
    Most handlers run inline and never wait, so the reader then goes on reading itself and most
    requests cost no task switch at all; one that waits still never holds up the requests
    behind it. With
    ``max_in_flight`` requests in progress, nobody reads until one completes: backpressure
    instead of unbounded memory. Tasks are kept for the connection's life: starting a task
    costs more than a small request.
    """

    def __init__(self, conn: Connection, settings: ConnectionSettings) -> None:
        self._conn = conn
        self._settings = settings
        self.log = ConnectionLog(conn.remote_address)
        self._frame_limit = settings.handshake_frame_size
        self._limit = settings.max_in_flight
        self._counters = settings.counters
        self._session: Session | None = None
        self.task_group: TaskGroup | None = None
        self.closing: Closing | None = None
        self._said_goodbye = False
        self._tasks = 0
        self._all_done: anyio.Event | None = None
        self._idle: deque[_Turn] = deque()  # tasks waiting for a frame or the reading role
        self._reader_wanted = False  # at the limit: the next task to finish reads
        self._done = False
        self._busy = 0  # requests read and not yet handled
        self._last_activity = anyio.current_time()
        self._backend = Backend()
        # Requests that arrived together are spread without a coroutine per frame, on
        # connections that can hand out buffered frames synchronously (the built-in ones).
        self._nowait = conn.receive_frame_nowait
        self._loop: asyncio.AbstractEventLoop | None = None
        if self._backend.name == "asyncio":
            self._loop = asyncio.get_running_loop()

    # -- the connection's life ----------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it ends; never raises but for cancellation (the caller
        closes the connection)."""
        conn, log = self._conn, self.log
        self._set_frame_limit(self._settings.handshake_frame_size)
        try:
            with anyio.move_on_after(self._settings.handshake_timeout) as scope:
                ready = await self._handshake()
            if scope.cancelled_caught:
                raise Closing(pb.ERROR_KIND_TIMEOUT, "no handshake in time")
            if ready:
                log.debug("ready")
                self._set_frame_limit(self._settings.max_frame_size)
                await self._serve_requests()
        except Closing as closing:
            await self._send_away(closing)
        except anyio.get_cancelled_exc_class():
            await self._goodbye(pb.ERROR_KIND_NONE, "server shutting down")
            raise
        except _GONE as exc:
            log.warning("the connection broke: %s", clip(repr(exc)))
        except Exception as exc:
            # A fault of this server: it still ends only this connection.
            log.error("internal error serving the connection", exc_info=exc)
            await self._goodbye(pb.ERROR_KIND_INTERNAL, "internal server error")
        finally:
            log.flush()
            with anyio.CancelScope(shield=True):
                await conn.aclose()

    def _set_frame_limit(self, limit: int) -> None:
        self._frame_limit = limit
        conn = self._conn
        if isinstance(conn, StreamConnection | AsyncioStreamConnection):
            # Checked on the length prefix, before the body is read.
            conn.max_frame_size = limit

    async def _send_away(self, closing: Closing) -> None:
        if not self._said_goodbye:
            self._counters.error(error_kind_name(closing.kind))
            # Logged before the peer learns of it (a peer that reacts must find it logged).
            self.log.warning("closing connection: %s", closing)
            await self._goodbye(closing.kind, str(closing))

    async def _goodbye(self, kind: pb.ErrorKind.ValueType, message: str) -> None:
        if not self._said_goodbye:
            self._said_goodbye = True
            await send_close(self._conn, kind, message)

    async def _serve_requests(self) -> None:
        settings = self._settings
        self._session = Session(
            self._conn,
            self.log,
            settings.handle_request,
            settings.extensions,
            max_frame_size=settings.max_frame_size,
            budget=settings.budget,
            counters=settings.counters,
        )
        self._all_done = anyio.Event()
        async with anyio.create_task_group() as tg:
            self.task_group = tg
            self.spawn()
            try:
                await self._all_done.wait()
            except anyio.get_cancelled_exc_class():
                # Shutting down, or sending the peer away: a reply blocked on a peer that does
                # not read must not hold up the end, so the connection is closed now (after a
                # Close frame, if it still goes out), which ends such writes.
                with anyio.CancelScope(shield=True):
                    closing = self.closing
                    if closing is None:
                        await self._goodbye(pb.ERROR_KIND_NONE, "server shutting down")
                    else:
                        await self._send_away(closing)
                    await self._conn.aclose()
                raise
        # A Closing is raised here, outside the task group, so that it is not wrapped in an
        # ExceptionGroup. Otherwise the peer stopped sending (EOF, maybe only half-closed):
        # requests already read still ran and got their replies if the peer still reads.
        if self.closing is not None:
            raise self.closing

    # -- the handshake ------------------------------------------------------------------------

    async def _handshake(self) -> bool:
        """:returns: whether the peer may now send requests (``False``: it went away)."""
        conn, settings = self._conn, self._settings
        frame = await self._receive()
        if frame is None:
            return False
        body = frame.WhichOneof("body")
        if body != "hello":
            raise Closing(pb.ERROR_KIND_PROTOCOL_ERROR, f"expected a hello frame first, got {body}")
        hello = frame.hello
        if hello.protocol_version != PROTOCOL_VERSION:
            raise Closing(
                pb.ERROR_KIND_PROTOCOL_ERROR,
                f"unsupported protocol version {hello.protocol_version}"
                f" (this server speaks {PROTOCOL_VERSION})",
            )
        welcome = pb.Welcome(protocol_version=PROTOCOL_VERSION, node=settings.node)
        secret = settings.secret
        if secret is None:
            await conn.send_frame(pb.Frame(welcome=welcome).SerializeToString())
            return True
        if not MIN_NONCE_SIZE <= len(hello.client_nonce) <= MAX_NONCE_SIZE:
            raise Closing(pb.ERROR_KIND_UNAUTHENTICATED, "client nonce of a bad size")
        nonce = os.urandom(NONCE_SIZE)
        welcome.auth_required = True
        welcome.server_nonce = nonce
        welcome.server_proof = server_proof(secret, hello.client_nonce, nonce)
        await conn.send_frame(pb.Frame(welcome=welcome).SerializeToString())
        frame = await self._receive()
        if frame is None:
            return False
        expected = client_proof(secret, nonce, hello.client_nonce)
        if frame.WhichOneof("body") != "auth" or not hmac.compare_digest(
            frame.auth.client_proof, expected
        ):
            raise Closing(
                pb.ERROR_KIND_UNAUTHENTICATED,
                str(AuthenticationError("authentication failed: wrong or missing shared secret")),
            )
        return True

    # -- frames -------------------------------------------------------------------------------

    async def _receive(self) -> pb.Frame | None:
        """The next frame; ``None`` when the peer closed (or broke) the connection.

        :raises Closing: the frame is oversized or malformed.
        """
        try:
            data = await self._conn.receive_frame()
        except anyio.EndOfStream:
            self.log.debug("the peer closed the connection")
            return None
        except FrameTooLarge as exc:
            raise Closing(pb.ERROR_KIND_PROTOCOL_ERROR, str(exc)) from exc
        except _GONE as exc:
            self.log.warning("the connection broke: %s", clip(str(exc)))
            return None
        return self._parse(data)

    def _parse(self, data: bytes) -> pb.Frame:
        """Parse a received frame.

        :raises Closing: the frame is oversized or malformed.
        """
        self._counters.bytes_in += len(data)
        if len(data) > self._frame_limit:
            # Transports that do their own framing cannot check before reading.
            raise Closing(
                pb.ERROR_KIND_PROTOCOL_ERROR, str(FrameTooLarge(len(data), self._frame_limit))
            )
        try:
            return parse_frame(data)
        except ProtocolError as exc:
            raise Closing(pb.ERROR_KIND_PROTOCOL_ERROR, clip(str(exc))) from exc

    def _check_frame(self, frame: pb.Frame) -> bool:
        """Whether ``frame`` is a request to handle (``False``: the peer said goodbye).

        :raises Closing: the frame has no business coming from a client.
        """
        body = frame.WhichOneof("body")
        if body == "envelope":
            kind = frame.envelope.kind
            if kind != pb.ENVELOPE_KIND_REQUEST and kind != pb.ENVELOPE_KIND_ONEWAY:
                name = enum_name(pb.EnvelopeKind.Name, kind)
                raise Closing(pb.ERROR_KIND_PROTOCOL_ERROR, f"a client may not send {name}")
        elif body == "extension":
            kind = frame.extension.envelope_kind
            if kind != pb.ENVELOPE_KIND_REQUEST and kind != pb.ENVELOPE_KIND_ONEWAY:
                name = enum_name(pb.EnvelopeKind.Name, kind)
                raise Closing(
                    pb.ERROR_KIND_PROTOCOL_ERROR,
                    f"a client may only send extension requests, not {name}",
                )
        elif body == "close":
            self.log.debug("the peer said goodbye: %s", clip(frame.close.error.message))
            return False
        else:
            raise Closing(pb.ERROR_KIND_PROTOCOL_ERROR, f"unexpected {body} frame")
        return True

    # -- the request loop ---------------------------------------------------------------------

    def spawn(self, frame: pb.Frame | None = None) -> None:
        """Start a task that handles ``frame``, or that takes the reading role at once."""
        assert self.task_group is not None
        self._tasks += 1
        self.task_group.start_soon(self._run, frame)

    async def _run(self, assigned: pb.Frame | None) -> None:
        try:
            await self._loop_requests(assigned)
        finally:
            self._tasks -= 1
            if not self._tasks and self._all_done is not None:
                self._all_done.set()

    async def _loop_requests(self, assigned: pb.Frame | None) -> None:
        session = self._session
        assert session is not None
        while True:
            batch: deque[pb.Frame] | None = None
            handoff: _Handoff | None = None
            if assigned is None:
                frame = await self._read()
                if frame is None:
                    return
                if self._loop is not None:
                    handoff = _Handoff(self._take_buffered())
                    batch = handoff.batch
                    # Runs when this task next yields: if it is still handling these requests
                    # then, the ones it has not reached and the reading role go to others.
                    self._loop.call_soon(self._release, handoff)
                else:
                    self._spread()
                    self._pass_reading_role()
            else:
                frame = assigned
            while True:
                try:
                    if frame.HasField("envelope"):
                        await session.handle_envelope(frame.envelope)
                    else:
                        await session.handle_extension(frame.extension)
                except Closing as closing:
                    self._finish(closing)
                    return
                except Exception as exc:
                    self.log.error("internal error serving a request", exc_info=exc)
                    self._finish(Closing(pb.ERROR_KIND_INTERNAL, "internal server error"))
                    return
                finally:
                    self._busy -= 1
                if not batch:
                    break
                frame = batch.popleft()
            if handoff is not None and not handoff.released:
                # Never waited: still the reader, so read on (no task switch at all).
                handoff.cancelled = True
                assigned = None
                continue
            turn = await self._next_turn()
            if turn is _DONE:
                return
            assigned = turn if isinstance(turn, pb.Frame) else None

    def _spread(self) -> None:
        """Hand frames that already arrived to other tasks, so that they run concurrently
        (pipelined requests), before this task handles its own."""
        idle = self._idle
        while not self._done and (idle or self._tasks < self._limit):
            frame = self._read_buffered()
            if frame is None:
                return
            if idle:
                idle.popleft().wake(frame)
            else:
                self.spawn(frame)

    def _take_buffered(self) -> deque[pb.Frame]:
        """The requests already buffered whole, as many as other tasks could take."""
        batch: deque[pb.Frame] = deque()
        # Requests read count against max_in_flight whoever holds them (_busy includes them).
        while self._busy < self._limit and not self._done:
            frame = self._read_buffered()
            if frame is None:
                break
            batch.append(frame)
        return batch

    def _release(self, handoff: _Handoff) -> None:
        """The reader waits: hand the requests it has not reached yet and the reading role to
        other tasks."""
        if handoff.cancelled or self._done:
            return
        handoff.released = True
        batch, idle = handoff.batch, self._idle
        while batch and (idle or self._tasks < self._limit):
            frame = batch.popleft()
            if idle:
                idle.popleft().wake(frame)
            else:
                self.spawn(frame)
        self._pass_reading_role()

    def _read_buffered(self) -> pb.Frame | None:
        """The next request if one is buffered whole; ``None`` if none is (or the connection
        is done: then ``_done`` is set)."""
        try:
            data = self._nowait()
        except _GONE:
            return None
        except FrameTooLarge as exc:
            self._finish(Closing(pb.ERROR_KIND_PROTOCOL_ERROR, str(exc)))
            return None
        if data is None:
            return None
        try:
            frame = self._parse(data)
            if not self._check_frame(frame):
                self._finish(None)
                return None
        except Closing as exc:
            self._finish(exc)
            return None
        self._busy += 1
        return frame

    def _pass_reading_role(self) -> None:
        if self._done:
            return
        if self._busy >= self._limit:
            # max_in_flight requests read and not done: the next task to finish one reads.
            self._reader_wanted = True
        elif self._idle:
            self._idle.popleft().wake()
        elif self._tasks < self._limit:
            self.spawn()
        else:
            self._reader_wanted = True

    async def _next_turn(self) -> pb.Frame | object:
        """A frame to handle, ``_READ`` (read next) or ``_DONE`` (the connection is done)."""
        if self._done:
            return _DONE
        if self._reader_wanted:
            self._reader_wanted = False
            return _READ
        turn = _Turn(self._backend.new_future())
        self._idle.append(turn)
        try:
            await turn.future
        except BaseException:
            # Cancelled while idle: nobody may hand this task a frame any more.
            if turn in self._idle:
                self._idle.remove(turn)
            raise
        if turn.frame is not None:
            return turn.frame
        return _DONE if self._done else _READ

    def _finish(self, closing: Closing | None) -> None:
        self._done = True
        self.closing = closing
        while self._idle:
            self._idle.popleft().wake()
        if closing is not None and self.task_group is not None:
            # The peer is being sent away: drop its running requests.
            self.task_group.cancel_scope.cancel()

    async def _read(self) -> pb.Frame | None:
        """The next request, or ``None`` once the connection is done."""
        idle_timeout = self._settings.idle_timeout
        # Already buffered: no waiting, so no idle timer either.
        frame = self._read_buffered()
        if frame is not None or self._done:
            return frame
        while True:
            # One cancel scope per read rather than a timer per frame; when the deadline
            # passes, the loop checks the real idle time and re-arms.
            deadline = math.inf if idle_timeout is None else self._last_activity + idle_timeout
            try:
                with anyio.CancelScope(deadline=deadline) as scope:
                    frame = await self._receive()
                    if frame is None or not self._check_frame(frame):
                        self._finish(None)
                        return None
            except Closing as exc:
                self._finish(exc)
                return None
            if not scope.cancelled_caught:
                self._last_activity = anyio.current_time()
                self._busy += 1
                return frame
            assert idle_timeout is not None
            now = anyio.current_time()
            if self._busy:
                self._last_activity = now  # handling its requests: not idle
            elif now - self._last_activity >= idle_timeout:
                self._finish(Closing(pb.ERROR_KIND_TIMEOUT, f"idle for {idle_timeout} s"))
                return None
