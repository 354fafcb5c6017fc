"""The tasks that serve one connection's requests, and how a connection is ended."""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, final

import anyio
from anyio.abc import TaskGroup

from cinema._backend import Backend, Future
from cinema.abc import Connection

from .proto import wire_pb2 as pb

if TYPE_CHECKING:
    from ._server import RemoteServer

__all__ = ["Closing", "ConnectionTasks"]


class Closing(Exception):
    """Internal: end this connection, telling the peer why."""

    def __init__(self, kind: pb.ErrorKind.ValueType, message: str) -> None:
        super().__init__(message)
        self.kind = kind


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
class ConnectionTasks:
    """The tasks that read and handle one connection's requests (leader/followers).

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

    def __init__(self, server: RemoteServer, conn: Connection, peer: str) -> None:
        self._server = server
        self._conn = conn
        self._peer = peer
        self._limit = server.max_in_flight
        self.task_group: TaskGroup | None = None
        self.closing: Closing | None = None
        self._tasks = 0
        self._idle: deque[_Turn] = deque()  # tasks waiting for a frame or the reading role
        self._reader_wanted = False  # at the limit: the next task to finish reads
        self._done = False
        self._busy = 0  # requests read and not yet handled
        self._last_activity = anyio.current_time()
        self._backend = Backend()
        # Connections that can hand out buffered frames synchronously (the built-in ones):
        # requests that arrived together are then spread without a coroutine per frame.
        self._nowait: Callable[[], bytes | None] | None = getattr(
            conn, "receive_frame_nowait", None
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        if self._nowait is not None and self._backend.name == "asyncio":
            self._loop = asyncio.get_running_loop()

    def spawn(self, frame: pb.Frame | None = None) -> None:
        """Start a task that handles ``frame``, or that takes the reading role at once."""
        assert self.task_group is not None
        self._tasks += 1
        self.task_group.start_soon(self._run, frame)

    async def _run(self, assigned: pb.Frame | None) -> None:
        server, conn, peer = self._server, self._conn, self._peer
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
                        await server._handle_envelope(conn, peer, frame.envelope)
                    else:
                        await server._handle_extension(conn, peer, frame.extension)
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
        if handoff.cancelled:
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
        nowait = self._nowait
        if nowait is None:
            return None
        data = nowait()
        if data is None:
            return None
        server = self._server
        try:
            frame = server._parse(data)
            if not server._check_frame(frame, self._peer):
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
        server = self._server
        idle_timeout = server.idle_timeout
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
                    frame = await server._receive(self._conn, self._peer)
                    if frame is None or not server._check_frame(frame, self._peer):
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
