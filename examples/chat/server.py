"""TCP chat server: each connection is an actor, a room actor broadcasts.

    python examples/chat/server.py            # port 8080 (--host/--port, --backend trio)
    nc localhost 8080                          # in a few terminals

Commands: ``/nick NAME`` renames you, ``/quit`` says goodbye and hangs up; any other ``/word``
gets the list of commands. Everything else is said to the room. The server logs joins and
leaves on its screen; on Ctrl-C or SIGTERM it tells every client that it is stopping.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import signal
import sys
from dataclasses import dataclass, field
from functools import partial
from typing import Self

import anyio
from anyio.abc import SocketStream, TaskStatus
from anyio.streams.buffered import BufferedByteReceiveStream

from cinema import Actor, ActorStopped, ActorSystem, Addr, Context, Message, StreamHandler, handler

MAX_LINE = 4096
USAGE = "* commands: /nick NAME, /quit"
STOPPING = "* the server is stopping: bye"

log = logging.getLogger("chat")


# -- messages --------------------------------------------------------------------------------


@dataclass
class Join(Message[None]):
    session: Addr[Session]
    nick: str


@dataclass
class Leave(Message[None]):
    session: Addr[Session]


@dataclass
class Say(Message[None]):
    session: Addr[Session]
    text: str


@dataclass
class Rename(Message[bool]):
    """Returns whether the new nick was free."""

    session: Addr[Session]
    nick: str


@dataclass
class Deliver(Message[None]):
    line: str


@dataclass
class Close(Message[None]):
    """The server is stopping: tell every member."""


# -- actors ----------------------------------------------------------------------------------


@dataclass
class Room(Actor):
    """Knows who is in the room and broadcasts to everyone."""

    members: dict[Addr[Session], str] = field(default_factory=dict)
    closing: bool = False  # after Close: the sessions leave, nobody need hear of it

    def broadcast(self, line: str, *, skip: Addr[Session] | None = None) -> None:
        if self.closing:
            return
        for member in self.members:
            if member != skip and member.is_alive:
                member.do_send(Deliver(line))

    @handler
    def join(self, msg: Join, ctx: Context[Self]) -> None:
        self.members[msg.session] = msg.nick
        log.info("%s joined (%d here)", msg.nick, len(self.members))
        msg.session.do_send(Deliver(f"* welcome, {msg.nick}! {len(self.members)} here"))
        self.broadcast(f"* {msg.nick} joined", skip=msg.session)

    @handler
    def leave(self, msg: Leave, ctx: Context[Self]) -> None:
        nick = self.members.pop(msg.session, None)
        if nick is not None:
            log.info("%s left (%d here)", nick, len(self.members))
            self.broadcast(f"* {nick} left")

    @handler
    async def close(self, msg: Close, ctx: Context[Self]) -> None:
        # Wait until each line is written: the sessions stop right after.
        self.closing = True
        log.info("stopping: telling %d here", len(self.members))
        for member in list(self.members):
            if member.is_alive:
                with contextlib.suppress(ActorStopped):
                    await member.send(Deliver(STOPPING))

    @handler
    def say(self, msg: Say, ctx: Context[Self]) -> None:
        nick = self.members.get(msg.session)
        if nick is not None:
            self.broadcast(f"<{nick}> {msg.text}", skip=msg.session)

    @handler
    def rename(self, msg: Rename, ctx: Context[Self]) -> bool:
        old = self.members.get(msg.session)
        if old is None or msg.nick in self.members.values():
            return False
        self.members[msg.session] = msg.nick
        log.info("%s is now %s", old, msg.nick)
        self.broadcast(f"* {old} is now {msg.nick}")
        return True


class Lines:
    """The lines a client sends (without line endings), ending when it disconnects."""

    def __init__(self, stream: SocketStream) -> None:
        self._buffered = BufferedByteReceiveStream(stream)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        try:
            raw = await self._buffered.receive_until(b"\n", MAX_LINE)
        except (
            anyio.EndOfStream,
            anyio.IncompleteRead,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            anyio.DelimiterNotFound,  # a line longer than MAX_LINE: hang up
        ):
            raise StopAsyncIteration from None
        return raw.decode(errors="replace").rstrip("\r")


class Session(Actor, StreamHandler[str]):
    """One connected client: reads its lines, writes what the room delivers."""

    def __init__(self, stream: SocketStream, room: Addr[Room], nick: str) -> None:
        self.stream = stream
        self.room = room
        self.nick = nick

    async def started(self, ctx: Context[Self]) -> None:
        ctx.add_stream(Lines(self.stream))
        await self.room.send(Join(ctx.address(), self.nick))

    async def handle(self, item: str, ctx: Context[Self]) -> None:
        line = item.strip()
        if not line:
            return
        if not line.startswith("/"):
            self.room.do_send(Say(ctx.address(), line))
            return
        command, _, rest = line.partition(" ")
        if command == "/quit":
            await self.write(f"* goodbye, {self.nick}")
            ctx.stop()
        elif command == "/nick":
            nick = rest.strip()
            if not nick or " " in nick:
                await self.write("* usage: /nick NAME")
            elif await self.room.send(Rename(ctx.address(), nick)):
                self.nick = nick
            else:
                await self.write(f"* the nick {nick} is taken")
        else:  # a typo must not reach the whole room
            await self.write(f"* unknown command {command}; {USAGE.removeprefix('* ')}")

    def finished(self, ctx: Context[Self]) -> None:
        ctx.stop()  # the client hung up

    @handler
    async def deliver(self, msg: Deliver, ctx: Context[Self]) -> None:
        await self.write(msg.line)

    async def write(self, line: str) -> None:
        # If the client is gone, finished() stops this session soon: nothing to do here.
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await self.stream.send(line.encode() + b"\n")

    async def stopped(self, ctx: Context[Self]) -> None:
        if self.room.is_alive:
            self.room.do_send(Leave(ctx.address()))
        await self.stream.aclose()


# -- server ----------------------------------------------------------------------------------


async def run_chat(
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    stop: anyio.Event | None = None,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the chat until ``stop`` is set (then tell the clients) or until cancelled;
    reports the bound port through ``task_status``."""
    async with ActorSystem(shutdown_timeout=1.0) as system:
        room = system.spawn(Room())
        numbers = itertools.count(1)
        listener = await anyio.create_tcp_listener(local_host=host, local_port=port)

        async def accept(stream: SocketStream) -> None:
            system.spawn(Session(stream, room, f"guest{next(numbers)}"))

        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, accept)
            bound = listener.listeners[0].extra(anyio.abc.SocketAttribute.local_port)
            task_status.started(bound)
            await (stop.wait() if stop is not None else anyio.sleep_forever())
            tg.cancel_scope.cancel()  # no new clients
        await room.send(Close())


async def main(host: str, port: int) -> None:
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            bound = await tg.start(partial(run_chat, host, port, stop=stop))
            print(f"chat on {host}:{bound} (nc {host} {bound})", flush=True)
            async for _signal in signals:
                stop.set()
                break
    print("chat server stopped", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Cinema TCP chat server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        anyio.run(main, args.host, args.port, backend=args.backend)
    except OSError as exc:  # e.g. the port is taken
        sys.exit(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
